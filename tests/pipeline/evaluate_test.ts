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
  assert.equal(lines.length, 4);
  assert.match(lines[0]!, /^target\s+dice\s+hd95\s+msd$/);
  assert.equal(lines[1], "liver        0.912   2.50   0.75");
  assert.equal(lines[2], "gallbladder  0.000      -      -");
  assert.match(lines[3]!, /^mean\s+0\.456/);
});
