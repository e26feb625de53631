import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { modalTargetLoss, supConLoss } from "../../losses/mod.ts";
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
  referenceLoss,
} from "./_helpers.ts";

// Rows (view major) e1, e2, e1, e2 for samples 0 (e1 twins) and 1 (e2 twins).
const ORTHOGONAL = [[[1, 0], [1, 0]], [[0, 1], [0, 1]]];

Deno.test("modalTargetLoss() treats another domain with the same target as a negative", async () => {
  // Same target, different domains: only the twin view is a positive, so
  // the loss is the NT-Xent value log(e + 2) − 1 at T = 1.
  const f = tf.tensor3d(ORTHOGONAL);
  const loss = modalTargetLoss(f, { domain: [0, 1], target: [5, 5] }, {
    temperature: 1,
  });
  assertAlmostEquals(await read(loss), Math.log(Math.E + 2) - 1, 1e-6);
  tf.dispose([f, loss]);
});

Deno.test("modalTargetLoss() weights partial positives in the numerator", async () => {
  // Same domain, different targets, partialPositiveWeight 0.5, T = 1. Row 0
  // (e1): twin at logit 1 with weight 1, rows 1 and 3 (e2) at logit 0 with
  // weight 0.5 each; denominator e + 2, L = log(e + 2). Weighted mean:
  // −(1·(1 − L) + 0.5·(−L) + 0.5·(−L)) / 2 = L − 0.5, the same for all rows.
  const f = tf.tensor3d(ORTHOGONAL);
  const loss = modalTargetLoss(f, { domain: [0, 0], target: [1, 2] }, {
    temperature: 1,
    partialPositiveWeight: 0.5,
  });
  assertAlmostEquals(await read(loss), Math.log(Math.E + 2) - 0.5, 1e-6);
  tf.dispose([f, loss]);
});

Deno.test("modalTargetLoss() with partialPositiveWeight 1 is supConLoss() on domains", async () => {
  const f = randomFeatures([6, 2, 4], 21);
  const domain = [0, 1, 0, 1, 1, 0];
  const a = modalTargetLoss(f, { domain, target: [3, 1, 2, 3, 1, 2] }, {
    partialPositiveWeight: 1,
  });
  const b = supConLoss(f, domain);
  assertAlmostEquals(await read(a), await read(b), 1e-5);
  tf.dispose([f, a, b]);
});

Deno.test("modalTargetLoss() equals supConLoss() on composite (domain, target) labels", async () => {
  // The authors' composite id: organ + 12 × phase.
  const f = randomFeatures([8, 2, 5], 22);
  const domain = [0, 1, 0, 1, 0, 1, 1, 0];
  const target = [3, 3, 3, 7, 7, 3, 7, 11];
  const composite = domain.map((d, i) => target[i]! + 12 * d);
  for (const temperature of [0.07, 0.3]) {
    const a = modalTargetLoss(f, { domain, target }, { temperature });
    const b = supConLoss(f, composite, { temperature });
    assertAlmostEquals(await read(a), await read(b), 1e-6);
    tf.dispose([a, b]);
  }
  f.dispose();
});

Deno.test("modalTargetLoss() is invariant to permuting the batch", async () => {
  const f = randomFeatures([6, 2, 5], 23);
  const domain = [0, 0, 1, 1, 0, 1];
  const target = [1, 2, 1, 2, 1, 1];
  const order = [2, 4, 0, 5, 1, 3];
  const g = tf.gather(f, order) as tf.Tensor3D;
  const options = { partialPositiveWeight: 0.25 };
  const a = modalTargetLoss(f, { domain, target }, options);
  const b = modalTargetLoss(g, {
    domain: order.map((i) => domain[i]!),
    target: order.map((i) => target[i]!),
  }, options);
  assertAlmostEquals(await read(b), await read(a), 1e-5);
  tf.dispose([f, g, a, b]);
});

Deno.test("modalTargetLoss() gives no NaN with no positive, one view, or T = 1e-3", async () => {
  const f = randomFeatures([4, 1, 3], 24);
  const distinct = { domain: [0, 1, 0, 1], target: [0, 0, 1, 1] };
  const loss = modalTargetLoss(f, distinct);
  const g = tf.grad((x) => modalTargetLoss(x as tf.Tensor3D, distinct))(f);
  assert.deepEqual(await read(loss), [0]);
  assert.deepEqual(await read(g), new Array(12).fill(0));
  tf.dispose([loss, g]);
  const cold = { temperature: 1e-3, partialPositiveWeight: 0.5 };
  const same = { domain: [0, 0, 0, 0], target: [0, 0, 1, 1] };
  const fn = (x: tf.Tensor) => modalTargetLoss(x as tf.Tensor3D, same, cold);
  const l2 = fn(f);
  const g2 = tf.grad(fn)(f);
  assertFinite(await read(l2), "loss");
  assertFinite(await read(g2), "gradient");
  tf.dispose([f, l2, g2]);
});

