import "./_setup.ts";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  countParameters,
  createClassificationHead,
  createProjectionHead,
} from "../../models/mod.ts";
import { assertAlmostEquals, assertNoLeak } from "../_utils.ts";

Deno.test("createProjectionHead() is Linear → ReLU → Linear → L2 normalise (2048 → 2048 → 256)", async () => {
  const head = createProjectionHead({ inFeatures: 2048 });
  assert.deepEqual(Object.keys(head.params), [
    "head.0.weight",
    "head.0.bias",
    "head.2.weight",
    "head.2.bias",
  ]);
  assert.equal(countParameters(head), 2048 * 2048 + 2048 + 2048 * 256 + 256);
  head.dispose();
  const small = createProjectionHead({
    inFeatures: 3,
    hidden: 4,
    outFeatures: 2,
    seed: 1,
  });
  const x = tf.tensor2d([[1, -2, 0.5], [0, 0, 0]]);
  const p = small.params;
  const hidden = tf.relu(
    tf.add(tf.matMul(x, p["head.0.weight"]!), p["head.0.bias"]!),
  );
  const z = await tf.add(
    tf.matMul(hidden, p["head.2.weight"]!),
    p["head.2.bias"]!,
  ).array() as number[][];
  const expected = z.flatMap((r) => r.map((v) => v / Math.hypot(...r)));
  assertAlmostEquals(await small.apply(x).data(), expected, 1e-5);
  tf.dispose([x, hidden]);
  small.dispose();
});

Deno.test("createProjectionHead() initialises as PyTorch's Linear, seeded", async () => {
  const a = createProjectionHead({ inFeatures: 64, outFeatures: 8, seed: 4 });
  const b = createProjectionHead({ inFeatures: 64, outFeatures: 8, seed: 4 });
  const w = await a.params["head.0.weight"]!.data();
  assert.deepEqual(w, await b.params["head.0.weight"]!.data());
  assert.ok(
    w.every((v) => Math.abs(v) <= 1 / 8) && w.some((v) => Math.abs(v) > 0.1),
  );
  a.dispose();
  b.dispose();
});

Deno.test("createClassificationHead() is a linear layer named fc", async () => {
  const head = createClassificationHead({ inFeatures: 4, nClasses: 3 });
  assert.deepEqual(head.params["fc.weight"]!.shape, [4, 3]);
  const x = tf.eye(4);
  assertAlmostEquals(
    await head.apply(x).data(),
    await tf.add(head.params["fc.weight"]!, head.params["fc.bias"]!).data(),
    1e-6,
  );
  x.dispose();
  head.dispose();
});

Deno.test("heads leave no tensors behind and reject bad input", () => {
  const p = createProjectionHead({ inFeatures: 4, outFeatures: 2 });
  const c = createClassificationHead({ inFeatures: 4, nClasses: 2 });
  const x = tf.ones([3, 4]) as tf.Tensor2D;
  assertNoLeak(() => p.apply(x));
  assertNoLeak(() => c.apply(x, { training: true }));
  assert.throws(() => p.apply(tf.ones([3, 5]) as tf.Tensor2D), {
    name: "TypeError",
    message:
      "Cannot apply projection head as 'x' must be [batch, 4]: current shape is [3,5]",
  });
  assert.throws(
    () => createClassificationHead({ inFeatures: 4, nClasses: 0 }),
    {
      name: "RangeError",
      message:
        "Cannot createClassificationHead as 'nClasses' must be a positive integer: current value is 0",
    },
  );
  x.dispose();
  p.dispose();
  c.dispose();
});

Deno.test("createProjectionHead() has a finite gradient where its output is the zero vector", async () => {
  // Regression: z / max(‖z‖, 1e-12) gave NaN gradients at z = 0 (the
  // gradient of the norm there is 0/0); l2Normalize's form does not.
  const head = createProjectionHead({ inFeatures: 3, outFeatures: 2, seed: 1 });
  try {
    for (const v of Object.values(head.params)) v.assign(tf.zerosLike(v));
    const x = tf.tensor2d([[1, 2, 3]]);
    const g = tf.grad((a: tf.Tensor) => tf.sum(head.apply(a as tf.Tensor2D)))(
      x,
    );
    const w = Object.values(head.params).map((v) => v);
    const { grads } = tf.variableGrads(() => tf.sum(head.apply(x)), w);
    for (const t of [g, ...Object.values(grads)]) {
      assert.ok((await t.data()).every(Number.isFinite), "finite gradient");
    }
    tf.dispose([x, g, grads]);
  } finally {
    head.dispose();
  }
});
