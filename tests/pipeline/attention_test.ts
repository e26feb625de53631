import assert from "node:assert/strict";
import {
  cutWindows,
  growLabels,
  targetRegion,
} from "../../pipeline/attention.ts";

Deno.test("growLabels() grows labels into background only, lower label first", () => {
  // One 5×3 slice: label 2 at (0,1), label 1 at (4,1).
  const map = new Uint8Array(15);
  map[5] = 2;
  map[9] = 1;
  const g1 = growLabels(map, [5, 3, 1], { radius: 1 });
  assert.deepEqual(Array.from(g1), [
    2,
    0,
    0,
    0,
    1,
    2,
    2,
    0,
    1,
    1,
    2,
    0,
    0,
    0,
    1,
  ]);
  // Step 2: (2,1) is reached by both 2 and 1: the lower label (1) wins.
  const g2 = growLabels(map, [5, 3, 1], { radius: 2 });
  assert.equal(g2[7], 1);
  assert.equal(g2[5], 2); // labelled pixels never change
  assert.deepEqual(
    Array.from(growLabels(map, [5, 3, 1], { radius: 0 })),
    Array.from(map),
  );
});

Deno.test("targetRegion() returns the bounding box of a target in one slice", () => {
  const att = new Uint8Array(2 * 4 * 4);
  att[16 + 1 * 4 + 2] = 3;
  att[16 + 3 * 4 + 1] = 3;
  assert.deepEqual(targetRegion(att, [4, 4, 2], { target: 3, z: 1 }), {
    y0: 1,
    y1: 4,
    x0: 1,
    x1: 3,
  });
  assert.equal(targetRegion(att, [4, 4, 2], { target: 3, z: 0 }), null);
});

Deno.test("cutWindows() cuts image and binary attention, zero outside the slice", () => {
  // 3×3 single-channel slice with values 1..9; attention label 5 at the centre.
  const image = Float32Array.from({ length: 9 }, (_, i) => i + 1);
  const att = new Uint8Array(9);
  att[4] = 5;
  att[0] = 2;
  const x = cutWindows({ dims: [3, 3, 1], channels: 1, image }, att, {
    target: 5,
    z: 0,
    windows: [{ y: -1, x: 0 }],
    patchSize: 2,
  });
  // Window rows -1..0, cols 0..1: row -1 is zero; row 0 = (1, 2).
  assert.deepEqual(Array.from(x), [0, 0, 0, 0, 1, 0, 2, 0]);
  const y = cutWindows({ dims: [3, 3, 1], channels: 1, image }, att, {
    target: 5,
    z: 0,
    windows: [{ y: 1, x: 1 }],
    patchSize: 2,
  });
  assert.deepEqual(Array.from(y), [5, 1, 6, 0, 8, 0, 9, 0]);
});

Deno.test("dilateMask() grows a mask by a square of radius r, clipped at the edges", async () => {
  const { dilateMask } = await import("../../pipeline/attention.ts");
  const m = new Uint8Array(5 * 4);
  m[1 * 5 + 1] = 1; // (x 1, y 1)
  const g = dilateMask(m, { width: 5, height: 4, radius: 1 });
  const rows = [0, 1, 2, 3].map((y) =>
    Array.from(g.subarray(y * 5, y * 5 + 5))
  );
  assert.deepEqual(rows, [
    [1, 1, 1, 0, 0],
    [1, 1, 1, 0, 0],
    [1, 1, 1, 0, 0],
    [0, 0, 0, 0, 0],
  ]);
  assert.deepEqual(
    Array.from(dilateMask(m, { width: 5, height: 4, radius: 0 })),
    Array.from(m),
  );
  assert.equal(
    dilateMask(m, { width: 5, height: 4, radius: 9 }).every((v) => v === 1),
    true,
  );
  assert.equal(
    dilateMask(new Uint8Array(20), { width: 5, height: 4, radius: 3 }).some((
      v,
    ) => v),
    false,
  );
});

Deno.test("keepLargestComponents() keeps each label's largest 3D piece, joined across slices", async () => {
  const { keepLargestComponents } = await import(
    "../../pipeline/attention.ts"
  );
  // Two 3×2 slices ([nz, ny, nx]). Label 1: a 3-voxel piece joined through
  // z (0,0,0)-(0,0,1)-(1,0,1), and a lone voxel at (2,1,1); label 2: two
  // single voxels (a tie: the first in memory order stays). Diagonal
  // neighbours are not joined (6-connectivity).
  const map = new Uint8Array([
    1,
    0,
    2, //
    0,
    0,
    0, //
    1,
    1,
    0, //
    0,
    2,
    1, //
  ]);
  const kept = keepLargestComponents(map, [3, 2, 2]);
  assert.deepEqual(Array.from(kept), [
    1,
    0,
    2, //
    0,
    0,
    0, //
    1,
    1,
    0, //
    0,
    0,
    0, //
  ]);
  assert.deepEqual(Array.from(map).filter((v) => v === 1).length, 4); // input unchanged
  // Only the labels asked for are filtered.
  assert.deepEqual(
    Array.from(keepLargestComponents(map, [3, 2, 2], { labels: [2] })),
    [1, 0, 2, 0, 0, 0, 1, 1, 0, 0, 0, 1],
  );
  assert.throws(() => keepLargestComponents(map, [3, 2, 3]), {
    name: "TypeError",
    message:
      "Cannot keep largest components as 'map' must hold 18 voxels for dims [3,2,3]: current length is 12",
  });
});

Deno.test("onePieceLabels() keeps the targets whose truth is one 3D piece in every training case", async () => {
  const { onePieceLabels } = await import("../../pipeline/attention.ts");
  const dims: [number, number, number] = [4, 1, 2];
  // Case a: label 1 joined across its two slices, label 2 in one voxel.
  const a = { dims, label: new Uint8Array([1, 0, 0, 2, 1, 0, 0, 0]) };
  // Case b: label 2 in two pieces; label 3 is absent from every case.
  const b = { dims, label: new Uint8Array([2, 0, 2, 0, 0, 1, 0, 0]) };
  assert.deepEqual(onePieceLabels([a], { targets: [3, 2, 1] }), [1, 2, 3]);
  assert.deepEqual(onePieceLabels([a, b], { targets: [1, 2, 3] }), [1, 3]);
  assert.deepEqual(onePieceLabels([{ dims }], { targets: [1] }), [1]);
});
