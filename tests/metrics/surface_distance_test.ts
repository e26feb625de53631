import assert from "node:assert/strict";
import {
  percentileSorted,
  surfaceDistances,
  surfaceVoxels,
} from "../../metrics/surface_distance.ts";
import { assertAlmostEquals } from "../_utils.ts";

/** 2-D mask of size nx×ny with the inclusive rectangle set. */
function rect(
  nx: number,
  ny: number,
  [x0, x1, y0, y1]: [number, number, number, number],
): Uint8Array {
  const m = new Uint8Array(nx * ny);
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) m[y * nx + x] = 1;
  }
  return m;
}

Deno.test("surfaceVoxels keeps voxels with a background face neighbour (4-/6-connected)", () => {
  // 5×5 with a 3×3 square: 8 surface voxels, the centre is interior.
  const s = surfaceVoxels(rect(5, 5, [1, 3, 1, 3]), [5, 5]);
  assert.equal(s.reduce((a, b) => a + b, 0), 8);
  assert.equal(s[2 * 5 + 2], 0);
  // A plus-shaped 2-D mask: diagonal background does not count (4-connected).
  const plus = rect(5, 5, [1, 3, 2, 2]);
  plus[1 * 5 + 2] = 1;
  plus[3 * 5 + 2] = 1;
  plus[2 * 5 + 2] = 1;
  assert.equal(surfaceVoxels(plus, [5, 5])[2 * 5 + 2], 0);
  // A 3×3×3 cube filling its grid: only the centre is interior (grid border = background).
  const cube = surfaceVoxels(new Uint8Array(27).fill(1), [3, 3, 3]);
  assert.equal(cube.reduce((a, b) => a + b, 0), 26);
  assert.equal(cube[13], 0);
});

Deno.test("percentileSorted uses numpy's linear interpolation", () => {
  assert.equal(percentileSorted([2, 3, 4], 95), 3.9);
  assert.equal(percentileSorted([0, 0, 0, 0, 1, 1, 1, 1], 95), 1);
  assertAlmostEquals(
    percentileSorted([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 95),
    9.55,
    1e-12,
  );
  assert.equal(percentileSorted([5], 95), 5);
  assert.throws(() => percentileSorted([], 50), RangeError);
});

Deno.test("surfaceDistances: single voxels 3 apart with 2 mm spacing give 6 mm", () => {
  const r = surfaceDistances([1, 0, 0, 0], [0, 0, 0, 1], {
    dims: [4, 1],
    spacing: [2, 1],
  });
  assert.deepEqual([r.hd, r.hd95, r.assd], [6, 6, 6]);
});

Deno.test("surfaceDistances: 3×3 square shifted by one voxel (hand computed)", () => {
  // Each direction: 4 surface voxels at 0 and 4 at 1 → HD 1, HD95 1, ASSD 0.5.
  const r = surfaceDistances(
    rect(6, 5, [2, 4, 1, 3]),
    rect(6, 5, [1, 3, 1, 3]),
    {
      dims: [6, 5],
    },
  );
  assert.deepEqual([r.hd, r.hd95, r.assd, ...r.surfaceCounts], [
    1,
    1,
    0.5,
    8,
    8,
  ]);
  // Spacing along x scales every distance, spacing along y none of them here.
  const s = surfaceDistances(
    rect(6, 5, [2, 4, 1, 3]),
    rect(6, 5, [1, 3, 1, 3]),
    {
      dims: [6, 5],
      spacing: [2.5, 7],
    },
  );
  assert.deepEqual([s.hd, s.hd95, s.assd], [2.5, 2.5, 1.25]);
});

Deno.test("surfaceDistances: pooled vs averaged symmetric mean, HD95 interpolation", () => {
  // pred {x=0}, truth {x=2,3,4} on a 5×1 grid: pred→truth [2], truth→pred [2, 3, 4].
  const pred = [1, 0, 0, 0, 0], truth = [0, 0, 1, 1, 1];
  const pooled = surfaceDistances(pred, truth, { dims: [5, 1] });
  assert.equal(pooled.hd, 4);
  assertAlmostEquals(pooled.hd95!, 3.9, 1e-12);
  assert.equal(pooled.assd, (2 + 2 + 3 + 4) / 4);
  const average = surfaceDistances(pred, truth, {
    dims: [5, 1],
    assdMode: "average",
  });
  assert.equal(average.assd, (2 + 3) / 2);
  const median = surfaceDistances(pred, truth, {
    dims: [5, 1],
    percentile: 50,
  });
  assert.equal(median.hd95, 3);
});

Deno.test("surfaceDistances: 3-D anisotropic cube pair", () => {
  // Two 2×2×2 cubes in a 4×2×2 grid, touching along x; spacing [1, 1, 3].
  const p = new Uint8Array(16), t = new Uint8Array(16);
  for (let i = 0; i < 16; i++) (i % 4 < 2 ? p : t)[i] = 1;
  const r = surfaceDistances(p, t, { dims: [4, 2, 2], spacing: [1, 1, 3] });
  // Every voxel is surface; nearest other-cube voxel is 1 or 2 voxels away in x.
  assert.deepEqual([r.hd, r.hd95, r.assd], [2, 2, 1.5]);
});

Deno.test("surfaceDistances returns null with a reason for empty masks, never NaN", () => {
  const e = [0, 0, 0, 0], f = [0, 1, 0, 0];
  assert.deepEqual(surfaceDistances(e, f, { dims: [2, 2] }), {
    hd: null,
    hd95: null,
    assd: null,
    reason: "prediction empty",
    surfaceCounts: [0, 1],
  });
  assert.equal(surfaceDistances(f, e, { dims: [2, 2] }).reason, "truth empty");
  assert.equal(surfaceDistances(e, e, { dims: [2, 2] }).reason, "both empty");
});

Deno.test("surfaceDistances rejects mismatched inputs", () => {
  assert.throws(() => surfaceDistances([1, 0], [1], { dims: [2, 1] }), {
    name: "TypeError",
    message: /'pred' has 2 voxels and 'truth' has 1/,
  });
  assert.throws(
    () => surfaceDistances([1, 0], [1, 0], { dims: [2, 1], percentile: 101 }),
    {
      name: "RangeError",
      message: /'percentile' must be in \[0, 100\]: current value is 101/,
    },
  );
});
