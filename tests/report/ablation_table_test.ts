import assert from "node:assert/strict";
import { evaluateLabelMaps, summarizeMetrics } from "../../metrics/evaluate.ts";
import { ablationTable, pairedTests } from "../../report/ablation_table.ts";

const LABELS = { 1: "a", 2: "b" };

/** A metrics summary with the given per-case Dice of target a (b perfect). */
function metricsWith(diceA: number[]) {
  // 4-voxel maps: truth a = [1, 1, 0, 0]; prediction covers k of the truth voxels of a.
  return summarizeMetrics(diceA.map((d, i) => {
    const truth = [1, 1, 2, 0];
    const pred = d === 1 ? [1, 1, 2, 0] : d === 0 ? [0, 0, 2, 0] : [1, 0, 2, 0];
    return {
      image: `case_${i}`,
      metrics: evaluateLabelMaps(pred, truth, {
        dims: [4, 1, 1],
        labels: LABELS,
      }),
    };
  }));
}

Deno.test("ablationTable: mean ± sample std per target and of the per-case mean", () => {
  const t = ablationTable([
    { method: "none", backbone: "r18", metrics: metricsWith([1, 0, 1]) },
    { method: "agcl", backbone: "r18", metrics: metricsWith([1, 1, 1]) },
  ]);
  assert.deepEqual(t.targets, ["a", "b", "mean"]);
  const none = t.rows[0]!;
  assert.equal(none.dice.a!.mean, 2 / 3);
  assertClose(none.dice.a!.std!, Math.sqrt(1 / 3));
  assert.equal(none.dice.mean!.mean, (1 + 0.5 + 1) / 3);
  assert.equal(none.hd95.a!.n, 2); // the empty prediction has no distance
  assert.deepEqual(t.text.rows[1], [
    "r18",
    "agcl",
    "1.000 ± 0.000",
    "1.000 ± 0.000",
    "1.000 ± 0.000",
  ]);
  assert.match(t.markdown, /\| r18 \| agcl \| \*\*1\.000 ± 0\.000\*\* \|/);
  assert.match(
    t.csv,
    /^r18,none,a,0\.6666666666666666,0\.57735026918962\d*,3,0,0,2,/m,
  );
  assert.throws(() => ablationTable([]), TypeError);
});

function assertClose(a: number, b: number): void {
  assert.ok(Math.abs(a - b) < 1e-12, `${a} != ${b}`);
}

Deno.test("pairedTests pairs cases by image and tests agcl against each baseline", () => {
  const agcl = metricsWith([1, 1, 1, 1, 1, 1]);
  const none = metricsWith([0, 0, 0, 0, 0, 0]);
  // Reverse the baseline's case order: pairing must follow the image names.
  none.cases.reverse();
  const tests = pairedTests([
    { method: "agcl", backbone: "r18", metrics: agcl },
    { method: "none", backbone: "r18", metrics: none },
    { method: "none", backbone: "r50", metrics: none },
  ]);
  assert.deepEqual(tests.map((t) => [t.backbone, t.method, t.target, t.n]), [
    ["r18", "none", "a", 6],
    ["r18", "none", "b", 0],
    ["r18", "none", "mean", 6],
  ]);
  assert.equal(tests[0]!.p, 2 / 64); // all 6 differences positive, exact
  assert.equal(tests[1]!.p, null); // identical
});

Deno.test("seedTable: mean ± std over seeds, gain over none, Wilcoxon over (seed, case, target) pairs, evidence columns", async () => {
  const { seedTable } = await import("../../report/ablation_table.ts");
  const withStages = (diceA: number[], knn: number) => ({
    ...metricsWith(diceA),
    stages: {
      stage1: { mean: { dice: 0.5 } },
      stage2: {
        health: { finalLoss: 2, chance: 2.7, floor: 1.1 },
        probe: {
          input: { knn: { target: 0.4 } },
          encoder: {
            knn: { target: knn, domain: 0.9, domainTarget: knn / 2 },
            silhouette: { target: 0.1 },
          },
        },
      },
    },
  });
  const runs = [
    {
      method: "none",
      backbone: "r18",
      seed: 0,
      metrics: withStages([0, 0, 1], 0.5),
    },
    {
      method: "agcl",
      backbone: "r18",
      seed: 0,
      metrics: withStages([1, 1, 1], 0.7),
    },
    {
      method: "none",
      backbone: "r18",
      seed: 1,
      metrics: withStages([0, 1, 0], 0.6),
    },
    {
      method: "agcl",
      backbone: "r18",
      seed: 1,
      metrics: withStages([1, 1, 0], 0.8),
    },
  ];
  const t = seedTable(runs);
  assert.deepEqual(t.rows.map((r) => r.method), ["none", "agcl"]);
  const [none, agcl] = t.rows;
  // Per seed: none's mean Dice over targets (b is perfect) is (1/3 + 1)/2 for both seeds.
  const noneMean = (1 / 3 + 1) / 2;
  assertClose(none!.dice.mean!.mean!, noneMean);
  assertClose(none!.dice.mean!.std!, 0);
  const agclMeans = [(1 + 1) / 2, (2 / 3 + 1) / 2];
  assertClose(agcl!.dice.mean!.mean!, (agclMeans[0]! + agclMeans[1]!) / 2);
  assertClose(agcl!.gain!, agcl!.dice.mean!.mean! - noneMean);
  assert.equal(none!.gain, 0);
  // Pairs: 2 seeds × 3 cases × 2 targets; b never differs, a differs in 3 pairs.
  assert.equal(none!.test!.n, 3);
  assert.equal(agcl!.test, null);
  assertClose(agcl!.probe.knnTarget.mean!, 0.75);
  assertClose(none!.probe.knnDomainTarget.mean!, 0.275);
  assert.equal(agcl!.stage1.mean, 0.5);
  assert.match(t.markdown, /^\| backbone \| method \| a \| b \| mean Dice \|/);
  assert.match(
    t.markdown,
    /\| r18 \| agcl \|.*\| \+0\.\d{3} \| – \| 0\.500 \| 0\.400 → 0\.750 \| 0\.375 \|/,
  );
  assert.match(t.markdown, /\| 2\.000 \/ 2\.700 \/ 1\.100 \|$/m);
  assert.equal(t.csv.trim().split("\n").length, 1 + 2 * 3);
  assert.throws(() => seedTable([]), /'runs' is empty/);
  // Runs that read the same cases from their own folders still pair by file name.
  const moved = runs.map((r) =>
    r.method === "agcl"
      ? {
        ...r,
        metrics: {
          ...r.metrics,
          cases: r.metrics.cases.map((c) => ({
            ...c,
            image: `/runs/${r.seed}/agcl/data/${c.image}`,
          })),
        },
      }
      : r
  );
  assert.equal(seedTable(moved).rows[0]!.test!.n, 3);
});
