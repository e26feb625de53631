import assert from "node:assert/strict";

const CLI = new URL("../../cli/ablate.ts", import.meta.url).pathname;

async function runAblate(
  args: string[],
): Promise<{ code: number; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("deno task ablate rejects bad flags with one clear line", async () => {
  let r = await runAblate(["--methods", "agcl,magic"]);
  assert.equal(r.code, 2);
  assert.equal(
    r.stderr.trim(),
    "error: ablate: unknown --methods magic; valid: none, sscl, ce, supcon, agcl",
  );
  r = await runAblate(["--nope"]);
  assert.equal(r.code, 2);
  assert.match(
    r.stderr,
    /^error: ablate: .*--nope.*valid flags: --data, --preset/,
  );
  r = await runAblate(["--methods", ""]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--methods must list at least one value/);
});
