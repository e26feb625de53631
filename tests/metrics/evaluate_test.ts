import assert from "node:assert/strict";
import {
  evaluateLabelMaps,
  metricsCsv,
  summarizeMetrics,
  upgradeMetrics,
} from "../../metrics/evaluate.ts";
import { Prng } from "../../random/prng.ts";
import { assertAlmostEquals } from "../_utils.ts";
import { SCIPY, scipy } from "./_scipy.ts";

/** Random multi-label volume: a few random boxes per label, x fastest. */
function randomLabels(prng: Prng, dims: number[], labels: number): Uint8Array {
  const [nx, ny, nz] = dims as [number, number, number];
  const out = new Uint8Array(nx * ny * nz);
  for (let l = 1; l <= labels; l++) {
    for (let b = 0; b < 3; b++) {
      const x0 = prng.int(nx), y0 = prng.int(ny), z0 = prng.int(nz);
      const x1 = Math.min(nx - 1, x0 + prng.int(Math.ceil(nx / 2))),
        y1 = Math.min(ny - 1, y0 + prng.int(Math.ceil(ny / 2))),
        z1 = Math.min(nz - 1, z0 + prng.int(Math.ceil(nz / 2)));
      for (let z = z0; z <= z1; z++) {
        for (let y = y0; y <= y1; y++) {
          for (let x = x0; x <= x1; x++) {
            if (prng.next() < 0.9) out[(z * ny + y) * nx + x] = l;
          }
        }
      }
    }
  }
  return out;
}

Deno.test("evaluateLabelMaps: per-target Dice/IoU and the empty-mask policy", () => {
  const labels = { 0: "background", 1: "a", 2: "b", 3: "c", 4: "d" };
  // label 1 overlaps partly; 2 only in pred; 3 only in truth; 4 in neither.
  const pred = new Uint8Array([1, 1, 0, 2, 0, 0]);
  const truth = new Uint8Array([1, 0, 0, 0, 3, 0]);
  const m = evaluateLabelMaps(pred, truth, { dims: [3, 2, 1], labels });
  assert.equal(m.targets.a!.dice, 2 / 3);
  assert.equal(m.targets.a!.iou, 0.5);
  assert.deepEqual(m.targets.b, {
    dice: 0,
    iou: 0,
    hd: null,
    hd95: null,
    assd: null,
    reason: "truth empty",
  });
  assert.equal(m.targets.c!.reason, "prediction empty");
  assert.equal(m.targets.d!.dice, 1);
  assert.equal(m.targets.d!.reason, "both empty");
  // 2-D (nz = 1): pred {(0,0),(1,0)}, truth {(0,0)} → pred→truth [0, 1], truth→pred [0].
  assert.equal(m.targets.a!.hd, 1);
  assertAlmostEquals(m.targets.a!.hd95!, 0.95, 1e-12);
  assert.equal(m.targets.a!.assd, 1 / 3);
});

Deno.test("summarizeMetrics averages over cases, counts nulls, never NaN", () => {
  const labels = { 1: "a", 2: "b" };
  const c1 = evaluateLabelMaps([1, 0, 2, 0], [1, 0, 2, 2], {
    dims: [4, 1, 1],
    labels,
  });
  const c2 = evaluateLabelMaps([1, 1, 0, 0], [1, 0, 0, 0], {
    dims: [4, 1, 1],
    labels,
  });
  const s = summarizeMetrics([{ image: "x.nii.gz", metrics: c1 }, {
    image: "y.nii.gz",
    metrics: c2,
  }]);
  assert.equal(s.targets.a!.dice, (1 + 2 / 3) / 2);
  // b: case 1 dice 2/3 with distances; case 2 both empty → dice 1, distances null.
  assert.equal(s.targets.b!.dice, (2 / 3 + 1) / 2);
  assert.equal(s.targets.b!.hd95, c1.targets.b!.hd95);
  assert.deepEqual(s.counts.b, {
    cases: 2,
    hd95: 1,
    assd: 1,
    hd95Null: 1,
    assdNull: 1,
    reasons: { "both empty": 1 },
    present: 1,
    falsePositive: 0,
  });
  // dicePresent leaves out cases whose truth lacks the target: b only in case 1.
  assert.equal(s.targets.b!.dicePresent, 2 / 3);
  assert.equal(s.targets.a!.dicePresent, s.targets.a!.dice);
  assert.equal(
    s.mean.dicePresent,
    (s.targets.a!.dicePresent! + s.targets.b!.dicePresent!) / 2,
  );
  assert.equal(s.cases[1]!.targets.b!.reason, "both empty");
  assert.equal(s.mean.dice, (s.targets.a!.dice + s.targets.b!.dice) / 2);
  assert.ok(!JSON.stringify(s).includes("NaN"));
  assert.throws(() => summarizeMetrics([]), TypeError);
});

