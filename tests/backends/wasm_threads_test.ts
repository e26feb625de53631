// The threaded SIMD build of the wasm backend (backends/_wasm_threads.ts):
// what a bare machine (no oneDNN, no BLAS) runs. In this process it is
// started by asking for XNNPACK before wasm's first activation; the build
// each environment gets, and that the process still exits, are checked in
// fresh processes (the build is fixed once wasm has started).
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  getBackend,
  selectBackend,
  setWasmAcceleration,
} from "../../backends/mod.ts";
import { Prng } from "../../random/mod.ts";
import { assertParity, randn, runOn } from "./_parity.ts";

const CPUS = navigator.hardwareConcurrency ?? 1;
// One CPU: the threaded build is never started.
const ignore = CPUS < 2;

await setWasmAcceleration("xnnpack");

const SELECT = new URL("./testdata/select_backend.ts", import.meta.url)
  .pathname;

/** testdata/select_backend.ts `auto train` in a fresh process: its reason. */
async function autoReason(
  flags: string[],
  env: Record<string, string>,
): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, SELECT, "auto", "train"],
    env,
    stdout: "piped",
    stderr: "piped",
    // A pool worker that holds the process open would hang here.
    signal: AbortSignal.timeout(120_000),
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const text = new TextDecoder().decode(out.stdout).trim();
  const r = JSON.parse(text.split("\n").at(-1)!) as {
    report?: { name: string; reason: string };
    error?: string;
  };
  assert.ok(r.report, r.error ?? text);
  return r.report.reason;
}

const BARE = { AGCL_BLAS: "off", AGCL_DNNL: "off" };

Deno.test({
  name:
    "wasm asked for XNNPACK runs it on the threaded build, one thread per CPU",
  ignore,
}, async () => {
  await selectBackend("wasm", { purpose: "train" });
  const acc = (await getBackend("wasm")).acceleration?.();
  assert.equal(acc?.name, "xnnpack");
  assert.match(
    acc?.detail ?? "",
    new RegExp(`on ${Math.min(CPUS, 8)} threads, threaded SIMD build`),
  );
  await selectBackend("cpu");
});

Deno.test({
  name:
    "conv2d, its gradients and a long matMul on the threaded build match cpu",
  ignore,
}, async () => {
  const prng = new Prng(17);
  const [n, h, w, c, co] = [2, 24, 24, 16, 32];
  const xs = randn(prng, n * h * w * c);
  const fs = randn(prng, 3 * 3 * c * co);
  const dys = randn(prng, n * h * w * co);
  const fn = () => {
    const x = tf.tensor4d(xs, [n, h, w, c]);
    const f = tf.tensor4d(fs, [3, 3, c, co]);
    const dy = tf.tensor4d(dys, [n, h, w, co]);
    const y = tf.conv2d(x, f, 1, "same");
    const [dx, df] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(
        tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, "same"), dy),
      )
    )([x, f]);
    // [c, co]: xᵀ·dy over every pixel
    const m = tf.matMul(
      tf.reshape(x, [n * h * w, c]),
      tf.reshape(dy, [n * h * w, co]),
      true,
    );
    return [y, dx!, df!, m];
  };
  const ref = await runOn("cpu", fn);
  const got = await runOn("wasm", fn);
  assertParity(
    got,
    ref,
    "3×3 conv, 2×24×24×16 → 32, and a 16×1152·1152×32 matMul",
    1e-4,
  );
  await selectBackend("cpu");
});

Deno.test({
  name:
    "auto on a machine without oneDNN or BLAS picks the threaded build, says so, and the process exits",
  ignore,
}, async () => {
  const reason = await autoReason(["-A"], BARE);
  assert.match(
    reason,
    /^wasm \(XNNPACK kernels on \d+ threads, threaded SIMD build/,
  );
});

Deno.test({
  name: "AGCL_WASM_THREADS=1 keeps the single-threaded build",
  ignore,
}, async () => {
  const reason = await autoReason(["-A"], { ...BARE, AGCL_WASM_THREADS: "1" });
  assert.match(
    reason,
    /^wasm \(XNNPACK kernels single-threaded \(AGCL_WASM_THREADS\)/,
  );
});

Deno.test({
  name:
    "without --allow-write the threaded build is skipped for the single-threaded one, which says why",
  ignore,
}, async () => {
  const reason = await autoReason(
    ["--allow-read", "--allow-env", "--allow-ffi"],
    BARE,
  );
  assert.match(
    reason,
    /^wasm \(XNNPACK kernels single-threaded: the threaded build is unavailable: its worker file needs --allow-read and --allow-write/,
  );
});
