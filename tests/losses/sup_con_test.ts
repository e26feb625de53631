import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { supConLoss } from "../../losses/mod.ts";
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

// Two samples, two identical views each, on orthogonal axes: rows (view
// major) e1, e2, e1, e2. With T = 1 every anchor sees logit 1 for its twin
// view and 0 for the two others, so its denominator is e + 2.
const ORTHOGONAL = [[[1, 0], [1, 0]], [[0, 1], [0, 1]]];

Deno.test("supConLoss() with distinct labels is log(e + 2) − 1 on orthogonal pairs", async () => {
  const f = tf.tensor3d(ORTHOGONAL);
  const loss = supConLoss(f, [0, 1], { temperature: 1 });
  // Hand computation: −log(e¹ / (e¹ + e⁰ + e⁰)) = log(e + 2) − 1.
  assertAlmostEquals(await read(loss), Math.log(Math.E + 2) - 1, 1e-6);
  tf.dispose([f, loss]);
});

Deno.test("supConLoss() with one label averages over three positives: log(e + 2) − 1/3", async () => {
  const f = tf.tensor3d(ORTHOGONAL);
  const loss = supConLoss(f, [4, 4], { temperature: 1 });
  // Positives of row 0 have logits 1, 0, 0: −mean(1, 0, 0) + log(e + 2).
  assertAlmostEquals(await read(loss), Math.log(Math.E + 2) - 1 / 3, 1e-6);
  tf.dispose([f, loss]);
});

Deno.test("supConLoss() divides the logits by the temperature: log(e² + 2) − 2 at T = 0.5", async () => {
  const f = tf.tensor3d(ORTHOGONAL);
  const loss = supConLoss(f, [0, 1], { temperature: 0.5 });
  assertAlmostEquals(await read(loss), Math.log(Math.E ** 2 + 2) - 2, 1e-6);
  tf.dispose([f, loss]);
});

Deno.test("supConLoss() normalises the features: scaling a sample changes nothing", async () => {
  const f = tf.tensor3d([[[3, 0], [0.5, 0]], [[0, 7], [0, 2]]]);
  const loss = supConLoss(f, [0, 1], { temperature: 1 });
  assertAlmostEquals(await read(loss), Math.log(Math.E + 2) - 1, 1e-6);
  tf.dispose([f, loss]);
});

Deno.test("supConLoss() scales by temperature / baseTemperature", async () => {
  const f = randomFeatures([4, 2, 3], 1);
  const plain = supConLoss(f, [0, 1, 0, 1], { temperature: 0.1 });
  const scaled = supConLoss(f, [0, 1, 0, 1], {
    temperature: 0.1,
    baseTemperature: 0.07,
  });
  assertAlmostEquals(
    await read(scaled),
    (await read(plain))[0]! * 0.1 / 0.07,
    1e-5,
  );
  tf.dispose([f, plain, scaled]);
});

Deno.test("supConLoss() drops anchors without a positive from the mean (single view)", async () => {
  // Rows e1, e1, e2 (one view each), labels 0, 0, 1, T = 1: rows 0 and 1
  // have one positive at logit 1 and a negative at 0, so each loses
  // log(e + 1) − 1; row 2 has no positive and is left out (not counted as 0).
  const f = tf.tensor3d([[[1, 0]], [[1, 0]], [[0, 1]]]);
  const loss = supConLoss(f, [0, 0, 1], { temperature: 1 });
  assertAlmostEquals(await read(loss), Math.log(Math.E + 1) - 1, 1e-6);
  tf.dispose([f, loss]);
});

Deno.test("supConLoss() is 0 with a zero gradient when no anchor has a positive", async () => {
  const f = randomFeatures([4, 1, 3], 2);
  const loss = supConLoss(f, [0, 1, 2, 3]);
  assert.deepEqual(await read(loss), [0]);
  const g = tf.grad((x) => supConLoss(x as tf.Tensor3D, [0, 1, 2, 3]))(f);
  assert.deepEqual(await read(g), new Array(12).fill(0));
  tf.dispose([f, loss, g]);
});

Deno.test("supConLoss() of a one-sample, one-view batch is 0 with a zero gradient", async () => {
  const f = tf.tensor3d([[[0.3, -0.4]]]);
  const g = tf.grad((x) => supConLoss(x as tf.Tensor3D, [0]))(f);
  const loss = supConLoss(f, [0]);
  assert.deepEqual(await read(loss), [0]);
  assert.deepEqual(await read(g), [0, 0]);
  tf.dispose([f, loss, g]);
});

