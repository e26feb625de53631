import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { diceLoss } from "../../losses/mod.ts";
import {
  assertAlmostEquals,
  assertNoLeak,
  testOnBackends,
  tolerance,
} from "../_utils.ts";
import { assertFinite, checkGradient, read } from "./_helpers.ts";

const S = 1e-5; // MONAI's default smooth_nr = smooth_dr

// One 2×2 sample: p = [0.5, 1, 0, 0.5], y = [1, 1, 0, 0], so
// Σpy = 0.5 + 1 = 1.5, Σp = 2, Σy = 2, Σp² = 0.25 + 1 + 0.25 = 1.5, Σy² = 2.
const P1 = [[[0.5, 1], [0, 0.5]]];
const Y1 = [1, 1, 0, 0];

Deno.test("diceLoss() of a binary map is 1 − (2·Σpy + s) / (Σp + Σy + s)", async () => {
  const p = tf.tensor3d(P1);
  const loss = diceLoss(p, Y1);
  assertAlmostEquals(await read(loss), 1 - (3 + S) / (4 + S), 1e-7);
  tf.dispose([p, loss]);
});

Deno.test("diceLoss() with squared uses Σp² + Σy² in the denominator", async () => {
  const p = tf.tensor3d(P1);
  const loss = diceLoss(p, Y1, { squared: true });
  assertAlmostEquals(await read(loss), 1 - (3 + S) / (3.5 + S), 1e-7);
  tf.dispose([p, loss]);
});

Deno.test("diceLoss() honours smoothNr and smoothDr", async () => {
  const p = tf.tensor3d(P1);
  const loss = diceLoss(p, Y1, { smoothNr: 0, smoothDr: 1 });
  assertAlmostEquals(await read(loss), 1 - 3 / 5, 1e-7);
  tf.dispose([p, loss]);
});

Deno.test("diceLoss() averages per-sample Dice ('mean') or pools the sums ('batch')", async () => {
  // Sample 2 predicts 0.2 everywhere on an empty label: Σpy = 0, Σp = 0.8,
  // Σy = 0, so its Dice is s / (0.8 + s). Pooled: Σpy = 1.5, Σp = 2.8, Σy = 2.
  const p = tf.tensor3d([...P1, [[0.2, 0.2], [0.2, 0.2]]]);
  const y = tf.tensor3d([[[1, 1], [0, 0]], [[0, 0], [0, 0]]]);
  const mean = diceLoss(p, y);
  const batch = diceLoss(p, y, { reduction: "batch" });
  const a = 1 - (3 + S) / (4 + S);
  const b = 1 - S / (0.8 + S);
  assertAlmostEquals(await read(mean), (a + b) / 2, 1e-6);
  assertAlmostEquals(await read(batch), 1 - (3 + S) / (4.8 + S), 1e-6);
  tf.dispose([p, y, mean, batch]);
});

Deno.test("diceLoss() is 0, not NaN, when prediction and label are both empty", async () => {
  const p = tf.zeros([2, 3, 3]) as tf.Tensor3D;
  const loss = diceLoss(p, new Uint8Array(18));
  const g = tf.grad((x) => diceLoss(x as tf.Tensor3D, new Uint8Array(18)))(p);
  assert.deepEqual(await read(loss), [0]);
  assertFinite(await read(g), "gradient");
  tf.dispose([p, loss, g]);
});

// Multi-class: one sample, two pixels, three classes, labels [0, 2].
//   class 0: Σpy = 0.7, Σp = 0.8, Σy = 1 → Dice (1.4 + s) / (1.8 + s)
//   class 1: Σpy = 0,   Σp = 0.5, Σy = 0 → Dice s / (0.5 + s)
//   class 2: Σpy = 0.6, Σp = 0.7, Σy = 1 → Dice (1.2 + s) / (1.7 + s)
const P3 = [[[[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]]]];
const DICE3 = [(1.4 + S) / (1.8 + S), S / (0.5 + S), (1.2 + S) / (1.7 + S)];

Deno.test("diceLoss() of multi-class input averages 1 − Dice over classes", async () => {
  const p = tf.tensor4d(P3);
  const ids = tf.tensor3d([[[0, 2]]], undefined, "int32");
  const oneHot = tf.tensor4d([[[[1, 0, 0], [0, 0, 1]]]]);
  const expected = DICE3.reduce((a, d) => a + (1 - d), 0) / 3;
  const losses = [
    diceLoss(p, ids),
    diceLoss(p, oneHot),
    diceLoss(p, [0, 2]),
    diceLoss(p, [1, 0, 0, 0, 0, 1]),
  ];
  for (const loss of losses) {
    assertAlmostEquals(await read(loss), expected, 1e-6);
  }
  tf.dispose([p, ids, oneHot, ...losses]);
});

