/**
 * Intensity preprocessing: the CT window in Hounsfield units, percentile
 * normalisation, and axial slicing.
 *
 * NaN/Inf policy (both functions): statistics ignore non-finite voxels;
 * NaN maps to 0, +Inf to 1 and −Inf to 0. The reader counts such voxels in
 * `Volume.nonFinite` so callers can report them.
 *
 * @module
 */
import type { Volume, VoxelArray } from "./volume.ts";

function voxels(input: Volume | VoxelArray, fn: string): VoxelArray {
  const data = ArrayBuffer.isView(input) ? input : input?.data;
  if (!ArrayBuffer.isView(data)) {
    throw new TypeError(
      `Cannot compute ${fn} as 'volume' must be a Volume or a typed array`,
    );
  }
  return data as VoxelArray;
}

/** Options for {@linkcode windowIntensity}. */
export interface WindowOptions {
  /** Lower bound of the window (maps to 0). @default {-175} */
  min?: number;
  /** Upper bound of the window (maps to 1). @default {250} */
  max?: number;
}

/**
 * Maps intensities in `[min, max]` linearly to `[0, 1]` and clips the rest:
 * the abdominal CT window −175…250 HU by default (the paper's and MONAI
 * BTCV's `ScaleIntensityRange`).
 *
 * @example Usage
 * ```ts
 * import { windowIntensity } from "@agcl/agcl/data";
 * import assert from "node:assert/strict";
 *
 * const out = windowIntensity(new Float32Array([-1000, -175, 37.5, 250, 900]));
 * assert.deepEqual(Array.from(out), [0, 0, 0.5, 1, 1]);
 * ```
 *
 * @param volume A volume or its voxel array (any layout).
 * @param options The window bounds.
 * @returns Float32 values in `[0, 1]`, same length and layout as the input.
 * @throws {RangeError} If `min >= max` or a bound is not finite.
 */
export function windowIntensity(
  volume: Volume | VoxelArray,
  options: WindowOptions = {},
): Float32Array {
  const { min = -175, max = 250 } = options;
  if (!(Number.isFinite(min) && Number.isFinite(max) && min < max)) {
    throw new RangeError(
      `Cannot compute windowIntensity as 'min' must be < 'max' and both finite: current values are ${min} and ${max}`,
    );
  }
  const data = voxels(volume, "windowIntensity");
  return rescale(data, min, max);
}

/** (v − lo) / (hi − lo) clipped to [0, 1]; NaN → 0; hi ≤ lo → all 0. */
function rescale(data: VoxelArray, lo: number, hi: number): Float32Array {
  const n = data.length;
  const out = new Float32Array(n);
  if (!(hi > lo)) return out; // constant image: no division by zero
  const scale = 1 / (hi - lo);
  for (let i = 0; i < n; i++) {
    const v = (data[i]! - lo) * scale;
    // NaN fails both tests and stays 0
    out[i] = v >= 1 ? 1 : v > 0 ? v : 0;
  }
  return out;
}

/**
 * Percentiles of the finite voxels, with numpy's default (linear)
 * interpolation. Exact: integer types of up to 16 bits use a histogram,
 * others a selection on a copy.
 *
 * @param data Voxels.
 * @param ps Percentiles in `[0, 100]`.
 * @returns One value per percentile (NaN when there is no finite voxel).
 * @throws {RangeError} If a percentile is outside `[0, 100]`.
 */
export function percentiles(data: VoxelArray, ps: number[]): number[] {
  for (const p of ps) {
    if (!(p >= 0 && p <= 100)) {
      throw new RangeError(
        `Cannot compute percentiles as each of 'ps' must be in [0, 100]: current value is ${p}`,
      );
    }
  }
  if (
    data instanceof Uint8Array || data instanceof Int8Array ||
    data instanceof Int16Array || data instanceof Uint16Array
  ) {
    return histogramPercentiles(data, ps);
  }
  let copy: Float32Array | Float64Array;
  let n = 0;
  if (data instanceof Float32Array) {
    copy = new Float32Array(data.length);
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      if (v - v === 0) copy[n++] = v;
    }
  } else {
    copy = new Float64Array(data.length);
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      if (v - v === 0) copy[n++] = v;
    }
  }
  if (n === 0) return ps.map(() => NaN);
  const work = copy.subarray(0, n);
  return ps.map((p) => {
    const h = (n - 1) * p / 100;
    const k = Math.floor(h);
    const a = select(work, k);
    if (h === k || k + 1 >= n) return a;
    // after select, everything right of k is >= work[k]: its min is rank k+1
    let b = Infinity;
    for (let i = k + 1; i < n; i++) if (work[i]! < b) b = work[i]!;
    return a + (h - k) * (b - a);
  });
}

