import assert from "node:assert/strict";
import {
  extractPatch,
  type PatchRecord,
  samplePatches,
  type SamplingCase,
} from "../../data/mod.ts";

/** A case whose image is `0, 1, 2, …` (times `channels`) in voxel order. */
function rampCase(
  id: string,
  dims: [number, number, number],
  attention: number[],
  options: { channels?: number; label?: number[]; domain?: number } = {},
): SamplingCase {
  const { channels = 1, label, domain = 0 } = options;
  const n = dims[0] * dims[1] * dims[2];
  return {
    id,
    domain,
    dims,
    channels,
    image: Float32Array.from({ length: n * channels }, (_, i) => i),
    attention: Uint8Array.from(attention),
    ...(label ? { label: Uint8Array.from(label) } : {}),
  };
}

// Two slices of 6×5 (nx = 6, ny = 5) with targets 1 and 2.
// deno-fmt-ignore
const ATT = [
  // z = 0
  0, 0, 0, 0, 0, 0,
  0, 1, 1, 0, 0, 0,
  0, 1, 1, 0, 2, 0,
  0, 0, 0, 0, 2, 2,
  0, 0, 0, 0, 0, 0,
  // z = 1
  1, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0,
];

const quiet = { onWarning: () => {} };

Deno.test("samplePatches() puts every centre inside its target's attention", () => {
  const cases = [
    rampCase("a", [6, 5, 2], ATT),
    rampCase("b", [6, 5, 2], ATT.map((v) => (v === 1 ? 2 : v === 2 ? 1 : 0)), {
      domain: 1,
    }),
  ];
  const index = samplePatches(cases, {
    perTarget: 7,
    patchSize: 4,
    seed: 3,
    ...quiet,
  });
  // Per case: slice 0 has targets 1 and 2, slice 1 has one target → 3 groups of 7.
  assert.equal(index.records.length, 2 * 3 * 7);
  for (const r of index.records) {
    const c = cases[r.caseIndex]!;
    const v = c.attention[(r.slice * 5 + r.cy) * 6 + r.cx];
    assert.equal(v, r.target, `record ${JSON.stringify(r)} is off its mask`);
  }
  assert.deepEqual(index.summary.targets, {
    1: { slices: 3, records: 21 },
    2: { slices: 3, records: 21 },
  });
  assert.deepEqual(index.summary.domains, { 0: 21, 1: 21 });
  assert.equal(index.summary.slices, 4);
  assert.deepEqual(index.summary.absentTargets, []);
});

Deno.test("samplePatches() draws one centre per scan-order stratum", () => {
  // A 10×10 slice whose target covers rows 2..7 fully: 60 pixels, 6 strata of
  // 10 pixels = one row each, so centre k must lie on row 2 + k.
  const att = new Array(100).fill(0).fill(1, 20, 80);
  const index = samplePatches([rampCase("a", [10, 10, 1], att)], {
    perTarget: 6,
    patchSize: 4,
    seed: 11,
  });
  assert.deepEqual(index.records.map((r) => r.cy), [2, 3, 4, 5, 6, 7]);
  // A region smaller than perTarget repeats pixels but stays inside.
  const tiny = samplePatches([
    rampCase("t", [10, 10, 1], new Array(100).fill(0).fill(1, 55, 57)),
  ], {
    perTarget: 4,
    patchSize: 4,
  });
  assert.deepEqual(tiny.records.map((r) => [r.cy, r.cx]), [[5, 5], [5, 5], [
    5,
    6,
  ], [5, 6]]);
});

Deno.test("samplePatches() is deterministic for a seed", () => {
  const att = new Array(400).fill(0).fill(1, 40, 300).fill(2, 300, 380);
  const cases = [rampCase("a", [20, 20, 1], att)];
  const a = samplePatches(cases, { perTarget: 10, patchSize: 8, seed: 5 });
  const b = samplePatches(cases, { perTarget: 10, patchSize: 8, seed: 5 });
  const c = samplePatches(cases, { perTarget: 10, patchSize: 8, seed: 6 });
  assert.deepEqual(a.records, b.records);
  assert.notDeepEqual(a.records, c.records);
});

