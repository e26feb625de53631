import assert from "node:assert/strict";
import {
  axisCodes,
  fromCanonical,
  readNifti,
  toCanonical,
} from "../../data/mod.ts";
import type { Volume } from "../../data/mod.ts";
import { assertAlmostEquals } from "../_utils.ts";
import { SHARED } from "./_shared.ts";

function apply(a: number[][], p: number[]): number[] {
  return [0, 1, 2].map((r) =>
    a[r]![0]! * p[0]! + a[r]![1]! * p[1]! + a[r]![2]! * p[2]! + a[r]![3]!
  );
}

Deno.test("toCanonical permutes and flips to RAS, keeping every voxel's world position; fromCanonical inverts", () => {
  // voxel axes: x → −z (I), y → +x (R), z → −y (P): codes "IRP"
  const affine = [[0, 2, 0, -5], [0, 0, -3, 7], [-1.5, 0, 0, 11], [0, 0, 0, 1]];
  const dims: [number, number, number] = [4, 3, 2];
  const data = Int16Array.from({ length: 24 }, (_, i) => i * 3 - 20);
  const v: Volume = { data, dims, spacing: [1.5, 2, 3], affine };
  assert.equal(axisCodes(affine), "IRP");
  const c = toCanonical(v);
  assert.equal(axisCodes(c.affine), "RAS");
  assert.deepEqual(c.dims, [3, 2, 4]);
  assert.deepEqual(c.spacing, [2, 3, 1.5]);
  assert.ok(c.data instanceof Int16Array);
  // every voxel value sits at the same world point in both layouts
  for (let z = 0; z < dims[2]; z++) {
    for (let y = 0; y < dims[1]; y++) {
      for (let x = 0; x < dims[0]; x++) {
        const w = apply(affine, [x, y, z]);
        const inv = c.affine; // world → canonical index (axis-aligned)
        const i = Math.round((w[0]! - inv[0]![3]!) / inv[0]![0]!);
        const j = Math.round((w[1]! - inv[1]![3]!) / inv[1]![1]!);
        const k = Math.round((w[2]! - inv[2]![3]!) / inv[2]![2]!);
        assert.equal(
          c.data[(k * c.dims[1] + j) * c.dims[0] + i],
          data[(z * dims[1] + y) * dims[0] + x],
        );
      }
    }
  }
  assert.deepEqual(fromCanonical(c.data, v), data);
  // already canonical: same data
  const again = toCanonical(c);
  assert.equal(again.data, c.data);
});

Deno.test("orientationOf picks the closest axes for oblique affines", () => {
  const t = 0.3; // 17° about z
  const a = [
    [Math.cos(t), -Math.sin(t), 0, 0],
    [Math.sin(t), Math.cos(t), 0, 0],
    [0, 0, -1, 0],
    [0, 0, 0, 1],
  ];
  assert.equal(axisCodes(a), "RAI");
  const b = [[0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]];
  assert.throws(() => axisCodes(b), TypeError);
});

// Task102 is GPL: read from the shared folder only, never copied here
const CT = `${SHARED}Task102_CTHead3/imagesTr/cthead_001.nii.gz`;
const ctPresent = SHARED !== undefined;

Deno.test({
  name: "toCanonical turns the LAS head CT (Task102) into RAS and back",
  ignore: !ctPresent,
  async fn() {
    const v = await readNifti(CT);
    assert.equal(axisCodes(v.affine), "LAS");
    const c = toCanonical(v);
    assert.equal(axisCodes(c.affine), "RAS");
    const [nx, ny] = v.dims;
    // x flipped: canonical voxel (i, j, k) = original (nx − 1 − i, j, k)
    for (const [i, j, k] of [[0, 0, 0], [5, 70, 3], [127, 127, 17]]) {
      assert.equal(
        c.data[(k! * ny + j!) * nx + i!],
        v.data[(k! * ny + j!) * nx + (nx - 1 - i!)],
      );
    }
    assertAlmostEquals(
      apply(c.affine, [0, 0, 0]),
      apply(v.affine, [nx - 1, 0, 0]),
      1e-4,
    );
    assert.deepEqual(fromCanonical(c.data, v), v.data);
  },
});
