import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  getBackend,
  selectBackend,
  setWasmAcceleration,
} from "../../backends/mod.ts";
import { openDnnl } from "../../backends/_dnnl.ts";
import { limits } from "../../backends/_limits.ts";
import { patchDepth } from "../../backends/_patches.ts";
import { Prng } from "../../random/mod.ts";
import { assertNoLeak } from "../_utils.ts";
import { assertParity, randn, runOn } from "./_parity.ts";
import { registerDilatedGradTest, registerParitySuite } from "./_suite.ts";

// The oneDNN path: convolutions and matrix products through FFI on the wasm
// heap. Skipped (and reported as ignored) where no oneDNN 2.x library
// (Debian libdnnl2) or no --allow-ffi.
const { dnnl, reason } = openDnnl();
const ignore = dnnl === undefined;
if (ignore) console.warn(`oneDNN tests skipped: ${reason}`);
else await setWasmAcceleration("onednn");
// The parity cases are tiny: send every one of them to oneDNN.
limits.dnnlMinWork = 0;

registerParitySuite("onednn", ignore);
registerDilatedGradTest("onednn", ignore);

Deno.test({
  name: "selectBackend reports the oneDNN acceleration of wasm, auto picks it",
  ignore,
}, async () => {
  const r = await selectBackend("wasm", { purpose: "train" });
  assert.equal(r.acceleration, "onednn");
  await setWasmAcceleration("auto");
  const auto = await selectBackend("auto", { purpose: "train" });
  const gpu = await (await getBackend("webgpu")).adapter();
  if (gpu === undefined || gpu.isFallbackAdapter) {
    assert.equal(auto.name, "wasm", auto.reason);
    assert.equal(auto.acceleration, "onednn");
    assert.match(auto.reason, /oneDNN 2\.\d+\.\d+ from /);
  }
  await setWasmAcceleration("onednn");
  await selectBackend("cpu");
});

Deno.test({
  name:
    "setWasmAcceleration switches wasm between oneDNN, BLAS and XNNPACK, layering oneDNN above BLAS",
  ignore,
}, async () => {
  await selectBackend("wasm");
  // Conv2D: the XNNPACK fix, then BLAS (on dnnl_sgemm), then oneDNN.
  assert.equal(patchDepth("wasm", "Conv2D"), 3);
  assert.equal(patchDepth("wasm", "BatchMatMul"), 2);
  assert.equal((await setWasmAcceleration("xnnpack"))?.name, "xnnpack");
  assert.equal(patchDepth("wasm", "Conv2D"), 1);
  const blas = await setWasmAcceleration("blas").catch(() => undefined);
  if (blas) {
    assert.equal(blas.name, "blas");
    assert.equal(patchDepth("wasm", "Conv2D"), 2);
  }
  const back = await setWasmAcceleration("onednn");
  assert.equal(back?.name, "onednn");
  assert.match(back.detail, /convolutions and matrix products via oneDNN/);
  assert.equal(patchDepth("wasm", "Conv2D"), 3);
  await selectBackend("cpu");
});

Deno.test({
  name: "the oneDNN kernels run the convolutions (primitives are built)",
  ignore,
}, async () => {
  await selectBackend("wasm", { purpose: "train" });
  const x = tf.randomNormal([2, 11, 13, 5], 0, 1, "float32", 1) as tf.Tensor4D;
  const f = tf.randomNormal([3, 3, 5, 7], 0, 1, "float32", 2) as tf.Tensor4D;
  const before = dnnl!.cached;
  const g = tf.grads((x: tf.Tensor, f: tf.Tensor) =>
    tf.sum(tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, [2, 1], "same"))
  )([x, f]);
  await Promise.all(g.map((t) => t.data()));
  // One forward, one backward-data and one backward-weights primitive.
  assert.equal(dnnl!.cached - before, 3);
  const conv = {
    n: 2,
    h: 11,
    w: 13,
    c: 5,
    oh: 6,
    ow: 13,
    co: 7,
    kh: 3,
    kw: 3,
    sh: 2,
    sw: 1,
    dh: 1,
    dw: 1,
    top: 1,
    bottom: 1,
    left: 1,
    right: 1,
  };
  assert.notEqual(dnnl!.implementation("forward", conv), undefined);
  tf.dispose([x, f, ...g]);
  await selectBackend("cpu");
});

