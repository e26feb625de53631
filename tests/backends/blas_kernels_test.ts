import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  getBackend,
  selectBackend,
  setWasmAcceleration,
} from "../../backends/mod.ts";
import { openBlas } from "../../backends/_blas.ts";
import { patchDepth } from "../../backends/_patches.ts";
import { Prng } from "../../random/mod.ts";
import { assertParity, convCases, outShape, randn, runOn } from "./_parity.ts";
import { registerParitySuite } from "./_suite.ts";

// The native path: OpenBLAS sgemm through FFI on the wasm heap. Skipped (and
// reported as ignored) where no BLAS library or no --allow-ffi.
const { blas, reason } = openBlas();
const ignore = blas === undefined;
if (ignore) console.warn(`BLAS tests skipped: ${reason}`);
else await setWasmAcceleration("blas");

registerParitySuite("blas", ignore);

Deno.test({
  name: "selectBackend reports the BLAS acceleration of wasm",
  ignore,
}, async () => {
  const r = await selectBackend("wasm", { purpose: "train" });
  assert.equal(r.acceleration, "blas");
  const auto = await selectBackend("auto", { purpose: "train" });
  const gpu = await (await getBackend("webgpu")).adapter();
  if (gpu === undefined || gpu.isFallbackAdapter) {
    // No hardware GPU: wasm, the fastest CPU backend, on BLAS.
    assert.equal(auto.name, "wasm", auto.reason);
    assert.equal(auto.acceleration, "blas");
    assert.match(auto.reason, /cblas_sgemm/);
  } else {
    // A hardware GPU wins when it can train; else wasm on BLAS.
    assert.ok(
      auto.name === "webgpu" || /cblas_sgemm/.test(auto.reason),
      auto.reason,
    );
  }
  await selectBackend("cpu");
});

Deno.test({
  name: "setWasmAcceleration switches wasm between BLAS and XNNPACK",
  ignore,
}, async () => {
  await selectBackend("wasm");
  assert.equal((await setWasmAcceleration("xnnpack"))?.name, "xnnpack");
  assert.equal((await setWasmAcceleration("blas"))?.name, "blas");
  await assert.rejects(() => setWasmAcceleration("gpu" as "blas"), RangeError);
  await selectBackend("cpu");
});

Deno.test({
  name: "switching BLAS off removes its layers alone, keeping those below",
  ignore,
}, async () => {
  await selectBackend("wasm");
  // Sum: the fast path, then BLAS; Conv2D: the XNNPACK fix, then BLAS.
  assert.equal(patchDepth("wasm", "Sum"), 2);
  assert.equal(patchDepth("wasm", "Conv2D"), 2);
  await setWasmAcceleration("xnnpack");
  assert.equal(patchDepth("wasm", "Sum"), 1);
  assert.equal(patchDepth("wasm", "Conv2D"), 1);
  await setWasmAcceleration("blas");
  assert.equal(patchDepth("wasm", "Sum"), 2);
  await selectBackend("cpu");
});

Deno.test({
  name:
    "dilated Conv2DBackpropInput and Filter on wasm (blas) match the dense equivalent filter on cpu",
  ignore,
}, async () => {
  const prng = new Prng(21);
  for (const c of convCases(prng, 6, true)) {
    const [d] = c.dilations;
    const out = outShape(c);
    const dys = randn(prng, out.reduce((a, b) => a * b, 1));
    const xs = randn(prng, c.n * c.h * c.w * c.c);
    const fs = randn(prng, c.kh * c.kw * c.c * c.co);
    const kh = (c.kh - 1) * d + 1;
    const kw = (c.kw - 1) * d + 1;
    const got = await runOn("wasm", () => {
      const x = tf.tensor4d(xs, [c.n, c.h, c.w, c.c]);
      const dy = tf.tensor4d(dys, out);
      const f = tf.tensor4d(fs, [c.kh, c.kw, c.c, c.co]);
      const common = {
        strides: c.strides,
        pad: c.pad,
        dataFormat: "NHWC",
        dilations: c.dilations,
      };
      return [
        tf.engine().runKernel("Conv2DBackpropInput", { dy, filter: f }, {
          ...common,
          inputShape: [c.n, c.h, c.w, c.c],
        }) as tf.Tensor,
        tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, {
          ...common,
          filterShape: [c.kh, c.kw, c.c, c.co],
        }) as tf.Tensor,
      ];
    });
    const ref = await runOn("cpu", () => {
      const x = tf.tensor4d(xs, [c.n, c.h, c.w, c.c]);
      const dy = tf.tensor4d(dys, out);
      // The dense filter: the dilated taps with zeros between them.
      const f = tf.tensor4d(fs, [c.kh, c.kw, c.c, c.co]);
      const dense = tf.buffer([kh, kw, c.c, c.co]);
      const fv = f.dataSync();
      for (let i = 0; i < fv.length; i++) {
        const co = i % c.co;
        const ci = Math.floor(i / c.co) % c.c;
        const kx = Math.floor(i / (c.co * c.c)) % c.kw;
        const ky = Math.floor(i / (c.co * c.c * c.kw));
        dense.set(fv[i]!, ky * d, kx * d, ci, co);
      }
      const common = { strides: c.strides, pad: c.pad, dataFormat: "NHWC" };
      const dw = tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, {
        ...common,
        filterShape: [kh, kw, c.c, c.co],
      }) as tf.Tensor;
      const rows = tf.gather(dw, tf.range(0, kh, d, "int32"), 0);
      return [
        tf.engine().runKernel("Conv2DBackpropInput", {
          dy,
          filter: dense.toTensor(),
        }, { ...common, inputShape: [c.n, c.h, c.w, c.c] }) as tf.Tensor,
        tf.gather(rows, tf.range(0, kw, d, "int32"), 1),
      ];
    });
    assertParity(got, ref, `dilated ${JSON.stringify(c)}`);
  }
  await selectBackend("cpu");
});