Deno.test("supConLoss() stays finite and exact at T = 1e-3 where every other logit underflows", async () => {
  // Rows e1, u, −e1, −u with u = (0.6, 0.8); samples {e1, −e1} and {u, −u}.
  // Each anchor's positive is its opposite (logit −1/T) and its negatives
  // have logits ±0.6/T, so −log p = 1/T + 0.6/T + log(1 + e^−1.2/T + e^−1.6/T)
  // = 1600 at T = 1e-3. Shifting by the diagonal instead (1/T) would leave
  // exp(−400) = 0 in float32 in the denominator and give Infinity.
  const f = tf.tensor3d([[[1, 0], [-1, 0]], [[0.6, 0.8], [-0.6, -0.8]]]);
  const loss = supConLoss(f, [0, 1], { temperature: 1e-3 });
  assertAlmostEquals(await read(loss), 1600, 2e-3);
  const g = tf.grad((x) =>
    supConLoss(x as tf.Tensor3D, [0, 1], { temperature: 1e-3 })
  )(f);
  assertFinite(await read(g), "gradient");
  tf.dispose([f, loss, g]);
});

Deno.test("supConLoss() gives no NaN for all-distinct, all-equal labels and tiny temperatures", async () => {
  const f = randomFeatures([6, 2, 5], 3);
  for (const labels of [[0, 1, 2, 3, 4, 5], [7, 7, 7, 7, 7, 7]]) {
    for (const temperature of [1e-3, 0.1, 10]) {
      const fn = (x: tf.Tensor) =>
        supConLoss(x as tf.Tensor3D, labels, { temperature });
      const loss = fn(f);
      const g = tf.grad(fn)(f);
      assertFinite(await read(loss), `loss (T = ${temperature})`);
      assertFinite(await read(g), `gradient (T = ${temperature})`);
      tf.dispose([loss, g]);
    }
  }
  f.dispose();
});

Deno.test("supConLoss() keeps a zero feature vector at zero: finite loss and gradient", async () => {
  // Rows (view major) 0, e1, e2, e1; samples {0, e2} and {e1, e1}, T = 1.
  // The zero row has logit 0 to everything. Row 0 (positive row 2 at logit
  // 0, denominator e⁰ + e⁰ + e⁰) and row 2 (positive row 0, the same) each
  // lose log 3; rows 1 and 3 (twin at logit 1, denominator e + 2) each lose
  // log(e + 2) − 1.
  const f = tf.tensor3d([[[0, 0], [0, 1]], [[1, 0], [1, 0]]]);
  const loss = supConLoss(f, [0, 1], { temperature: 1 });
  const expected = (2 * Math.log(3) + 2 * (Math.log(Math.E + 2) - 1)) / 4;
  assertAlmostEquals(await read(loss), expected, 1e-6);
  const g = tf.grad((x) =>
    supConLoss(x as tf.Tensor3D, [0, 1], { temperature: 1 })
  )(f);
  assertFinite(await read(g), "gradient");
  tf.dispose([f, loss, g]);
});

Deno.test("supConLoss() gradient matches central finite differences", async () => {
  const f = randomFeatures([4, 2, 3], 4);
  await checkGradient(
    (x) => supConLoss(x as tf.Tensor3D, [0, 1, 1, 0], { temperature: 0.5 }),
    f,
  );
  f.dispose();
});

Deno.test("supConLoss() is invariant to permuting the batch", async () => {
  const f = randomFeatures([6, 2, 5], 5);
  const labels = [0, 1, 0, 2, 1, 2];
  const order = [3, 0, 5, 1, 4, 2];
  const g = tf.gather(f, order);
  const a = supConLoss(f, labels);
  const b = supConLoss(g as tf.Tensor3D, order.map((i) => labels[i]!));
  assertAlmostEquals(await read(b), await read(a), 1e-5);
  tf.dispose([f, g, a, b]);
});

Deno.test("supConLoss() accepts number[], Int32Array and int32 tensors alike", async () => {
  const f = randomFeatures([4, 2, 3], 6);
  const ids = tf.tensor1d([2, 5, 2, 5], "int32");
  const losses = [
    supConLoss(f, [2, 5, 2, 5]),
    supConLoss(f, Int32Array.from([2, 5, 2, 5])),
    supConLoss(f, ids),
  ];
  const values = await Promise.all(losses.map(read));
  assertAlmostEquals(values[1]!, values[0]!, 0);
  assertAlmostEquals(values[2]!, values[0]!, 0);
  tf.dispose([f, ids, ...losses]);
});

