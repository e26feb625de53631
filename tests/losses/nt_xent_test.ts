import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { ntXentLoss, supConLoss } from "../../losses/mod.ts";
import {
  assertAlmostEquals,
  assertNoLeak,
  testOnBackends,
  tolerance,
} from "../_utils.ts";
import {
  assertFinite,
  checkGradient,
  randomFeatures,
  read,
  REFERENCE,
} from "./_helpers.ts";

Deno.test("ntXentLoss() is log(e + 2) − 1 on two orthogonal pairs at T = 1", async () => {
  // Rows e1, e2, e1, e2: each anchor's twin has logit 1, the others 0.
  const f = tf.tensor3d([[[1, 0], [1, 0]], [[0, 1], [0, 1]]]);
  const loss = ntXentLoss(f, { temperature: 1 });
  assertAlmostEquals(await read(loss), Math.log(Math.E + 2) - 1, 1e-6);
  tf.dispose([f, loss]);
});

Deno.test("ntXentLoss() ignores labels: samples that look alike are still negatives", async () => {
  // All four rows are e1: each anchor has one positive and two negatives,
  // all at logit 1/T, so the loss is log 3 whatever T is.
  const f = tf.tensor3d([[[1, 0], [1, 0]], [[1, 0], [1, 0]]]);
  const loss = ntXentLoss(f, { temperature: 0.2 });
  assertAlmostEquals(await read(loss), Math.log(3), 1e-5);
  tf.dispose([f, loss]);
});

Deno.test("ntXentLoss() equals supConLoss() with distinct labels", async () => {
  const f = randomFeatures([5, 2, 4], 11);
  for (const temperature of [0.07, 0.5]) {
    const a = ntXentLoss(f, { temperature, baseTemperature: 0.07 });
    const b = supConLoss(f, [0, 1, 2, 3, 4], {
      temperature,
      baseTemperature: 0.07,
    });
    assertAlmostEquals(await read(a), await read(b), 1e-6);
    tf.dispose([a, b]);
  }
  f.dispose();
});

Deno.test("ntXentLoss() is invariant to permuting the batch", async () => {
  const f = randomFeatures([6, 2, 5], 12);
  const g = tf.gather(f, [5, 3, 1, 0, 2, 4]) as tf.Tensor3D;
  const a = ntXentLoss(f);
  const b = ntXentLoss(g);
  assertAlmostEquals(await read(b), await read(a), 1e-5);
  tf.dispose([f, g, a, b]);
});

Deno.test("ntXentLoss() of single-view batches is 0 with a zero gradient", async () => {
  const f = randomFeatures([3, 1, 4], 13);
  const loss = ntXentLoss(f);
  const g = tf.grad((x) => ntXentLoss(x as tf.Tensor3D))(f);
  assert.deepEqual(await read(loss), [0]);
  assert.deepEqual(await read(g), new Array(12).fill(0));
  tf.dispose([f, loss, g]);
});

Deno.test("ntXentLoss() gives no NaN at T = 1e-3", async () => {
  const f = randomFeatures([8, 2, 6], 14);
  const fn = (x: tf.Tensor) =>
    ntXentLoss(x as tf.Tensor3D, { temperature: 1e-3 });
  const loss = fn(f);
  const g = tf.grad(fn)(f);
  assertFinite(await read(loss), "loss");
  assertFinite(await read(g), "gradient");
  tf.dispose([f, loss, g]);
});

Deno.test("ntXentLoss() gradient matches central finite differences", async () => {
  const f = randomFeatures([3, 2, 3], 15);
  await checkGradient(
    (x) => ntXentLoss(x as tf.Tensor3D, { temperature: 0.5 }),
    f,
  );
  f.dispose();
});

Deno.test("ntXentLoss() rejects bad input with exact messages", () => {
  const f = tf.zeros([2, 2, 3]) as tf.Tensor3D;
  const bad = tf.zeros([2, 2, 3, 1]);
  assert.throws(() => ntXentLoss(bad as unknown as tf.Tensor3D), {
    name: "TypeError",
    message:
      "Cannot compute ntXentLoss as 'features' must be rank 3 [batch, views, dim]: current shape is [2,2,3,1]",
  });
  assert.throws(() => ntXentLoss(f, { temperature: -0.1 }), {
    name: "RangeError",
    message:
      "Cannot compute ntXentLoss as 'temperature' must be a finite number > 0: current value is -0.1",
  });
  assert.throws(() => ntXentLoss(f, { baseTemperature: NaN }), {
    name: "RangeError",
    message:
      "Cannot compute ntXentLoss as 'baseTemperature' must be a finite number > 0: current value is NaN",
  });
  tf.dispose([f, bad]);
});

Deno.test("ntXentLoss() leaks no tensor, forward or backward", () => {
  const f = randomFeatures([4, 2, 3], 16);
  assertNoLeak(() => ntXentLoss(f));
  assertNoLeak(() => tf.grad((x) => ntXentLoss(x as tf.Tensor3D))(f));
  f.dispose();
});

testOnBackends(
  "ntXentLoss() matches the PyTorch reference loss and gradient",
  async (backend) => {
    const ref = REFERENCE.ntxent_a;
    const f = tf.tensor3d(ref.features);
    const options = { temperature: ref.temperature };
    const loss = ntXentLoss(f, options);
    const g = tf.grad((x) => ntXentLoss(x as tf.Tensor3D, options))(f);
    assertAlmostEquals(await read(loss), ref.loss, tolerance(backend));
    assertAlmostEquals(await read(g), ref.grad, tolerance(backend));
    tf.dispose([f, loss, g]);
  },
);
