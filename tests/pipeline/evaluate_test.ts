import assert from "node:assert/strict";
import { formatMetricsTable } from "../../pipeline/evaluate.ts";

Deno.test("formatMetricsTable() prints one row per target, then the mean, '-' for null distances", () => {
  const table = formatMetricsTable({
    targets: {
      liver: { dice: 0.9123, iou: 0.8, hd: 3, hd95: 2.5, msd: 0.75 },
      gallbladder: { dice: 0, iou: 0, hd: null, hd95: null, msd: null },
    },
    mean: { dice: 0.45615, iou: 0.4, hd: 3, hd95: 2.5, msd: 0.75 },
  });
  const lines = table.split("\n");
  assert.equal(lines.length, 5);
  assert.match(lines[0]!, /^target\s+dice\s+dice\|gt\s+hd95\s+msd$/);
  assert.equal(lines[1], "liver         0.912       -    2.50    0.75");
  assert.equal(lines[2], "gallbladder   0.000       -       -       -");
  assert.match(lines[3]!, /^mean\s+0\.456/);
  assert.match(lines[4]!, /^\(dice: every case/);
});

Deno.test("formatMetricsTable() shows dice over cases with the target, its case count and false positives", () => {
  const table = formatMetricsTable({
    targets: { digit_3: { dice: 0.8, dicePresent: 0.4, hd95: 3, msd: 1 } },
    mean: { dice: 0.8, dicePresent: 0.4, hd95: 3, msd: 1 },
    counts: {
      digit_3: {
        cases: 10,
        hd95: 2,
        msd: 2,
        hd95Null: 8,
        msdNull: 8,
        reasons: { "both empty": 7, "truth empty": 1 },
        present: 2,
        falsePositive: 1,
      },
    },
  });
  const lines = table.split("\n");
  assert.match(
    lines[0]!,
    /^target\s+dice\s+dice\|gt\s+n\|gt\s+fp\s+hd95\s+msd\s+no distance$/,
  );
  assert.equal(
    lines[1],
    "digit_3   0.800   0.400     2     1    3.00    1.00   8/10",
  );
  assert.match(lines[3]!, /fp: cases predicting an absent target/);
});
