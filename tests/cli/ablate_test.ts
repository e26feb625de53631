import assert from "node:assert/strict";
import { type DenoRun, runDeno } from "./_run.ts";

const CLI = new URL("../../cli/ablate.ts", import.meta.url).pathname;

function runAblate(args: string[]): Promise<DenoRun> {
  return runDeno(["run", "-A", CLI, ...args]);
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

Deno.test("deno task ablate --help prints its usage, and --seeds must list non-negative integers", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, "--help"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0);
  const text = new TextDecoder().decode(out.stdout);
  assert.match(text, /^Usage: deno task ablate/);
  assert.match(text, /--seeds LIST/);
  const r = await runAblate(["--seeds", "0,x"]);
  assert.equal(r.code, 2);
  assert.equal(
    r.stderr.trim(),
    "error: ablate: --seeds must list non-negative integers: got 'x'",
  );
});

Deno.test("deno task ablate --set overrides a field for every run, and names a bad one before any run starts", async () => {
  let r = await runAblate(["--set", "segment.head"]);
  assert.equal(r.code, 2);
  assert.equal(
    r.stderr.trim(),
    'error: ablate: --set expects FIELD=VALUE: current value is "segment.head"',
  );
  const out = await Deno.makeTempDir();
  try {
    r = await runAblate(["--set", "segment.head=multi", "--out", out]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /'segment.head': expected one of "binary", "targets"/,
    );
    assert.deepEqual([...Deno.readDirSync(out)], []);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