function histogramPercentiles(
  data: Uint8Array | Int8Array | Int16Array | Uint16Array,
  ps: number[],
): number[] {
  const offset = data instanceof Int8Array
    ? 128
    : data instanceof Int16Array
    ? 32768
    : 0;
  const size = data instanceof Uint8Array || data instanceof Int8Array
    ? 256
    : 65536;
  const hist = new Float64Array(size);
  const n = data.length;
  for (let i = 0; i < n; i++) hist[data[i]! + offset]!++;
  if (n === 0) return ps.map(() => NaN);
  const valueAt = (rank: number): number => {
    let c = 0;
    for (let b = 0; b < size; b++) {
      c += hist[b]!;
      if (c > rank) return b - offset;
    }
    return size - 1 - offset;
  };
  return ps.map((p) => {
    const h = (n - 1) * p / 100;
    const k = Math.floor(h);
    const a = valueAt(k);
    if (h === k || k + 1 >= n) return a;
    return a + (h - k) * (valueAt(k + 1) - a);
  });
}

/** Quickselect: partially orders `a` so `a[k]` is the k-th smallest; returns it. */
function select(a: Float32Array | Float64Array, k: number): number {
  let lo = 0, hi = a.length - 1;
  while (hi > lo) {
    // median of three as pivot
    const mid = (lo + hi) >>> 1;
    const x = a[lo]!, y = a[mid]!, z = a[hi]!;
    const pivot = x < y
      ? (y < z ? y : x < z ? z : x)
      : (x < z ? x : y < z ? z : y);
    let i = lo, j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i] = a[j]!;
        a[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k]!;
  }
  return a[k]!;
}

/** Options for {@linkcode percentileNormalize}. */
export interface PercentileOptions {
  /** Lower percentile (maps to 0). @default {1} */
  lower?: number;
  /** Upper percentile (maps to 1). @default {99} */
  upper?: number;
  /** Clip the result to `[0, 1]`. @default {true} */
  clip?: boolean;
  /**
   * Precomputed `[v_lower, v_upper]`, to reuse statistics computed once per
   * volume (see {@linkcode percentiles}).
   */
  range?: [number, number];
}

/**
 * Percentile normalisation, the paper's `(v − v1) / (v99 − v1)`: maps the
 * `lower`-th percentile to 0 and the `upper`-th to 1 (MONAI's
 * `ScaleIntensityRangePercentiles(1, 99, 0, 1)`), computed once over the
 * whole volume. A constant image (v99 = v1) gives all zeros instead of a
 * division by zero.
 *
 * @example Usage
 * ```ts
 * import { percentileNormalize } from "@agcl/agcl/data";
 * import assert from "node:assert/strict";
 *
 * const out = percentileNormalize(new Float32Array([0, 1, 2, 3, 4]), { lower: 0, upper: 100 });
 * assert.deepEqual(Array.from(out), [0, 0.25, 0.5, 0.75, 1]);
 * ```
 *
 * @param volume A volume or its voxel array.
 * @param options Percentiles, clipping, or a precomputed range.
 * @returns Float32 values, same length and layout as the input.
 * @throws {RangeError} If the percentiles are not `0 <= lower < upper <= 100`.
 */
export function percentileNormalize(
  volume: Volume | VoxelArray,
  options: PercentileOptions = {},
): Float32Array {
  const { lower = 1, upper = 99, clip = true, range } = options;
  if (!(lower >= 0 && upper <= 100 && lower < upper)) {
    throw new RangeError(
      `Cannot compute percentileNormalize as 'lower' and 'upper' must satisfy 0 <= lower < upper <= 100: current values are ${lower} and ${upper}`,
    );
  }
  const data = voxels(volume, "percentileNormalize");
  const [lo, hi] = range ?? (percentiles(data, [lower, upper]) as [
    number,
    number,
  ]);
  if (clip) return rescale(data, lo, hi);
  const out = new Float32Array(data.length);
  if (!(hi > lo)) return out;
  const scale = 1 / (hi - lo);
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    out[i] = v - v === 0 ? (v - lo) * scale : v > 0 ? 1 : 0;
  }
  return out;
}

/**
 * One axial slice `z` of a volume in NIfTI order, as a row-major image
 * `[height = ny, width = nx]` (a copy).
 *
 * @example Usage
 * ```ts
 * import { axialSlice } from "@agcl/agcl/data";
 * import assert from "node:assert/strict";
 *
 * const data = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
 * const s = axialSlice({ data, dims: [2, 2, 2] }, 1);
 * assert.deepEqual(Array.from(s), [5, 6, 7, 8]);
 * ```
 *
 * @param volume `data`: voxels `[nz, ny, nx]`, x fastest; `dims`: `[nx, ny, nz]`.
 * @param z Slice index in `[0, nz)`.
 * @returns The slice, `[ny, nx]`, of the same type as `data`.
 * @throws {TypeError} If data and dims disagree.
 * @throws {RangeError} If `z` is out of range.
 */
export function axialSlice<T extends VoxelArray>(
  volume: { data: T; dims: [number, number, number] },
  z: number,
): T {
  const { data, dims } = volume;
  const [nx, ny, nz] = dims;
  if (data.length !== nx * ny * nz) {
    throw new TypeError(
      `Cannot compute axialSlice as the data length ${data.length} does not match dims [${dims}]`,
    );
  }
  if (!(Number.isInteger(z) && z >= 0 && z < nz)) {
    throw new RangeError(
      `Cannot compute axialSlice as 'z' must be an integer in [0, ${
        nz - 1
      }]: current value is ${z}`,
    );
  }
  return data.slice(z * nx * ny, (z + 1) * nx * ny) as T;
}