Deno.test("summarizeMetrics: a target predicted where absent counts as a false positive; never present → dicePresent null", () => {
  const labels = { 1: "a", 2: "b" };
  // Case 1: b predicted, absent from the truth. Case 2: b absent from both.
  const c1 = evaluateLabelMaps([1, 2, 0], [1, 0, 0], {
    dims: [3, 1, 1],
    labels,
  });
  const c2 = evaluateLabelMaps([1, 0, 0], [1, 0, 0], {
    dims: [3, 1, 1],
    labels,
  });
  const s = summarizeMetrics([
    { image: "x", metrics: c1 },
    { image: "y", metrics: c2 },
  ]);
  assert.equal(s.targets.b!.dice, 0.5);
  assert.equal(s.targets.b!.dicePresent, null);
  assert.equal(s.counts.b!.falsePositive, 1);
  assert.equal(s.counts.b!.present, 0);
  assert.equal(s.mean.dicePresent, 1); // only a has cases with a truth
});

Deno.test("evaluateLabelMaps rejects bad input with clear errors", () => {
  assert.throws(
    () =>
      evaluateLabelMaps([1, 0], [1, 0, 0], {
        dims: [2, 1, 1],
        labels: { 1: "a" },
      }),
    {
      name: "TypeError",
      message: /'pred' \(2\) and 'truth' \(3\) must both have 2 voxels/,
    },
  );
  assert.throws(
    () => evaluateLabelMaps([1], [1], { dims: [1, 1, 1], labels: { 0: "bg" } }),
    { name: "TypeError", message: /no non-background label/ },
  );
  assert.throws(
    () =>
      evaluateLabelMaps([1], [1], {
        dims: [1, 1, 1],
        spacing: [1, -1, 1],
        labels: { 1: "a" },
      }),
    RangeError,
  );
});

Deno.test({
  name:
    "evaluateLabelMaps agrees with a scipy reference of MONAI's HD, HD95 and ASSD (symmetric mean surface distance)",
  ignore: !SCIPY,
  fn: async () => {
    const prng = new Prng(3);
    const cases = [];
    for (let trial = 0; trial < 6; trial++) {
      const dims = trial % 3 === 2
        ? [20 + prng.int(20), 20 + prng.int(20), 1]
        : [10 + prng.int(14), 10 + prng.int(14), 4 + prng.int(8)];
      const spacing = [
        prng.uniform(0.4, 2),
        prng.uniform(0.4, 2),
        prng.uniform(1, 5),
      ].map(
        (s) => Math.round(s * 100) / 100,
      );
      cases.push({
        dims,
        spacing,
        pred: Array.from(randomLabels(prng, dims, 3)),
        truth: Array.from(randomLabels(prng, dims, 3)),
      });
    }
    // MONAI: edges = mask ^ binary_erosion(mask); directed distances from
    // distance_transform_edt(~edges_other, sampling) at edges; HD95 = max of
    // both np.percentile(·, 95); symmetric ASD = mean of both concatenated.
    const ref = await scipy(
      `
import json, sys
import numpy as np
from scipy import ndimage
out = []
for c in json.load(sys.stdin):
    shape = c["dims"][::-1]
    p = np.array(c["pred"]).reshape(shape).T
    t = np.array(c["truth"]).reshape(shape).T
    sp = c["spacing"]
    if c["dims"][2] == 1:
        p, t, sp = p[:, :, 0], t[:, :, 0], sp[:2]
    res = {}
    for l in (1, 2, 3):
        a, b = p == l, t == l
        if not a.any() or not b.any():
            res[l] = None
            continue
        ea, eb = a ^ ndimage.binary_erosion(a), b ^ ndimage.binary_erosion(b)
        d1 = ndimage.distance_transform_edt(~eb, sampling=sp)[ea]
        d2 = ndimage.distance_transform_edt(~ea, sampling=sp)[eb]
        res[l] = [max(d1.max(), d2.max()),
                  max(np.percentile(d1, 95), np.percentile(d2, 95)),
                  float(np.concatenate([d1, d2]).mean()),
                  (d1.mean() + d2.mean()) / 2]
    out.append(res)
print(json.dumps(out))
`,
      cases,
    ) as Record<string, number[] | null>[];
    const labels = { 1: "a", 2: "b", 3: "c" };
    let compared = 0;
    cases.forEach((c, i) => {
      const m = evaluateLabelMaps(c.pred, c.truth, {
        dims: c.dims,
        spacing: c.spacing,
        labels,
      });
      const avg = evaluateLabelMaps(c.pred, c.truth, {
        dims: c.dims,
        spacing: c.spacing,
        labels,
        assdMode: "average",
      });
      (["a", "b", "c"] as const).forEach((name, j) => {
        const r = ref[i]![String(j + 1)];
        const t = m.targets[name]!;
        if (r === null || r === undefined) {
          assert.equal(t.hd95, null);
          return;
        }
        assertAlmostEquals(
          [t.hd!, t.hd95!, t.assd!, avg.targets[name]!.assd!],
          r,
          1e-9,
          `case ${i} label ${name}`,
        );
        compared++;
      });
    });
    assert.ok(compared >= 12, `only ${compared} labels had distances`);
  },
});

