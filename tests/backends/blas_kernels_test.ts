import assert from "node:assert/strict";
import {
  getBackend,
  selectBackend,
  setWasmAcceleration,
} from "../../backends/mod.ts";
import { openBlas } from "../../backends/_blas.ts";
import { patchDepth } from "../../backends/_patches.ts";
import { registerDilatedGradTest, registerParitySuite } from "./_suite.ts";

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

registerDilatedGradTest("blas", ignore);
