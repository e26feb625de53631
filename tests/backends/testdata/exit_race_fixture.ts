// Run by tests/backends/exit_order_test.ts in a child `deno test`: WebGPU
// probed and used first (on Mesa this loads EGL), then matrix products on
// wasm through the native BLAS, in a test-module thread that exits while the
// process exits.
import * as tf from "@tensorflow/tfjs";
import { availableBackends, selectBackend } from "../../../backends/mod.ts";

Deno.test({
  name: "WebGPU, then wasm on BLAS, in one test module",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    if ((await availableBackends()).includes("webgpu")) {
      await selectBackend("webgpu", { purpose: "infer" });
      const a = tf.ones([64, 64]);
      await tf.matMul(a, a).data();
    }
    await selectBackend("wasm", { purpose: "infer" });
    const x = tf.randomNormal([256, 256], 0, 1, "float32", 1);
    await tf.matMul(x, x).data();
  },
});