Deno.test("samplePatches() lists absent targets and warns on oversized patches", () => {
  const warnings: string[] = [];
  const index = samplePatches([rampCase("a", [6, 5, 2], ATT)], {
    targets: [1, 2, 3, 9],
    perTarget: 2,
    patchSize: 8,
    onWarning: (m) => warnings.push(m),
  });
  assert.deepEqual(index.summary.absentTargets, [3, 9]);
  assert.deepEqual(index.summary.targets[3], { slices: 0, records: 0 });
  assert.equal(warnings.length, 2);
  assert.match(
    warnings[0]!,
    /'patchSize' 8 exceeds the slice size of 1 case\(s\) \(first: 'a' is 6×5\)/,
  );
  assert.match(warnings[1]!, /target\(s\) \[3,9\] have no attention/);
  assert.deepEqual(index.summary.warnings, warnings);
  // Only target 2 requested: target 1's slice is skipped.
  const only2 = samplePatches([rampCase("a", [6, 5, 2], ATT)], {
    targets: [2],
    perTarget: 2,
    patchSize: 4,
  });
  assert.deepEqual(only2.records.map((r) => r.target), [2, 2]);
  // minArea 4 keeps target 1 (4 px) in slice 0 and drops the 1-pixel one in slice 1.
  const big = samplePatches([rampCase("a", [6, 5, 2], ATT)], {
    targets: [1],
    perTarget: 2,
    patchSize: 4,
    minArea: 4,
  });
  assert.deepEqual(big.records.map((r) => r.slice), [0, 0]);
});

Deno.test("samplePatches() rejects empty datasets, no attention and bad input", () => {
  assert.throws(() => samplePatches([]), {
    name: "Error",
    message:
      "Cannot sample patches as 'cases' must hold at least one case: the dataset is empty",
  });
  assert.throws(
    () =>
      samplePatches([rampCase("a", [6, 5, 2], new Array(60).fill(0))], quiet),
    {
      name: "Error",
      message:
        "Cannot sample patches as no target has attention in any slice: targets [] over 1 case(s)",
    },
  );
  assert.throws(
    () =>
      samplePatches([rampCase("a", [6, 5, 2], ATT)], {
        targets: [4],
        ...quiet,
      }),
    {
      name: "Error",
      message: /no target has attention in any slice: targets \[4\]/,
    },
  );
  const bad = rampCase("a", [6, 5, 2], ATT);
  bad.attention = new Uint8Array(59);
  assert.throws(() => samplePatches([bad]), {
    name: "TypeError",
    message:
      "Cannot sample patches as case 'a' 'attention' must have 60 values (dims [6,5,2]): current length is 59",
  });
  const wrongType = {
    ...rampCase("a", [6, 5, 2], ATT),
    image: new Float64Array(60),
  };
  assert.throws(
    () => samplePatches([wrongType as unknown as SamplingCase]),
    {
      name: "TypeError",
      message: /must have a Float32Array 'image': current type is Float64Array/,
    },
  );
  assert.throws(
    () => samplePatches([rampCase("a", [6, 5, 2], ATT)], { perTarget: 0 }),
    {
      name: "RangeError",
      message:
        "Cannot sample patches as 'perTarget' must be a positive integer: current value is 0",
    },
  );
});

