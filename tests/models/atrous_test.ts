import "./_setup.ts";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { atrousConv2d } from "../../models/mod.ts";
import { Prng } from "../../random/mod.ts";
import {
  assertAlmostEquals,
  assertNoLeak,
  testOnBackends,
  tolerance,
} from "../_utils.ts";

function seeded(shape: number[], seed: number): tf.Tensor {
  const p = new Prng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: n }, () => p.uniform(-1, 1)),
    shape,
  );
}

// [height, width, rate]: every tap live, some taps dead (partial), centre
// only, and every tap live but reading mostly padding (a quarter of the
// multiply-adds on pixels, as the paper's rate 12 on a 16×16 map).
const CASES: [number, number, number][] = [
  [7, 6, 2],
  [5, 5, 3],
  [3, 7, 4],
  [4, 4, 5],
  [10, 9, 7],
];

testOnBackends(
  "atrousConv2d() matches tf.conv2d with dilation",
  async (backend) => {
    for (const [h, w, rate] of CASES) {
      const x = seeded([2, h, w, 3], 1) as tf.Tensor4D;
      const f = seeded([3, 3, 3, 4], 2) as tf.Tensor4D;
      const ours = atrousConv2d(x, f, { rate });
      const ref = tf.conv2d(x, f, 1, "same", "NHWC", rate);
      assert.deepEqual(ours.shape, ref.shape);
      assertAlmostEquals(
        await ours.data(),
        await ref.data(),
        10 * tolerance(backend),
        `${h}x${w} rate ${rate}`,
      );
      tf.dispose([x, f, ours, ref]);
    }
  },
);

/**
 * Central finite differences of `loss(x, f) = Σ atrous(x, f) · r` at the
 * coordinates `at` of `x` (wrt 0) or `f` (wrt 1). The loss is linear in each
 * argument, so the differences are exact up to float32 rounding. Perturbed
 * inputs are stacked along the batch axis, so one call evaluates them all.
 */
async function finiteDifferences(
  x: tf.Tensor4D,
  f: tf.Tensor4D,
  r: tf.Tensor4D,
  rate: number,
  wrt: 0 | 1,
  at: number[],
): Promise<number[]> {
  const eps = 0.05;
  const target = wrt === 0 ? x : f;
  const base = await target.data();
  const losses = tf.tidy(() => {
    const perturbed = at.flatMap((i) =>
      [1, -1].map((sign) => {
        const v = Float32Array.from(base);
        v[i] = v[i]! + sign * eps;
        return tf.tensor(v, target.shape) as tf.Tensor4D;
      })
    );
    if (wrt === 0) {
      const y = atrousConv2d(tf.concat(perturbed, 0), f, { rate });
      return tf.sum(tf.mul(y, r), [1, 2, 3]);
    }
    return tf.stack(
      perturbed.map((p) => tf.sum(tf.mul(atrousConv2d(x, p, { rate }), r))),
    );
  });
  const l = await losses.data();
  losses.dispose();
  return at.map((_, k) => (l[2 * k]! - l[2 * k + 1]!) / (2 * eps));
}

testOnBackends(
  "atrousConv2d() gradients match central finite differences",
  async (backend) => {
    for (const [h, w, rate] of CASES) {
      const x = seeded([1, h, w, 2], 3) as tf.Tensor4D;
      const f = seeded([3, 3, 2, 3], 4) as tf.Tensor4D;
      const r = seeded([1, h, w, 3], 5) as tf.Tensor4D;
      const [gx, gf] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(
          tf.mul(atrousConv2d(a as tf.Tensor4D, b as tf.Tensor4D, { rate }), r),
        )
      )([x, f]);
      const tol = backend === "webgpu" ? 2e-2 : 2e-3;
      const allX = Array.from({ length: x.size }, (_, i) => i);
      const allF = Array.from({ length: f.size }, (_, i) => i);
      assertAlmostEquals(
        await gx!.data(),
        await finiteDifferences(x, f, r, rate, 0, allX),
        tol,
        `dx ${h}x${w} rate ${rate}`,
      );
      assertAlmostEquals(
        await gf!.data(),
        await finiteDifferences(x, f, r, rate, 1, allF),
        tol,
        `df ${h}x${w} rate ${rate}`,
      );
      tf.dispose([x, f, r, gx!, gf!]);
    }
  },
  { purpose: "train" },
);

testOnBackends(
  "atrousConv2d() at rate 18 on a 16×16 map is its centre tap alone",
  async (backend) => {
    const x = seeded([2, 16, 16, 4], 6) as tf.Tensor4D;
    const f = seeded([3, 3, 4, 5], 7) as tf.Tensor4D;
    const y = atrousConv2d(x, f, { rate: 18 });
    const centre = tf.conv2d(
      x,
      f.slice([1, 1, 0, 0], [1, 1, 4, 5]) as tf.Tensor4D,
      1,
      "valid",
    );
    assertAlmostEquals(
      await y.data(),
      await centre.data(),
      10 * tolerance(backend),
    );
    // Only the centre tap can receive a gradient.
    const g = tf.grad((b: tf.Tensor) =>
      atrousConv2d(x, b as tf.Tensor4D, { rate: 18 }).sum()
    )(f);
    const taps = await tf.sum(tf.abs(g), [2, 3]).data();
    assert.deepEqual(
      Array.from(taps).map((v, i) => i === 4 ? v > 0 : v === 0),
      Array(9).fill(true),
    );
    tf.dispose([x, f, y, centre, g]);
  },
  { purpose: "train" },
);

Deno.test("atrousConv2d() leaves no tensors behind, forward or backward", () => {
  const x = seeded([1, 6, 6, 2], 8) as tf.Tensor4D;
  const f = seeded([3, 3, 2, 2], 9) as tf.Tensor4D;
  for (const rate of [1, 2, 4, 6]) {
    assertNoLeak(() => atrousConv2d(x, f, { rate }));
    assertNoLeak(() =>
      tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        atrousConv2d(a as tf.Tensor4D, b as tf.Tensor4D, { rate }).sum()
      )([x, f])
    );
  }
  tf.dispose([x, f]);
});

Deno.test("atrousConv2d() rejects bad arguments, naming them", () => {
  const x = tf.zeros([1, 4, 4, 2]) as tf.Tensor4D;
  const f = tf.zeros([3, 3, 2, 1]) as tf.Tensor4D;
  assert.throws(() => atrousConv2d(x, f, { rate: 0 }), {
    name: "RangeError",
    message:
      "Cannot compute atrousConv2d as 'rate' must be a positive integer: current value is 0",
  });
  assert.throws(
    () => atrousConv2d(x, tf.zeros([3, 3, 3, 1]) as tf.Tensor4D, { rate: 2 }),
    {
      name: "TypeError",
      message:
        /'filter' must be \[kh, kw, 2, outChannels\]: current shape is \[3,3,3,1\]/,
    },
  );
  assert.throws(
    () => atrousConv2d(x, tf.zeros([2, 2, 2, 1]) as tf.Tensor4D, { rate: 2 }),
    {
      name: "TypeError",
      message: /odd kernel sizes/,
    },
  );
  assert.throws(
    () =>
      atrousConv2d(tf.zeros([4, 4, 2]) as unknown as tf.Tensor4D, f, {
        rate: 2,
      }),
    {
      name: "TypeError",
      message: /'x' must be rank 4/,
    },
  );
  tf.dispose([x, f]);
});
