import assert from "node:assert/strict";
import { assertAlmostEquals } from "../_utils.ts";
import {
  importanceMap,
  slidingWindowInference,
  type Window,
  windowStarts,
} from "../../pipeline/mod.ts";

Deno.test("windowStarts() follows MONAI's scan: interval size*(1-overlap), last flush", () => {
  assert.deepEqual(windowStarts(0, 6, { size: 4, overlap: 0.5 }), [0, 2]);
  // span 10, size 4, overlap 0.25 → interval 3, ceil(6/3)+1 = 3 windows.
  assert.deepEqual(windowStarts(0, 10, { size: 4, overlap: 0.25 }), [0, 3, 6]);
  // span 11 → ceil(7/3)+1 = 4 windows, the last clamped to 7.
  assert.deepEqual(windowStarts(0, 11, { size: 4, overlap: 0.25 }), [
    0,
    3,
    6,
    7,
  ]);
  // A span shorter than the window: one window centred on it.
  assert.deepEqual(windowStarts(5, 7, { size: 4, overlap: 0.25 }), [4]);
});

Deno.test("importanceMap() is a max-normalised Gaussian with sigma = scale*size", () => {
  const w = importanceMap(4, { sigmaScale: 0.5 }); // sigma 2, centre 1.5
  const g = (i: number) => Math.exp(-((i - 1.5) ** 2) / 8);
  const max = g(1) * g(1);
  assertAlmostEquals(w[0]!, (g(0) * g(0)) / max, 1e-6);
  assertAlmostEquals(w[1 * 4 + 2]!, (g(1) * g(2)) / max, 1e-6);
  assert.equal(w[5], 1);
  assert.ok(importanceMap(3, { mode: "constant" }).every((v) => v === 1));
});

function halves(p: number) {
  // First window all ones, every other window zeros.
  return (wins: Window[]) => {
    const out = new Float32Array(wins.length * p * p);
    wins.forEach((w, k) => {
      if (w.x === 0 && w.y === 0) out.fill(1, k * p * p, (k + 1) * p * p);
    });
    return Promise.resolve(out);
  };
}

Deno.test("slidingWindowInference() constant blending averages overlapping windows", async () => {
  // 4×6 slice, 4×4 windows at x = 0 and x = 2: columns 0-1 see only the
  // first (1), columns 2-3 both (mean 0.5), columns 4-5 only the second (0).
  const out = await slidingWindowInference(
    [4, 6],
    { y0: 0, y1: 4, x0: 0, x1: 6 },
    { patchSize: 4, overlap: 0.5, mode: "constant", predict: halves(4) },
  );
  for (let y = 0; y < 4; y++) {
    assertAlmostEquals(Array.from(out.subarray(y * 6, y * 6 + 6)), [
      1,
      1,
      0.5,
      0.5,
      0,
      0,
    ]);
  }
});

Deno.test("slidingWindowInference() Gaussian blending weights by distance to each window centre", async () => {
  const out = await slidingWindowInference(
    [4, 6],
    { y0: 0, y1: 4, x0: 0, x1: 6 },
    {
      patchSize: 4,
      overlap: 0.5,
      mode: "gaussian",
      sigmaScale: 0.125,
      predict: halves(4),
    },
  );
  // sigma = 0.5; column 2 is offset 0.5 from window 1's centre (1.5) and 1.5
  // from window 2's (3.5): value = g(.5)/(g(.5)+g(1.5)) = 1/(1+e^-4).
  const c2 = 1 / (1 + Math.exp(-4));
  const c3 = 1 - c2; // symmetric
  assertAlmostEquals(
    Array.from(out.subarray(0, 6)),
    [1, 1, c2, c3, 0, 0],
    1e-6,
  );
});

Deno.test("slidingWindowInference() covers only the region and clips windows at the border", async () => {
  const seen: Window[] = [];
  const out = await slidingWindowInference(
    [5, 5],
    { y0: 0, y1: 2, x0: 3, x1: 5 },
    {
      patchSize: 4,
      batchSize: 1,
      predict: (w) => {
        seen.push(...w);
        return Promise.resolve(new Float32Array(16).fill(0.25));
      },
    },
  );
  // One window centred on the 2×2 region: starts at y = -1, x = 2.
  assert.deepEqual(seen, [{ y: -1, x: 2 }]);
  assert.equal(out[0 * 5 + 2], 0.25);
  assert.equal(out[3 * 5 + 0], 0);
  assert.equal(out[4 * 5 + 4], 0);
  assert.equal(out[2 * 5 + 4], 0.25);
});

Deno.test("slidingWindowInference() rejects an empty region and a wrong predict length", async () => {
  await assert.rejects(
    slidingWindowInference([4, 4], { y0: 2, y1: 2, x0: 0, x1: 4 }, {
      patchSize: 2,
      predict: () => Promise.resolve(new Float32Array(4)),
    }),
    { name: "RangeError", message: /'region' must overlap the 4×4 slice/ },
  );
  await assert.rejects(
    slidingWindowInference([4, 4], { y0: 0, y1: 4, x0: 0, x1: 4 }, {
      patchSize: 2,
      predict: () => Promise.resolve(new Float32Array(3)),
    }),
    { name: "TypeError", message: /'predict' must return/ },
  );
});
