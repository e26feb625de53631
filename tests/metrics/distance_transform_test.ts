import assert from "node:assert/strict";
import {
  euclideanDistanceTransform,
  squaredDistanceToFeatures,
} from "../../metrics/distance_transform.ts";
import { Prng } from "../../random/prng.ts";
import { assertAlmostEquals } from "../_utils.ts";
import { SCIPY, scipy } from "./_scipy.ts";

/** Brute force: squared distance in mm² to the nearest feature voxel. */
function bruteForce(
  features: Uint8Array,
  dims: number[],
  spacing: number[],
): Float64Array {
  const [nx, ny, nz = 1] = dims as [number, number, number?];
  const sz = spacing[2] ?? 1;
  const pts: [number, number, number][] = [];
  for (let i = 0; i < features.length; i++) {
    if (features[i]) {
      pts.push([i % nx, Math.floor(i / nx) % ny, Math.floor(i / (nx * ny))]);
    }
  }
  const out = new Float64Array(features.length).fill(Infinity);
  for (let i = 0; i < features.length; i++) {
    const x = i % nx,
      y = Math.floor(i / nx) % ny,
      z = Math.floor(i / (nx * ny));
    for (const [px, py, pz] of pts) {
      const d = ((x - px) * spacing[0]!) ** 2 + ((y - py) * spacing[1]!) ** 2 +
        ((z - pz) * sz) ** 2;
      if (d < out[i]!) out[i] = d;
    }
  }
  void nz;
  return out;
}

Deno.test("squaredDistanceToFeatures matches hand-computed 1-D and 2-D values", () => {
  assert.deepEqual(
    Array.from(
      squaredDistanceToFeatures([0, 0, 1, 0, 0, 0, 1], {
        dims: [7],
        spacing: [0.5],
      }),
    ),
    [1, 0.25, 0, 0.25, 1, 0.25, 0],
  );
  // 3×2 grid, feature at (0, 0), spacing x 2 mm, y 3 mm.
  const d = squaredDistanceToFeatures([1, 0, 0, 0, 0, 0], {
    dims: [3, 2],
    spacing: [2, 3],
  });
  assert.deepEqual(Array.from(d), [0, 4, 16, 9, 13, 25]);
});

Deno.test("squaredDistanceToFeatures gives Infinity without features", () => {
  const d = squaredDistanceToFeatures(new Uint8Array(8), { dims: [2, 2, 2] });
  assert.ok(Array.from(d).every((v) => v === Infinity));
});

Deno.test("squaredDistanceToFeatures equals brute force on random anisotropic 3-D grids", () => {
  const prng = new Prng(7);
  for (let trial = 0; trial < 6; trial++) {
    const dims = [3 + prng.int(6), 3 + prng.int(6), 2 + prng.int(5)];
    const spacing = [
      prng.uniform(0.3, 3),
      prng.uniform(0.3, 3),
      prng.uniform(0.3, 3),
    ];
    const n = dims[0]! * dims[1]! * dims[2]!;
    const f = new Uint8Array(n);
    const density = prng.uniform(0.01, 0.2);
    for (let i = 0; i < n; i++) f[i] = prng.next() < density ? 1 : 0;
    f[prng.int(n)] = 1;
    assertAlmostEquals(
      squaredDistanceToFeatures(f, { dims, spacing }),
      bruteForce(f, dims, spacing),
      1e-9,
      `trial ${trial}`,
    );
  }
});

Deno.test("squaredDistanceToFeatures rejects bad grids with clear errors", () => {
  assert.throws(
    () => squaredDistanceToFeatures(new Uint8Array(5), { dims: [2, 2] }),
    { name: "TypeError", message: /has 5 voxels but 'dims' \[2,2\] needs 4/ },
  );
  assert.throws(
    () =>
      squaredDistanceToFeatures(new Uint8Array(4), {
        dims: [2, 2],
        spacing: [1, 0],
      }),
    { name: "RangeError", message: /'spacing' must be finite and > 0/ },
  );
  assert.throws(
    () =>
      squaredDistanceToFeatures(new Uint8Array(4), {
        dims: [2, 2],
        spacing: [1],
      }),
    { name: "TypeError", message: /'spacing' must have 2 entries/ },
  );
});

Deno.test({
  name:
    "euclideanDistanceTransform equals scipy.ndimage.distance_transform_edt (2-D and 3-D, anisotropic)",
  ignore: !SCIPY,
  fn: async () => {
    const prng = new Prng(11);
    const cases: { dims: number[]; spacing: number[]; mask: number[] }[] = [];
    for (let trial = 0; trial < 8; trial++) {
      const three = trial % 2 === 0;
      const dims = three
        ? [4 + prng.int(12), 4 + prng.int(12), 3 + prng.int(8)]
        : [5 + prng.int(30), 5 + prng.int(30)];
      const spacing = dims.map(() =>
        Math.round(prng.uniform(0.2, 4) * 100) / 100
      );
      const n = dims.reduce((a, b) => a * b, 1);
      const zeros = prng.uniform(0.02, 0.5);
      const mask = Array.from(
        { length: n },
        () => (prng.next() < zeros ? 0 : 1),
      );
      mask[prng.int(n)] = 0;
      cases.push({ dims, spacing, mask });
    }
    const ref = await scipy(
      `
import json, sys
import numpy as np
from scipy import ndimage
out = []
for c in json.load(sys.stdin):
    # our arrays are x fastest: reshape reversed, transpose to (x, y, z)
    a = np.array(c["mask"], dtype=np.uint8).reshape(c["dims"][::-1]).T
    d = ndimage.distance_transform_edt(a, sampling=c["spacing"])
    out.append(d.T.ravel().tolist())
print(json.dumps(out))
`,
      cases,
    ) as number[][];
    cases.forEach((c, i) => {
      assertAlmostEquals(
        euclideanDistanceTransform(c.mask, {
          dims: c.dims,
          spacing: c.spacing,
        }),
        ref[i]!,
        1e-9,
        `case ${i} dims ${c.dims}`,
      );
    });
  },
});
