import assert from "node:assert/strict";
import { type DenoRun, runDeno } from "./_run.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

function predict(args: string[]): Promise<DenoRun> {
  return runDeno(["run", "-A", "cli/predict.ts", ...args], {
    cwd: ROOT,
    env: { NO_COLOR: "1" },
  });
}

Deno.test("deno task predict: a missing flag is a usage error (exit 2)", async () => {
  const r = await predict(["--model", "x"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^error: predict: --image is required/);
});

Deno.test("deno task predict: an unknown flag lists the valid ones", async () => {
  const r = await predict(["--modle", "x"]);
  assert.equal(r.code, 2);
  assert.match(
    r.stderr,
    /valid flags: --model, --image, --out, --coarse, --volume-index, --backend/,
  );
});

Deno.test("deno task predict: a directory without a run is one clear line (exit 1)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const r = await predict([
      "--model",
      dir,
      "--image",
      "in.nii.gz",
      "--out",
      `${dir}/o.nii.gz`,
      "--backend",
      "cpu",
    ]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr.trim().split("\n").pop()!,
      /^error: .*(config\.json|in\.nii\.gz)/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task predict: an unknown output extension is refused before anything is read", async () => {
  const r = await predict([
    "--model",
    "no-such-run",
    "--image",
    "photo.jpg",
    "--out",
    "labels.bmp",
    "--backend",
    "cpu",
  ]);
  assert.equal(r.code, 1);
  assert.match(
    r.stderr.trim().split("\n").pop()!,
    /^error: Cannot write predictions to 'labels\.bmp' as its extension is not one of \.nii, \.nii\.gz, \.png$/,
  );
});

Deno.test("deno task predict: --volume-index must be an integer >= 0", async () => {
  for (
    const [value, shown] of [["=-1", "-1"], ["=x", "x"], [
      "=1.5",
      "1.5",
    ]] as const
  ) {
    const r = await predict([
      "--model",
      "no-such-run",
      "--image",
      "in.nii.gz",
      "--out",
      "out.nii.gz",
      `--volume-index${value}`,
    ]);
    assert.equal(r.code, 2, value);
    assert.equal(
      r.stderr.trim(),
      `error: predict: --volume-index must be an integer >= 0 (0 is the first volume): current value is "${shown}"`,
    );
  }
});
