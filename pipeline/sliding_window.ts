/**
 * Sliding-window inference over a 2-D region, as MONAI's
 * `sliding_window_inference`: overlapping windows, Gaussian (or constant)
 * importance weights, weighted average where windows overlap.
 *
 * @module
 */

/** A window's top-left corner in the slice (may lie partly outside it). */
export interface Window {
  /** Row of the top-left pixel. */
  y: number;
  /** Column of the top-left pixel. */
  x: number;
}

/** A rectangle `[y0, y1) × [x0, x1)` in slice pixels. */
export interface Region {
  /** First row. */
  y0: number;
  /** One past the last row. */
  y1: number;
  /** First column. */
  x0: number;
  /** One past the last column. */
  x1: number;
}

/**
 * The importance map MONAI uses to blend windows: a Gaussian centred on the
 * window with `sigma = sigmaScale × size`, normalised to a maximum of 1
 * (`"gaussian"`), or all ones (`"constant"`).
 *
 * @param size Window side.
 * @param options Mode and sigma scale (MONAI default 0.125).
 * @returns `[size, size]` row-major weights.
 * @throws {RangeError} For a non-positive size or sigma scale.
 *
 * @example
 * ```ts
 * import { importanceMap } from "@agcl/agcl/pipeline";
 * import assert from "node:assert/strict";
 *
 * const w = importanceMap(3, { mode: "gaussian", sigmaScale: 0.5 });
 * assert.equal(w[4], 1); // the centre
 * ```
 */
export function importanceMap(
  size: number,
  options: { mode?: "gaussian" | "constant"; sigmaScale?: number } = {},
): Float32Array {
  const { mode = "gaussian", sigmaScale = 0.125 } = options;
  if (!Number.isInteger(size) || size < 1) {
    throw new RangeError(
      `Cannot build importanceMap as 'size' must be a positive integer: current value is ${size}`,
    );
  }
  if (!(sigmaScale > 0)) {
    throw new RangeError(
      `Cannot build importanceMap as 'sigmaScale' must be > 0: current value is ${sigmaScale}`,
    );
  }
  const out = new Float32Array(size * size);
  if (mode === "constant") return out.fill(1);
  const sigma = sigmaScale * size;
  const c = (size - 1) / 2;
  const g = new Float64Array(size);
  for (let i = 0; i < size; i++) {
    g[i] = Math.exp(-((i - c) ** 2) / (2 * sigma * sigma));
  }
  let max = 0;
  for (let i = 0; i < size; i++) {
    for (let j = 0; j < size; j++) max = Math.max(max, g[i]! * g[j]!);
  }
  // Floor at the smallest positive weight, as MONAI does, so no pixel of a
  // window gets weight 0 (which would leave it undefined at an image edge).
  let minPos = Infinity;
  for (let i = 0; i < size; i++) {
    for (let j = 0; j < size; j++) {
      const w = (g[i]! * g[j]!) / max;
      out[i * size + j] = w;
      if (w > 0) minPos = Math.min(minPos, w);
    }
  }
  for (let k = 0; k < out.length; k++) if (out[k] === 0) out[k] = minPos;
  return out;
}

/**
 * Window starts along one axis covering `[start, end)`, as MONAI's scan: an
 * interval of `floor(size × (1 − overlap))` (at least 1), the last window
 * flush with `end`. A span shorter than the window gets one window centred
 * on it.
 *
 * @param start First covered index.
 * @param end One past the last covered index (> start).
 * @param options Window side and overlap.
 * @returns Ascending, distinct starts.
 *
 * @example Span 10, window 4, overlap 0.25: an interval of 3, the last window flush
 * ```ts
 * import { windowStarts } from "@agcl/agcl/pipeline";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(windowStarts(0, 10, { size: 4, overlap: 0.25 }), [0, 3, 6]);
 * ```
 */
export function windowStarts(
  start: number,
  end: number,
  options: WindowStartsOptions,
): number[] {
  const { size, overlap } = options;
  const span = end - start;
  if (span <= size) return [start + Math.floor((span - size) / 2)];
  const interval = Math.max(1, Math.floor(size * (1 - overlap)));
  const n = Math.ceil((span - size) / interval) + 1;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = Math.min(start + i * interval, end - size);
    if (out[out.length - 1] !== s) out.push(s);
  }
  return out;
}

/** Options for {@linkcode windowStarts}. */
export interface WindowStartsOptions {
  /** Window side. */
  size: number;
  /** Fraction of overlap in [0, 1). */
  overlap: number;
}