Deno.test("summarizeMetrics() gives mean, sample std, median and n per target and metric, and keys cases by id", () => {
  const labels = { 1: "a" };
  const dims = [4, 1, 1];
  // Dice 1, 2/3, 0 (one empty prediction) and 1 (both empty, truth absent).
  const maps: [number[], number[]][] = [
    [[1, 1, 0, 0], [1, 1, 0, 0]],
    [[1, 1, 0, 0], [1, 0, 0, 0]],
    [[0, 0, 0, 0], [0, 0, 1, 0]],
    [[0, 0, 0, 0], [0, 0, 0, 0]],
  ];
  const s = summarizeMetrics(maps.map(([p, t], i) => ({
    image: `/data/imagesTr/case_${i}.nii.gz`,
    metrics: evaluateLabelMaps(p, t, { dims, labels }),
  })));
  const d = [1, 2 / 3, 0, 1];
  const mean = (1 + 2 / 3 + 0 + 1) / 4;
  const std = Math.sqrt(d.reduce((a, v) => a + (v - mean) ** 2, 0) / 3);
  const st = s.stats!.a!;
  assert.equal(st.dice.mean, s.targets.a!.dice);
  assertAlmostEquals(st.dice.std!, std, 1e-12);
  assert.equal(st.dice.median, (2 / 3 + 1) / 2); // middle of 0, 2/3, 1, 1
  assert.equal(st.dice.n, 4);
  // dicePresent over the three cases whose truth has the target: 1, 2/3, 0.
  assert.deepEqual(
    [st.dicePresent.mean, st.dicePresent.median, st.dicePresent.n],
    [s.targets.a!.dicePresent, 2 / 3, 3],
  );
  // Distances only where both masks have the target (cases 0 and 1).
  assert.equal(st.hd95.n, 2);
  assert.equal(st.hd95.mean, s.targets.a!.hd95);
  const [h0, h1] = s.cases.map((c) => c.targets.a!.hd95!);
  assertAlmostEquals(st.hd95.std!, Math.abs(h0! - h1!) / Math.SQRT2, 1e-12);
  assert.ok(h0 !== h1);
  assert.deepEqual(s.cases.map((c) => c.id), [
    "case_0",
    "case_1",
    "case_2",
    "case_3",
  ]);
  assert.equal(s.cases[0]!.image, "/data/imagesTr/case_0.nii.gz");
  // An explicit id wins over the file name.
  const one = summarizeMetrics([{
    image: "/x/img.nii",
    id: "patient-7",
    metrics: evaluateLabelMaps([1], [1], { dims: [1, 1, 1], labels }),
  }]);
  assert.equal(one.cases[0]!.id, "patient-7");
  assert.deepEqual(one.stats!.a!.dice, { mean: 1, std: 0, median: 1, n: 1 });
});

Deno.test("metricsCsv() writes one row per case × target, empty cells for null, quoting commas", () => {
  const labels = { 1: "a", 2: "b,c" };
  const s = summarizeMetrics([{
    image: "/d/case 1.nii.gz",
    metrics: evaluateLabelMaps([1, 0], [1, 2], { dims: [2, 1, 1], labels }),
  }]);
  assert.equal(
    metricsCsv(s),
    [
      "case,image,target,present,dice,iou,hd95,assd,hd,reason",
      "case 1,/d/case 1.nii.gz,a,true,1,1,0,0,0,",
      'case 1,/d/case 1.nii.gz,"b,c",true,0,0,,,,prediction empty',
      "",
    ].join("\n"),
  );
});

Deno.test("upgradeMetrics() renames msd to assd in a metrics.json of earlier versions", () => {
  const old = {
    targets: { liver: { dice: 0.9, hd95: 2, msd: 0.5 } },
    mean: { dice: 0.9, hd95: 2, msd: 0.5 },
    cases: [{
      id: "c1",
      image: "c1.nii.gz",
      targets: { liver: { dice: 0.9, hd95: 2, msd: 0.5 } },
    }],
    counts: {
      liver: {
        cases: 1,
        hd95: 1,
        msd: 1,
        hd95Null: 0,
        msdNull: 0,
        reasons: {},
        present: 1,
        falsePositive: 0,
      },
    },
    stats: { liver: { msd: { mean: 0.5, std: 0, median: 0.5, n: 1 } } },
  };
  const m = upgradeMetrics(structuredClone(old));
  assert.equal(m.targets.liver!.assd, 0.5);
  assert.equal(m.mean.assd, 0.5);
  assert.equal(m.cases[0]!.targets.liver!.assd, 0.5);
  assert.equal(m.counts.liver!.assd, 1);
  assert.equal(m.counts.liver!.assdNull, 0);
  assert.equal(m.stats!.liver!.assd.mean, 0.5);
  assert.ok(!("msd" in m.targets.liver!));
  // A current file is left as it is.
  const now = summarizeMetrics([{
    image: "a.nii.gz",
    metrics: evaluateLabelMaps([1, 0], [1, 0], {
      dims: [2, 1, 1],
      labels: { 1: "organ" },
    }),
  }]);
  assert.deepEqual(upgradeMetrics(structuredClone(now)), now);
});