Deno.test({
  name: "oneDNN convolution kernels leak no tensor, fused and dilated included",
  ignore,
}, async () => {
  await selectBackend("wasm", { purpose: "train" });
  const x = tf.randomNormal([2, 9, 9, 3], 0, 1, "float32", 3) as tf.Tensor4D;
  const f = tf.randomNormal([3, 3, 3, 4], 0, 1, "float32", 4) as tf.Tensor4D;
  const b = tf.randomNormal([4], 0, 1, "float32", 5) as tf.Tensor1D;
  assertNoLeak(() => [
    tf.conv2d(x, f, 1, "same", "NHWC", 2),
    tf.fused.conv2d({
      x,
      filter: f,
      strides: 1,
      pad: "same",
      bias: b,
      activation: "relu",
    }),
    ...tf.grads((x: tf.Tensor, f: tf.Tensor) =>
      tf.sum(tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, 2, "valid"))
    )([x, f]),
  ]);
  tf.dispose([x, f, b]);
  await selectBackend("cpu");
});

Deno.test({
  name: "oneDNN's sgemm behind the BLAS interface matches a plain loop",
  ignore,
}, () => {
  const blas = dnnl!.blas;
  const [m, n, k] = [5, 7, 3];
  const a = Float32Array.from({ length: m * k }, (_, i) => (i % 5) - 2);
  const b = Float32Array.from({ length: k * n }, (_, i) => (i % 3) - 1);
  for (
    const [tA, tB] of [[false, false], [true, false], [false, true]] as const
  ) {
    const c = new Float32Array(m * n).fill(1);
    blas.gemm({ transA: tA, transB: tB, m, n, k, a, b, c, beta: 1 });
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 1;
        for (let l = 0; l < k; l++) {
          s += a[tA ? l * m + i : i * k + l]! * b[tB ? j * k + l : l * n + j]!;
        }
        assert.equal(c[i * n + j], s);
      }
    }
  }
  const y = new Float32Array(k);
  blas.gemv({ transA: true, m: k, n: k, alpha: 2, a, x: a, y });
  for (let j = 0; j < k; j++) {
    let s = 0;
    for (let i = 0; i < k; i++) s += a[i * k + j]! * a[i]!;
    assert.equal(y[j], 2 * s);
  }
});

Deno.test("AGCL_DNNL=off turns oneDNN off, with the reason", async () => {
  const code = `
    import { openDnnl } from ${
    JSON.stringify(import.meta.resolve("../../backends/_dnnl.ts"))
  };
    console.log(JSON.stringify(openDnnl()));
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    env: { AGCL_DNNL: "off" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const r = JSON.parse(new TextDecoder().decode(out.stdout).trim());
  assert.equal(r.dnnl, undefined);
  assert.equal(r.reason, "oneDNN disabled by AGCL_DNNL");
});

Deno.test({
  name:
    "strided 1×1 convolution gradients on wasm (onednn) match cpu (oneDNN 2.6.3's jit_1x1 backward weights corrupted the heap on this shape)",
  ignore,
}, async () => {
  const prng = new Prng(31);
  const xs = randn(prng, 16 * 40 * 8);
  const fs = randn(prng, 8 * 16);
  const f = () => {
    const x = tf.tensor4d(xs, [1, 16, 40, 8]);
    const w = tf.tensor4d(fs, [1, 1, 8, 16]);
    return tf.grads((x: tf.Tensor, w: tf.Tensor) =>
      tf.sum(
        tf.square(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, "same")),
      )
    )([x, w]);
  };
  assertParity(await runOn("wasm", f), await runOn("cpu", f), "1×1 stride 2");
  await selectBackend("cpu");
});
