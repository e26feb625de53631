/**
 * One way for the CLI tests to run Deno in a child process and read what it
 * printed.
 *
 * @module
 */

/** How a child Deno exited and what it printed. */
export interface DenoRun {
  /** Exit code. */
  code: number;
  /** Standard output, decoded. */
  stdout: string;
  /** Standard error, decoded. */
  stderr: string;
}

/** Options for {@linkcode runDeno}. */
export interface RunDenoOptions {
  /** Working directory of the child. */
  cwd?: string;
  /** Environment variables added to the child's. */
  env?: Record<string, string>;
}

/**
 * Runs `deno <args>` with this test's Deno binary and waits for it.
 *
 * @param args The arguments after `deno`, e.g. `["run", "-A", file, …]`.
 * @param options Working directory and environment of the child.
 * @returns Its exit code and decoded output.
 */
export async function runDeno(
  args: string[],
  options: RunDenoOptions = {},
): Promise<DenoRun> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
    ...(options.env !== undefined ? { env: options.env } : {}),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
  };
}
