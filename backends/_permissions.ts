/**
 * Permission checks that never prompt, for the FFI plugins (`_blas.ts`,
 * `_dnnl.ts`): whether `--allow-ffi` or `--allow-env` is granted, and
 * environment reads that return `undefined` rather than ask.
 *
 * @module
 */

/** Whether `ffi`, or `env` (optionally for one variable), is granted; never prompts. */
export function granted(name: "ffi" | "env", variable?: string): boolean {
  try {
    const desc = name === "env"
      ? { name, ...(variable ? { variable } : {}) } as const
      : { name } as const;
    return Deno.permissions.querySync(desc).state === "granted";
  } catch {
    return false;
  }
}

/** The variable's value when reading it is granted, else `undefined`. */
export function env(name: string): string | undefined {
  return granted("env", name) ? Deno.env.get(name) : undefined;
}
