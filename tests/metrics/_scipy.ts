/** Runs a scipy snippet on Debian's Python; `undefined` when scipy is missing. */
export const SCIPY: boolean = await (async () => {
  try {
    const out = await new Deno.Command("/usr/bin/python3", {
      args: ["-c", "import scipy.ndimage"],
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success;
  } catch {
    return false;
  }
})();

/** Runs `code` with `input` (JSON) on stdin, returns stdout parsed as JSON. */
export async function scipy(code: string, input: unknown): Promise<unknown> {
  const child = new Deno.Command("/usr/bin/python3", {
    args: ["-c", code],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(JSON.stringify(input)));
  await w.close();
  const out = await child.output();
  if (!out.success) {
    throw new Error(new TextDecoder().decode(out.stderr));
  }
  return JSON.parse(new TextDecoder().decode(out.stdout));
}
