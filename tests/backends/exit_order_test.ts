// Regression for the glibc abort at exit (issue 16, item 9): "corrupted size
// vs. prev_size in fastbins" / "double free or corruption", exit 134, after
// every test had passed. libglvnd's EGL (what Deno's WebGPU runs on with
// Mesa's software adapter) frees every thread's EGL state in its exit-time
// destructor; a Deno test-module thread still exiting then frees its own a
// second time. OpenBLAS's destructor, when it ran after EGL's, kept the
// process in that window long enough to hit it. The backends now load the
// BLAS before WebGPU first loads its drivers, so OpenBLAS is torn down first.
import assert from "node:assert/strict";
import { join } from "node:path";
import { openBlas } from "../../backends/_blas.ts";
import { AVAILABLE } from "../_utils.ts";

const ROOT = new URL("../../", import.meta.url);
const CONFIG = new URL("deno.json", ROOT).pathname;
const FIXTURE = new URL("testdata/exit_race_fixture.ts", import.meta.url);

// Both native pieces are needed: EGL (WebGPU on Linux) and a system BLAS.
const ignore = Deno.build.os !== "linux" || !AVAILABLE.includes("webgpu") ||
  openBlas().blas === undefined;

async function deno(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    env,
    stdout: "null",
    stderr: "piped",
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test({
  name: "OpenBLAS's exit destructor runs before EGL's once WebGPU was probed",
  ignore,
}, async () => {
  const { code, stderr } = await deno(
    ["test", "-A", "--config", CONFIG, FIXTURE.pathname],
    { LD_DEBUG: "files" },
  );
  assert.equal(code, 0, stderr.slice(-2000));
  const fini = stderr.split("\n").filter((l) => l.includes("calling fini:"));
  const blas = fini.findIndex((l) => /libopenblas|libblas/.test(l));
  const egl = fini.findIndex((l) => /\/libEGL\.so/.test(l));
  assert.ok(blas >= 0 && egl >= 0, "both OpenBLAS and EGL were loaded");
  assert.ok(
    blas < egl,
    `OpenBLAS finalised after EGL:\n${fini.slice(0, egl + 1).join("\n")}`,
  );
});

Deno.test({
  name:
    "a suite of WebGPU-then-BLAS test modules exits with code 0 (3 repetitions)",
  ignore,
}, async () => {
  // Four modules (each its own thread) reproduced the abort in 6 of 15 runs
  // before the fix.
  const dir = await Deno.makeTempDir({ prefix: "agcl_exit_" });
  try {
    for (let i = 0; i < 4; i++) {
      await Deno.writeTextFile(
        join(dir, `m${i}_test.ts`),
        `import ${JSON.stringify(FIXTURE.href)};\n`,
      );
    }
    for (let run = 0; run < 3; run++) {
      const { code, stderr } = await deno([
        "test",
        "-A",
        "--config",
        CONFIG,
        dir,
      ]);
      assert.equal(code, 0, `run ${run}: ${stderr.slice(-2000)}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