Deno.test("modalTargetLoss() gradient matches central finite differences", async () => {
  const f = randomFeatures([4, 2, 3], 25);
  await checkGradient(
    (x) =>
      modalTargetLoss(x as tf.Tensor3D, {
        domain: [0, 0, 1, 1],
        target: [1, 2, 1, 1],
      }, { temperature: 0.5, partialPositiveWeight: 0.3 }),
    f,
  );
  f.dispose();
});

Deno.test("modalTargetLoss() rejects bad input with exact messages", () => {
  const f = tf.zeros([2, 2, 3]) as tf.Tensor3D;
  const ok = { domain: [0, 1], target: [0, 0] };
  const cases: [() => unknown, string, string][] = [
    [
      () => modalTargetLoss(f, null as unknown as typeof ok),
      "TypeError",
      "Cannot compute modalTargetLoss as 'labels' must be an object { domain, target }: current value is null",
    ],
    [
      () => modalTargetLoss(f, { domain: [0], target: [0, 0] }),
      "TypeError",
      "Cannot compute modalTargetLoss as 'labels.domain' must have length 2 (the batch size of 'features'): current length is 1",
    ],
    [
      () => modalTargetLoss(f, { domain: [0, 1], target: [0, 0.5] }),
      "RangeError",
      "Cannot compute modalTargetLoss as 'labels.target' must hold integers: current value at index 1 is 0.5",
    ],
    [
      () => modalTargetLoss(f, { domain: [0, 1] } as typeof ok),
      "TypeError",
      "Cannot compute modalTargetLoss as 'labels.target' must be a number[], Int32Array or int32 tf.Tensor1D: current value is undefined",
    ],
    [
      () => modalTargetLoss(f, ok, { partialPositiveWeight: 1.5 }),
      "RangeError",
      "Cannot compute modalTargetLoss as 'partialPositiveWeight' must be a number in [0, 1]: current value is 1.5",
    ],
    [
      () => modalTargetLoss(f, ok, { partialPositiveWeight: NaN }),
      "RangeError",
      "Cannot compute modalTargetLoss as 'partialPositiveWeight' must be a number in [0, 1]: current value is NaN",
    ],
    [
      () => modalTargetLoss(f, ok, { temperature: 0 }),
      "RangeError",
      "Cannot compute modalTargetLoss as 'temperature' must be a finite number > 0: current value is 0",
    ],
  ];
  const before = tf.memory().numTensors;
  for (const [call, name, message] of cases) {
    assert.throws(call, { name, message });
  }
  assert.equal(tf.memory().numTensors, before, "a rejected call leaked");
  f.dispose();
});

Deno.test("modalTargetLoss() leaks no tensor, forward or backward", () => {
  const f = randomFeatures([4, 2, 3], 26);
  const labels = {
    domain: tf.tensor1d([0, 0, 1, 1], "int32"),
    target: Int32Array.from([1, 2, 1, 2]),
  };
  const options = { partialPositiveWeight: 0.5 };
  assertNoLeak(() => modalTargetLoss(f, labels, options));
  assertNoLeak(() =>
    tf.grad((x) => modalTargetLoss(x as tf.Tensor3D, labels, options))(f)
  );
  tf.dispose([f, labels.domain]);
});

for (const key of ["modal_b", "modal_b_partial"] as const) {
  testOnBackends(
    `modalTargetLoss() matches the PyTorch reference (${key})`,
    async (backend) => {
      const ref = REFERENCE[key];
      const f = tf.tensor3d(ref.features);
      const labels = { domain: ref.domain!, target: ref.target! };
      const options = {
        temperature: ref.temperature,
        partialPositiveWeight: ref.partialPositiveWeight!,
      };
      const loss = modalTargetLoss(f, labels, options);
      const g = tf.grad((x) =>
        modalTargetLoss(x as tf.Tensor3D, labels, options)
      )(f);
      assertAlmostEquals(await read(loss), ref.loss, tolerance(backend));
      assertAlmostEquals(await read(g), ref.grad, tolerance(backend));
      tf.dispose([f, loss, g]);
    },
  );
}

testOnBackends(
  "modalTargetLoss() matches a float64 reference on a 24-sample batch",
  async (backend) => {
    // 3 domains × 4 targets, partial positives, several temperatures: larger
    // reductions than the fixtures above, on every backend.
    const f = randomFeatures([24, 2, 16], 27);
    const values = await f.array();
    const domain = Array.from({ length: 24 }, (_, i) => i % 3);
    const target = Array.from({ length: 24 }, (_, i) => Math.floor(i / 3) % 4);
    const settings: [number, number][] = [[0.07, 0], [0.1, 0.2], [1, 0.5]];
    for (const [temperature, ppw] of settings) {
      const loss = modalTargetLoss(f, { domain, target }, {
        temperature,
        partialPositiveWeight: ppw,
      });
      const expected = referenceLoss(
        values,
        (i, j) =>
          domain[i] !== domain[j] ? 0 : target[i] === target[j] ? 1 : ppw,
        temperature,
      );
      // Relative: logits reach 1/T.
      assertAlmostEquals(
        await read(loss),
        expected,
        tolerance(backend) * Math.max(1, expected),
      );
      loss.dispose();
    }
    f.dispose();
  },
);
