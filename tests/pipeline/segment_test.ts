import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { diceLoss } from "../../losses/mod.ts";
import { targetDice } from "../../pipeline/segment.ts";

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