/** Options for {@linkcode slidingWindowInference}. */
export interface SlidingWindowOptions {
  /** Window side. */
  patchSize: number;
  /** Overlap fraction. @default {0.25} */
  overlap?: number;
  /** Blending weights. @default {"gaussian"} */
  mode?: "gaussian" | "constant";
  /** Gaussian sigma as a fraction of the window. @default {0.125} */
  sigmaScale?: number;
  /** Windows handed to `predict` at once. @default {8} */
  batchSize?: number;
  /** Returns `[windows.length, patchSize, patchSize]` values. */
  predict: (windows: Window[]) => Promise<Float32Array>;
}

/**
 * Tiles `region` of an `height × width` slice with overlapping windows,
 * asks `predict` for each batch of windows, and blends the outputs with the
 * importance map. Pixels outside every window are 0; windows may extend past
 * the slice (their outside part is dropped).
 *
 * @param shape `[height, width]` of the slice.
 * @param region The rectangle to cover (clipped to the slice).
 * @param options Window size, overlap, blending, and `predict`.
 * @returns `[height, width]` blended values.
 * @throws {RangeError} For an empty region or bad options.
 * @throws {TypeError} When `predict` returns the wrong length.
 *
 * @example Constant predictions blend to the same constant
 * ```ts
 * import { slidingWindowInference } from "@agcl/agcl/pipeline";
 * import assert from "node:assert/strict";
 *
 * const out = await slidingWindowInference([6, 6], { y0: 0, y1: 6, x0: 0, x1: 6 }, {
 *   patchSize: 4,
 *   predict: (w) => Promise.resolve(new Float32Array(w.length * 16).fill(0.5)),
 * });
 * assert.equal(out[0], 0.5);
 * assert.equal(out[35], 0.5);
 * ```
 */
export async function slidingWindowInference(
  shape: [number, number],
  region: Region,
  options: SlidingWindowOptions,
): Promise<Float32Array> {
  const [h, w] = shape;
  const {
    patchSize: p,
    overlap = 0.25,
    mode = "gaussian",
    sigmaScale = 0.125,
    batchSize = 8,
    predict,
  } = options;
  if (!(overlap >= 0 && overlap < 1)) {
    throw new RangeError(
      `Cannot run slidingWindowInference as 'overlap' must be in [0, 1): current value is ${overlap}`,
    );
  }
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(
      `Cannot run slidingWindowInference as 'batchSize' must be a positive integer: current value is ${batchSize}`,
    );
  }
  const y0 = Math.max(0, region.y0), y1 = Math.min(h, region.y1);
  const x0 = Math.max(0, region.x0), x1 = Math.min(w, region.x1);
  if (!(y1 > y0 && x1 > x0)) {
    throw new RangeError(
      `Cannot run slidingWindowInference as 'region' must overlap the ${h}×${w} slice: current value is ${
        JSON.stringify(region)
      }`,
    );
  }
  const weight = importanceMap(p, { mode, sigmaScale });
  const windows: Window[] = [];
  const along = { size: p, overlap };
  for (const y of windowStarts(y0, y1, along)) {
    for (const x of windowStarts(x0, x1, along)) windows.push({ y, x });
  }
  const acc = new Float32Array(h * w);
  const norm = new Float32Array(h * w);
  for (let b = 0; b < windows.length; b += batchSize) {
    const batch = windows.slice(b, b + batchSize);
    const out = await predict(batch);
    if (out.length !== batch.length * p * p) {
      throw new TypeError(
        `Cannot run slidingWindowInference as 'predict' must return ${batch.length}×${p}×${p} = ${
          batch.length * p * p
        } values: current length is ${out.length}`,
      );
    }
    for (const [k, win] of batch.entries()) {
      const base = k * p * p;
      for (let i = 0; i < p; i++) {
        const y = win.y + i;
        if (y < 0 || y >= h) continue;
        for (let j = 0; j < p; j++) {
          const x = win.x + j;
          if (x < 0 || x >= w) continue;
          const wt = weight[i * p + j]!;
          acc[y * w + x]! += wt * out[base + i * p + j]!;
          norm[y * w + x]! += wt;
        }
      }
    }
  }
  for (let v = 0; v < acc.length; v++) {
    if (norm[v]! > 0) acc[v] = acc[v]! / norm[v]!;
  }
  return acc;
}