Deno.test("supConLoss() rejects bad input with exact messages", () => {
  const f = tf.zeros([2, 2, 3]) as tf.Tensor3D;
  const rank2 = tf.zeros([2, 3]);
  const ints = tf.zeros([2, 2, 3], "int32");
  const empty = tf.zeros([0, 2, 3]);
  const floatIds = tf.tensor1d([0, 1]);
  const column = tf.zeros([2, 1], "int32");
  const cases: [() => unknown, string, string][] = [
    [
      () => supConLoss(rank2 as unknown as tf.Tensor3D, [0, 1]),
      "TypeError",
      "Cannot compute supConLoss as 'features' must be rank 3 [batch, views, dim]: current shape is [2,3]",
    ],
    [
      () => supConLoss([[[1]]] as unknown as tf.Tensor3D, [0]),
      "TypeError",
      "Cannot compute supConLoss as 'features' must be a tf.Tensor [batch, views, dim]: current value is an array of length 1",
    ],
    [
      () => supConLoss(ints as tf.Tensor3D, [0, 1]),
      "TypeError",
      "Cannot compute supConLoss as 'features' must have dtype float32: current dtype is int32",
    ],
    [
      () => supConLoss(empty as tf.Tensor3D, []),
      "TypeError",
      "Cannot compute supConLoss as 'features' must have no empty axis [batch, views, dim]: current shape is [0,2,3]",
    ],
    [
      () => supConLoss(f, [0, 1, 2]),
      "TypeError",
      "Cannot compute supConLoss as 'labels' must have length 2 (the batch size of 'features'): current length is 3",
    ],
    [
      () => supConLoss(f, [0, 1.5]),
      "RangeError",
      "Cannot compute supConLoss as 'labels' must hold integers: current value at index 1 is 1.5",
    ],
    [
      () => supConLoss(f, [0, NaN]),
      "RangeError",
      "Cannot compute supConLoss as 'labels' must hold integers: current value at index 1 is NaN",
    ],
    [
      () => supConLoss(f, floatIds as tf.Tensor1D),
      "TypeError",
      "Cannot compute supConLoss as 'labels' must have dtype int32: current dtype is float32",
    ],
    [
      () => supConLoss(f, column as unknown as tf.Tensor1D),
      "TypeError",
      "Cannot compute supConLoss as 'labels' must be rank 1 [batch]: current shape is [2,1]",
    ],
    [
      () => supConLoss(f, "01" as unknown as number[]),
      "TypeError",
      `Cannot compute supConLoss as 'labels' must be a number[], Int32Array or int32 tf.Tensor1D: current value is "01"`,
    ],
    [
      () => supConLoss(f, [0, 1], { temperature: 0 }),
      "RangeError",
      "Cannot compute supConLoss as 'temperature' must be a finite number > 0: current value is 0",
    ],
    [
      () => supConLoss(f, [0, 1], { temperature: Infinity }),
      "RangeError",
      "Cannot compute supConLoss as 'temperature' must be a finite number > 0: current value is Infinity",
    ],
    [
      () => supConLoss(f, [0, 1], { baseTemperature: -1 }),
      "RangeError",
      "Cannot compute supConLoss as 'baseTemperature' must be a finite number > 0: current value is -1",
    ],
  ];
  const before = tf.memory().numTensors;
  for (const [call, name, message] of cases) {
    assert.throws(call, { name, message });
  }
  assert.equal(tf.memory().numTensors, before, "a rejected call leaked");
  tf.dispose([f, rank2, ints, empty, floatIds, column]);
});

Deno.test("supConLoss() leaks no tensor, forward or backward", () => {
  const f = randomFeatures([4, 2, 3], 7);
  const ids = tf.tensor1d([0, 1, 0, 1], "int32");
  assertNoLeak(() => supConLoss(f, [0, 1, 0, 1]));
  assertNoLeak(() => supConLoss(f, ids));
  assertNoLeak(() => tf.grad((x) => supConLoss(x as tf.Tensor3D, ids))(f));
  tf.dispose([f, ids]);
});

testOnBackends(
  "supConLoss() matches the PyTorch reference loss and gradient",
  async (backend) => {
    const ref = REFERENCE.supcon_a;
    const f = tf.tensor3d(ref.features);
    const options = {
      temperature: ref.temperature,
      baseTemperature: ref.baseTemperature,
    };
    const loss = supConLoss(f, ref.labels!, options);
    const g = tf.grad((x) =>
      supConLoss(x as tf.Tensor3D, ref.labels!, options)
    )(f);
    // float32 against float64: T = 0.1 scales the logits by 10.
    assertAlmostEquals(await read(loss), ref.loss, 10 * tolerance(backend));
    assertAlmostEquals(await read(g), ref.grad, 10 * tolerance(backend));
    tf.dispose([f, loss, g]);
  },
);
