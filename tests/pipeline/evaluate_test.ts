import assert from "node:assert/strict";
import {
  aggregateMetrics,
  diceByTarget,
  formatMetricsTable,
} from "../../pipeline/evaluate.ts";

const targets = [{ id: 1, name: "liver" }, { id: 2, name: "spleen" }, {
  id: 3,
  name: "aorta",
}];

Deno.test("diceByTarget() counts overlaps per label; both empty gives 1", () => {
  const pred = [1, 1, 2, 0, 0];
  const truth = [1, 0, 2, 2, 0];
  const m = diceByTarget(pred, truth, targets);
  assert.equal(m.liver!.dice, 2 / 3); // tp 1, |p| 2, |t| 1
  assert.equal(m.spleen!.dice, 2 / 3);
  assert.equal(m.aorta!.dice, 1); // absent from both
  assert.throws(() => diceByTarget([1], [1, 2], targets), {
    name: "TypeError",
  });
});

Deno.test("aggregateMetrics() averages over cases then targets, in the metrics.json shape", () => {
  const cases = [
    { image: "a", targets: diceByTarget([1, 2], [1, 2], targets.slice(0, 2)) },
    { image: "b", targets: diceByTarget([1, 0], [1, 2], targets.slice(0, 2)) },
  ];
  const m = aggregateMetrics(cases, ["liver", "spleen"]);
  assert.deepEqual(Object.keys(m).sort(), [
    "cases",
    "counts",
    "mean",
    "targets",
  ]);
  assert.deepEqual(m.targets.liver, { dice: 1, hd95: null, msd: null });
  assert.equal(m.targets.spleen!.dice, 0.5);
  assert.equal(m.mean.dice, 0.75);
  assert.match(formatMetricsTable(m), /spleen\s+0\.500/);
});
