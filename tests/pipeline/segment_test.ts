import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { diceLoss } from "../../losses/mod.ts";
import {
  foregroundProbability,
  targetClasses,
  targetDice,
} from "../../pipeline/segment.ts";
import type { DeepLab } from "../../pipeline/_models.ts";

/** A stand-in network whose logits are `logits` for every pixel. */
function fixed(logits: number[][]): DeepLab {
  return {
    config: { nClasses: logits[0]!.length },
    apply: (x: tf.Tensor4D) => {
      const [n, h, w] = x.shape;
      return tf.tensor2d(logits.slice(0, n)).reshape([n, 1, 1, -1])
        .tile([1, h, w, 1]);
    },
  } as unknown as DeepLab;
}

Deno.test("targetClasses() gives class 1 to every target of a two-class network and 1 + rank under one class per target, and names a mismatch", () => {
  assert.deepEqual(
    [...targetClasses(fixed([[0, 0]]), [3, 5, 9])],
    [[3, 1], [5, 1], [9, 1]],
  );
  assert.deepEqual(
    [...targetClasses(fixed([[0, 0, 0, 0]]), [3, 5, 9])],
    [[3, 1], [5, 2], [9, 3]],
  );
  assert.throws(
    () => targetClasses(fixed([[0, 0, 0]]), [3, 5, 9]),
    {
      message:
        "The stage-3 network has 3 output classes; expected 2 or 4 (background and one per target of [3, 5, 9])",
    },
  );
});

Deno.test("foregroundProbability() is each patch's own class under the softmax over all classes, and leaks nothing", async () => {
  await tf.setBackend("cpu");
  const net = fixed([[0, 1, 2], [0, 1, 2]]);
  const x = tf.zeros([2, 2, 2, 2]) as tf.Tensor4D;
  const before = tf.memory().numTensors;
  const fg = foregroundProbability(net, x, { classes: [1, 2] });
  assert.equal(tf.memory().numTensors, before + 1);
  const e = [1, Math.E, Math.E ** 2], z = e[0]! + e[1]! + e[2]!;
  const v = await fg.data();
  for (let i = 0; i < 4; i++) {
    assert.ok(Math.abs(v[i]! - e[1]! / z) < 1e-6);
    assert.ok(Math.abs(v[4 + i]! - e[2]! / z) < 1e-6);
  }
  assert.throws(() => foregroundProbability(net, x), {
    message:
      "foregroundProbability: a network with 3 classes needs each patch's class",
  });
  assert.throws(() => foregroundProbability(net, x, { classes: [1] }), {
    message: "foregroundProbability: 1 class(es) for 2 patch(es)",
  });
  assert.equal(tf.memory().numTensors, before + 1);
  tf.dispose([x, fg]);
});

Deno.test("targetDice() averages batch Dice over the batch's targets, so a small target weighs as much as a large one, and leaks nothing", async () => {
  await tf.setBackend("cpu");
  // Patches 0 and 2 are target 7 (large masks), patch 1 is target 3 (one
  // truth pixel, missed).
  const fg = tf.tensor3d([
    [[1, 1], [1, 0]],
    [[0, 0], [0, 0]],
    [[1, 1], [1, 1]],
  ]);
  const y = tf.tensor3d([
    [[1, 1], [1, 1]],
    [[1, 0], [0, 0]],
    [[1, 1], [1, 1]],
  ]);
  const before = tf.memory().numTensors;
  const loss = targetDice(fg, y, { targets: [7, 3, 7] });
  assert.equal(tf.memory().numTensors, before + 1);
  // Target 7: Σpy = 7, Σp = 7, Σy = 8 → Dice 14/15; target 3: Dice ≈ 0.
  const s = 1e-5;
  const expected = 1 - ((14 + s) / (15 + s) + s / (1 + s)) / 2;
  assert.ok(Math.abs((await loss.data())[0]! - expected) < 1e-6);
  // One target: plain batch Dice.
  const one = targetDice(fg, y, { targets: [7, 7, 7] });
  const batch = diceLoss(fg, y, { reduction: "batch" });
  assert.ok(
    Math.abs((await one.data())[0]! - (await batch.data())[0]!) < 1e-7,
  );
  // Batch Dice alone lets the large target hide the missed one.
  assert.ok((await batch.data())[0]! < expected);
  tf.dispose([fg, y, loss, one, batch]);
});
