import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { assertAlmostEquals } from "../_utils.ts";
import { createAdam, createSgd, scheduledLr } from "../../pipeline/optim.ts";
import { selectBackend } from "../../backends/mod.ts";

await selectBackend("cpu", { purpose: "train" });

Deno.test("createSgd() follows torch.optim.SGD with momentum and weight decay", async () => {
  const w = tf.variable(tf.tensor1d([1, -2]));
  const opt = createSgd({ w }, { momentum: 0.9, weightDecay: 0.1 });
  // Step 1: g = [0.5, 0.5] + 0.1·[1, -2] = [0.6, 0.3]; buf = g;
  // w = [1 - 0.06, -2 - 0.03] = [0.94, -2.03].
  tf.tidy(() => opt.apply({ w: tf.tensor1d([0.5, 0.5]) }, 0.1));
  assertAlmostEquals(await w.data(), [0.94, -2.03], 1e-6);
  // Step 2: g = [0.5, 0.5] + 0.1·[0.94, -2.03] = [0.594, 0.297];
  // buf = 0.9·[0.6, 0.3] + g = [1.134, 0.567]; w -= 0.1·buf.
  tf.tidy(() => opt.apply({ w: tf.tensor1d([0.5, 0.5]) }, 0.1));
  assertAlmostEquals(await w.data(), [0.94 - 0.1134, -2.03 - 0.0567], 1e-6);
  opt.dispose();
  w.dispose();
});

Deno.test("createAdam() follows torch.optim.Adam (bias-corrected)", async () => {
  const w = tf.variable(tf.scalar(1));
  const opt = createAdam({ w });
  // Step 1: m̂ = g, v̂ = g² → update = lr·g/|g| = lr.
  tf.tidy(() => opt.apply({ w: tf.scalar(5) }, 0.1));
  assertAlmostEquals(await w.data(), [0.9], 1e-6);
  // Step 2 with g = -1: m = 0.09·5·... computed directly:
  const m = 0.9 * 0.5 + 0.1 * -1; // 0.35
  const v = 0.999 * 0.025 + 0.001 * 1; // 0.025975
  const upd = (m / (1 - 0.81)) / (Math.sqrt(v / (1 - 0.998001)) + 1e-8);
  tf.tidy(() => opt.apply({ w: tf.scalar(-1) }, 0.1));
  assertAlmostEquals(await w.data(), [0.9 - 0.1 * upd], 1e-6);
  opt.dispose();
  w.dispose();
});

Deno.test("optimiser state round-trips and the run continues identically", async () => {
  const run = async (split: boolean) => {
    const w = tf.variable(tf.tensor1d([1, 2, 3]));
    let opt = createAdam({ w });
    for (let i = 0; i < 5; i++) {
      if (split && i === 2) {
        const state = await opt.getState();
        opt.dispose();
        opt = createAdam({ w });
        opt.setState(state);
      }
      tf.tidy(() => opt.apply({ w: w.mul(2).sub(1) }, 0.05));
    }
    const out = Array.from(await w.data());
    opt.dispose();
    w.dispose();
    return out;
  };
  assert.deepEqual(await run(true), await run(false));
});

Deno.test("optimisers leak no tensors per step", () => {
  const w = tf.variable(tf.tensor1d([1, 2]));
  const sgd = createSgd({ w });
  const adam = createAdam({ w });
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) {
    tf.tidy(() => sgd.apply({ w: tf.ones([2]) }, 0.1));
    tf.tidy(() => adam.apply({ w: tf.ones([2]) }, 0.1));
  }
  assert.equal(tf.memory().numTensors, before);
  assert.throws(() => sgd.apply({ nope: tf.ones([2]) }, 0.1), {
    name: "TypeError",
    message: /'nope' names no variable/,
  });
  sgd.dispose();
  adam.dispose();
  w.dispose();
});

Deno.test("scheduledLr() is constant or a cosine from lr to 0", () => {
  assert.equal(
    scheduledLr(5, { schedule: "constant", lr: 0.1, total: 10 }),
    0.1,
  );
  assert.equal(scheduledLr(0, { schedule: "cosine", lr: 0.1, total: 10 }), 0.1);
  assertAlmostEquals(
    scheduledLr(5, { schedule: "cosine", lr: 0.1, total: 10 }),
    0.05,
    1e-12,
  );
  assertAlmostEquals(
    scheduledLr(10, { schedule: "cosine", lr: 0.1, total: 10 }),
    0,
    1e-12,
  );
});