Deno.test("diceLoss() with includeBackground false drops class 0", async () => {
  const p = tf.tensor4d(P3);
  const loss = diceLoss(p, [0, 2], { includeBackground: false });
  assertAlmostEquals(await read(loss), (2 - DICE3[1]! - DICE3[2]!) / 2, 1e-6);
  tf.dispose([p, loss]);
});

Deno.test("diceLoss() on a 2-class softmax without background is the binary loss of channel 1", async () => {
  // The authors' stage-3 loss: foreground channel of a 2-class softmax,
  // squared denominator, sums over batch and space, eps 1e-7.
  const logits = tf.tensor4d(
    [
      0.3,
      -0.2,
      1.1,
      0.4,
      -0.7,
      0.2,
      0.5,
      0.5,
      0.9,
      -1.3,
      0.1,
      0.8,
      -0.4,
      0.6,
      0.2,
      -0.1,
    ],
    [2, 2, 2, 2],
  );
  const probs = tf.softmax(logits) as tf.Tensor4D;
  const fg = tf.squeeze(tf.slice(probs, [0, 0, 0, 1], [-1, -1, -1, 1]), [3]);
  const y = [1, 0, 1, 1, 0, 0, 1, 0];
  const options = {
    squared: true,
    reduction: "batch" as const,
    smoothNr: 1e-7,
    smoothDr: 1e-7,
  };
  const a = diceLoss(probs, y, { ...options, includeBackground: false });
  const b = diceLoss(fg as tf.Tensor3D, y, options);
  assertAlmostEquals(await read(a), await read(b), 1e-7);
  tf.dispose([logits, probs, fg, a, b]);
});

Deno.test("diceLoss() gradient matches central finite differences", async () => {
  const p = tf.tensor3d(
    [0.2, 0.9, 0.4, 0.6, 0.1, 0.7, 0.3, 0.5, 0.8, 0.9, 0.2, 0.4],
    [2, 2, 3],
  );
  const y = [1, 1, 0, 1, 0, 0, 0, 1, 1, 1, 0, 0];
  await checkGradient((x) => diceLoss(x as tf.Tensor3D, y), p);
  await checkGradient(
    (x) => diceLoss(x as tf.Tensor3D, y, { squared: true, reduction: "batch" }),
    p,
  );
  const q = tf.softmax(
    tf.tensor4d(
      [0.1, 0.5, -0.3, 1.2, -0.4, 0.2, -0.6, 0.3, 0.9, 0.4, 0.4, -1],
      [
        2,
        1,
        2,
        3,
      ],
    ),
  );
  await checkGradient(
    (x) =>
      diceLoss(x as tf.Tensor4D, [2, 0, 1, 1], { includeBackground: false }),
    q,
  );
  tf.dispose([p, q]);
});

Deno.test("diceLoss() is invariant to permuting the batch", async () => {
  const p = tf.tensor3d(
    [0.2, 0.9, 0.6, 0.1, 0.3, 0.5, 0.8, 0.9, 0.1, 0.1, 0.4, 0.7],
    [3, 2, 2],
  );
  const y = tf.tensor3d([[[1, 1], [0, 1]], [[0, 0], [1, 1]], [[0, 1], [0, 1]]]);
  const order = [2, 0, 1];
  const pp = tf.gather(p, order) as tf.Tensor3D;
  const yy = tf.gather(y, order);
  for (const reduction of ["mean", "batch"] as const) {
    const a = diceLoss(p, y, { reduction });
    const b = diceLoss(pp, yy, { reduction });
    assertAlmostEquals(await read(b), await read(a), 1e-6);
    tf.dispose([a, b]);
  }
  tf.dispose([p, y, pp, yy]);
});