Deno.test("extractPatch() cuts exact content with zero padding at the borders", () => {
  // 4×3 slice (nx = 4, ny = 3), 2 slices, 2 channels: image value = 2·voxel + c.
  // deno-fmt-ignore
  const att = [
    0, 1, 1, 0,
    0, 1, 2, 0,
    0, 0, 0, 0,
    /* z = 1 */ 1, 1, 0, 0,
    1, 0, 0, 0,
    0, 0, 0, 3,
  ];
  // deno-fmt-ignore
  const label = [
    1, 1, 0, 0,
    0, 0, 2, 0,
    0, 0, 0, 0,
    /* z = 1 */ 0, 1, 0, 0,
    0, 0, 0, 0,
    0, 0, 0, 1,
  ];
  const c = rampCase("a", [4, 3, 2], att, { channels: 2, label });
  const rec = (
    slice: number,
    cy: number,
    cx: number,
    target: number,
  ): PatchRecord => ({
    caseIndex: 0,
    slice,
    cy,
    cx,
    target,
  });
  // p = 3 at the top-left corner of slice 0: rows -1..1, cols -1..1.
  let p = extractPatch(c, rec(0, 0, 0, 1), { patchSize: 3 });
  // voxels (row, col): (0,0)=0 (0,1)=1 (1,0)=4 (1,1)=5 → image 2v, 2v+1
  // deno-fmt-ignore
  assert.deepEqual([...p.image], [
    0, 0, 0, 0, 0, 0,
    0, 0, 0, 1, 2, 3,
    0, 0, 8, 9, 10, 11,
  ]);
  assert.deepEqual([...p.attention], [0, 0, 0, 0, 0, 1, 0, 0, 1]);
  assert.deepEqual([...p.label], [0, 0, 0, 0, 1, 1, 0, 0, 0]);
  // p = 4 (even: rows cy-2..cy+1) at the bottom-right of slice 1, target 3.
  p = extractPatch(c, rec(1, 2, 3, 3), { patchSize: 4 });
  const v = (y: number, x: number) => 12 + y * 4 + x; // slice 1 voxel index
  const row = (y: number) =>
    [v(y, 1), v(y, 2), v(y, 3)].flatMap((k) => [2 * k, 2 * k + 1]);
  // deno-fmt-ignore
  assert.deepEqual([...p.image], [
    ...row(0), 0, 0,
    ...row(1), 0, 0,
    ...row(2), 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0,
  ]);
  assert.deepEqual([...p.attention], [
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    1,
    0,
    0,
    0,
    0,
    0,
  ]);
  assert.deepEqual([...p.label], new Array(16).fill(0)); // label 1 there is not target 3
  // A patch larger than the whole slice: centred at (1, 1), p = 6 → rows -2..3.
  p = extractPatch(c, rec(0, 1, 1, 2), { patchSize: 6 });
  assert.equal(p.image.length, 72);
  assert.deepEqual(
    [...p.attention].map((a, i) => (a ? i : -1)).filter((i) => i >= 0),
    [3 * 6 + 4],
  );
  assert.equal(p.image[(2 * 6 + 1) * 2], 0); // voxel (0, -1): padding
  assert.equal(p.image[(2 * 6 + 2) * 2], 0); // voxel (0, 0) = 0
  assert.equal(p.image[(4 * 6 + 5) * 2 + 1], 2 * 11 + 1); // voxel (2, 3), channel 1
  assert.throws(() => extractPatch(c, rec(2, 0, 0, 1), { patchSize: 3 }), {
    name: "RangeError",
    message:
      "Cannot extract patch as the record (slice 2, cy 0, cx 0) lies outside case 'a' of dims [4,3,2]",
  });
});

Deno.test("samplePatches() centres spread so the patches cover the organ", () => {
  // A 40×30 organ in a 100×100 slice; 30 patches of 16×16 should cover
  // nearly all of it (stratification spreads them over the organ's rows).
  const [nx, ny] = [100, 100];
  const att = new Uint8Array(nx * ny);
  for (let y = 30; y < 60; y++) att.fill(1, y * nx + 20, y * nx + 60);
  const cases: SamplingCase[] = [{
    id: "a",
    domain: 0,
    dims: [nx, ny, 1],
    channels: 1,
    image: new Float32Array(nx * ny),
    attention: att,
  }];
  for (const seed of [0, 1, 2]) {
    const index = samplePatches(cases, { perTarget: 30, patchSize: 16, seed });
    const covered = new Uint8Array(nx * ny);
    for (const r of index.records) {
      for (let y = r.cy - 8; y < r.cy + 8; y++) {
        covered.fill(1, y * nx + r.cx - 8, y * nx + r.cx + 8);
      }
    }
    let inOrgan = 0;
    for (let i = 0; i < nx * ny; i++) if (att[i] && covered[i]) inOrgan++;
    assert.ok(
      inOrgan / 1200 > 0.9,
      `seed ${seed}: ${inOrgan} of 1200 organ pixels covered`,
    );
    // Each band of 40 pixels (one row) holds exactly one centre.
    assert.deepEqual(
      index.records.map((r) => r.cy),
      Array.from({ length: 30 }, (_, k) => 30 + k),
    );
  }
});
