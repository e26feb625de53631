import assert from "node:assert/strict";
import {
  confusionMatrix,
  diceScore,
  iouScore,
  meanIoU,
  meanIoUFromConfusion,
} from "../../metrics/overlap.ts";

Deno.test("diceScore and iouScore: hand-computed values and the empty-mask policy", () => {
  assert.equal(diceScore([1, 1, 0, 0], [1, 0, 0, 0]), 2 / 3);
  assert.equal(iouScore([1, 1, 0, 0], [1, 0, 0, 0]), 0.5);
  assert.equal(diceScore([2, 2, 1, 0], [2, 1, 1, 0], { label: 2 }), 2 / 3);
  assert.equal(diceScore([2, 2, 1, 0], [2, 1, 1, 0], { label: 1 }), 2 / 3);
  assert.equal(diceScore([0, 0], [0, 0]), 1);
  assert.equal(iouScore([0, 0], [0, 0]), 1);
  assert.equal(diceScore([0, 1], [0, 0]), 0);
  assert.equal(diceScore([0, 0], [1, 0]), 0);
  assert.throws(() => diceScore([1], [1, 0]), {
    name: "TypeError",
    message:
      "Cannot compute diceScore as 'pred' has 1 voxels and 'truth' has 2",
  });
});

Deno.test("confusionMatrix skips the 255 ignore label and accumulates", () => {
  const m = confusionMatrix([0, 1, 1, 2, 0], [0, 1, 255, 1, 255], {
    numClasses: 3,
  });
  assert.deepEqual(Array.from(m), [1, 0, 0, 0, 1, 1, 0, 0, 0]);
  confusionMatrix([2], [2], { numClasses: 3, into: m });
  assert.equal(m[8], 1);
  assert.throws(() => confusionMatrix([3], [0], { numClasses: 3 }), {
    name: "RangeError",
    message:
      /labels must be integers in \[0, 3\) or 255: found truth 0, prediction 3 at index 0/,
  });
});

Deno.test("meanIoU follows the VOC protocol: ignore pixels, absent classes left out and counted", () => {
  // truth: 0 0 1 1 255, pred: 0 1 1 1 2 → class 0: 1/2, class 1: 2/3, class 2: absent
  // (its only prediction is on an ignored pixel).
  const r = meanIoU([0, 1, 1, 1, 2], [0, 0, 1, 1, 255], { numClasses: 3 });
  assert.deepEqual(r.perClass, [0.5, 2 / 3, null]);
  assert.equal(r.absent, 1);
  assert.equal(r.miou, (0.5 + 2 / 3) / 2);
  assert.equal(
    meanIoUFromConfusion(new Float64Array([2, 1, 0, 1])).miou,
    (2 / 3 + 0.5) / 2,
  );
  assert.throws(() => meanIoUFromConfusion([1, 2, 3]), TypeError);
});