Deno.test("diceLoss() rejects bad input with exact messages", () => {
  const p3 = tf.zeros([1, 2, 2]) as tf.Tensor3D;
  const p4 = tf.zeros([1, 1, 2, 3]) as tf.Tensor4D;
  const p1 = tf.zeros([1, 1, 2, 1]) as tf.Tensor4D;
  const rank2 = tf.zeros([2, 2]);
  const floatIds = tf.zeros([1, 1, 2]);
  const wrong = tf.zeros([1, 2, 3]);
  const cases: [() => unknown, string, string][] = [
    [
      () => diceLoss(rank2 as unknown as tf.Tensor3D, [0, 0, 0, 0]),
      "TypeError",
      "Cannot compute diceLoss as 'probs' must be rank 4 [batch, height, width] or [batch, height, width, classes]: current shape is [2,2]",
    ],
    [
      () => diceLoss(p3, [0, 1, 0]),
      "TypeError",
      "Cannot compute diceLoss as 'labels' must have length 4 for 'probs' of shape [1,2,2]: current length is 3",
    ],
    [
      () => diceLoss(p4, [0, 1, 0]),
      "TypeError",
      "Cannot compute diceLoss as 'labels' must have length 6 (one-hot) or 2 (class ids) for 'probs' of shape [1,1,2,3]: current length is 3",
    ],
    [
      () => diceLoss(p3, wrong),
      "TypeError",
      "Cannot compute diceLoss as 'labels' must have shape [1,2,2]: current shape is [1,2,3]",
    ],
    [
      () => diceLoss(p4, floatIds),
      "TypeError",
      "Cannot compute diceLoss as integer 'labels' must have dtype int32: current dtype is float32",
    ],
    [
      () => diceLoss(p4, [0, 3]),
      "RangeError",
      "Cannot compute diceLoss as 'labels' must hold integers in [0, 2]: current value at index 1 is 3",
    ],
    [
      () => diceLoss(p4, [0, 1.5]),
      "RangeError",
      "Cannot compute diceLoss as 'labels' must hold integers in [0, 2]: current value at index 1 is 1.5",
    ],
    [
      () => diceLoss(p3, [0, 2, 0, 0]),
      "RangeError",
      "Cannot compute diceLoss as 'labels' must hold values in [0, 1]: current value at index 1 is 2",
    ],
    [
      () => diceLoss(p3, "0000" as unknown as number[]),
      "TypeError",
      `Cannot compute diceLoss as 'labels' must be a tf.Tensor, number[] or typed array: current value is "0000"`,
    ],
    [
      () => diceLoss(p3, [0, 0, 0, 0], { smoothDr: 0 }),
      "RangeError",
      "Cannot compute diceLoss as 'smoothDr' must be a finite number > 0: current value is 0",
    ],
    [
      () => diceLoss(p3, [0, 0, 0, 0], { smoothNr: -1 }),
      "RangeError",
      "Cannot compute diceLoss as 'smoothNr' must be a finite number >= 0: current value is -1",
    ],
    [
      () =>
        diceLoss(p3, [0, 0, 0, 0], {
          reduction: "sum" as unknown as "mean",
        }),
      "RangeError",
      `Cannot compute diceLoss as 'reduction' must be "mean" or "batch": current value is "sum"`,
    ],
    [
      () => diceLoss(p1, [0, 0], { includeBackground: false }),
      "RangeError",
      "Cannot compute diceLoss as 'includeBackground' false needs at least 2 classes: current shape is [1,1,2,1]",
    ],
  ];
  const before = tf.memory().numTensors;
  for (const [call, name, message] of cases) {
    assert.throws(call, { name, message });
  }
  assert.equal(tf.memory().numTensors, before, "a rejected call leaked");
  tf.dispose([p3, p4, p1, rank2, floatIds, wrong]);
});

Deno.test("diceLoss() leaks no tensor, forward or backward", () => {
  const p = tf.tensor4d(P3);
  const ids = tf.tensor3d([[[0, 2]]], undefined, "int32");
  assertNoLeak(() => diceLoss(p, ids, { includeBackground: false }));
  assertNoLeak(() => diceLoss(p, [0, 2], { squared: true }));
  assertNoLeak(() => tf.grad((x) => diceLoss(x as tf.Tensor4D, ids))(p));
  tf.dispose([p, ids]);
});

testOnBackends(
  "diceLoss() matches the closed-form loss and gradient",
  async (backend) => {
    // d/dpₖ [1 − (2I + s)/(D + s)] = −(2yₖ(D + s) − (2I + s)) / (D + s)²
    // with I = Σpy = 1.5, D = Σp + Σy = 4 for the sample P1, Y1.
    const p = tf.tensor3d(P1);
    const loss = diceLoss(p, Y1);
    const g = tf.grad((x) => diceLoss(x as tf.Tensor3D, Y1))(p);
    const grad = Y1.map((y) => -(2 * y * (4 + S) - (3 + S)) / (4 + S) ** 2);
    assertAlmostEquals(
      await read(loss),
      1 - (3 + S) / (4 + S),
      tolerance(backend),
    );
    assertAlmostEquals(await read(g), grad, tolerance(backend));
    tf.dispose([p, loss, g]);
  },
);
