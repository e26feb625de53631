/**
 * Exact Euclidean distance transform with anisotropic voxel spacing.
 *
 * Separable: one exact 1-D squared-distance pass per axis, each the lower
 * envelope of parabolas of Felzenszwalb & Huttenlocher, "Distance Transforms
 * of Sampled Functions" (Theory of Computing 8, 2012). Cost is linear in the
 * number of voxels. Arrays are laid out x fastest (NIfTI order).
 *
 * @module
 */

/** Options for {@linkcode squaredDistanceToFeatures}. */
export interface DistanceTransformOptions {
  /** Grid size, x fastest: `[nx, ny]` or `[nx, ny, nz]`. */
  dims: readonly number[];
  /** Voxel size per axis in mm, same length as `dims`. @default {all 1} */
  spacing?: readonly number[];
}

function checkGrid(
  fn: string,
  length: number,
  options: DistanceTransformOptions,
): number[] {
  const { dims } = options;
  if (!Array.isArray(dims) || dims.length < 1 || dims.length > 3) {
    throw new TypeError(
      `Cannot compute ${fn} as 'dims' must have 1 to 3 entries: current value is ${
        JSON.stringify(dims)
      }`,
    );
  }
  for (const d of dims) {
    if (!Number.isInteger(d) || d < 1) {
      throw new RangeError(
        `Cannot compute ${fn} as 'dims' must be positive integers: current value is ${
          JSON.stringify(dims)
        }`,
      );
    }
  }
  const n = dims.reduce((a, b) => a * b, 1);
  if (n !== length) {
    throw new TypeError(
      `Cannot compute ${fn} as the mask has ${length} voxels but 'dims' ${
        JSON.stringify(dims)
      } needs ${n}`,
    );
  }
  const spacing = options.spacing ?? dims.map(() => 1);
  if (spacing.length !== dims.length) {
    throw new TypeError(
      `Cannot compute ${fn} as 'spacing' must have ${dims.length} entries: current value is ${
        JSON.stringify(spacing)
      }`,
    );
  }
  for (const s of spacing) {
    if (!(s > 0) || !Number.isFinite(s)) {
      throw new RangeError(
        `Cannot compute ${fn} as 'spacing' must be finite and > 0: current value is ${
          JSON.stringify(spacing)
        }`,
      );
    }
  }
  return [...spacing];
}

/**
 * One exact 1-D pass: `out[q] = min_p ((q − p)·h)² + f[p]` over the `n`
 * samples `f[offset + k·stride]`, written back in place. `Infinity` samples
 * (no feature on this line yet) never enter the envelope.
 */
function pass1d(
  data: Float64Array,
  offset: number,
  stride: number,
  n: number,
  h2: number,
  f: Float64Array,
  v: Int32Array,
  z: Float64Array,
): void {
  for (let k = 0; k < n; k++) f[k] = data[offset + k * stride]!;
  // Lower envelope of the parabolas y = h²(q − p)² + f[p] with finite f[p].
  let top = -1;
  for (let q = 0; q < n; q++) {
    const fq = f[q]!;
    if (fq === Infinity) continue;
    if (top < 0) {
      top = 0;
      v[0] = q;
      z[0] = -Infinity;
      continue;
    }
    const cq = fq + h2 * q * q;
    let s = 0;
    for (;;) {
      const p = v[top]!;
      // Abscissa (in index units) where parabola q overtakes parabola p.
      s = (cq - (f[p]! + h2 * p * p)) / (2 * h2 * (q - p));
      if (s > z[top]!) break;
      top--;
      if (top < 0) break;
    }
    top++;
    v[top] = q;
    z[top] = top === 0 ? -Infinity : s;
  }
  if (top < 0) return; // nothing finite on this line: stays Infinity
  let j = 0;
  for (let q = 0; q < n; q++) {
    while (j < top && z[j + 1]! < q) j++;
    const p = v[j]!;
    const d = q - p;
    data[offset + q * stride] = h2 * d * d + f[p]!;
  }
}

/**
 * Squared Euclidean distance in mm² from every voxel to the nearest voxel
 * whose `features` value is non-zero (0 on the features themselves,
 * `Infinity` everywhere when there is no feature voxel).
 *
 * Equal to `scipy.ndimage.distance_transform_edt(features == 0,
 * sampling=spacing) ** 2` (scipy measures the distance from each non-zero
 * input voxel to the nearest zero one).
 *
 * @param features Mask of `prod(dims)` voxels, x fastest.
 * @param options Grid size and spacing.
 * @returns Squared distances in mm², same layout.
 * @throws {TypeError} When `dims`/`spacing` do not match the mask.
 * @throws {RangeError} When a size or spacing is not positive.
 *
 * @example Distance to one voxel on a 3-voxel line with 2 mm spacing
 * ```ts
 * import { squaredDistanceToFeatures } from "@agcl/agcl/metrics";
 * import assert from "node:assert/strict";
 * const d2 = squaredDistanceToFeatures(new Uint8Array([1, 0, 0]), { dims: [3], spacing: [2] });
 * assert.deepEqual(Array.from(d2), [0, 4, 16]);
 * ```
 */
export function squaredDistanceToFeatures(
  features: ArrayLike<number>,
  options: DistanceTransformOptions,
): Float64Array {
  const spacing = checkGrid(
    "squaredDistanceToFeatures",
    features.length,
    options,
  );
  const dims = options.dims;
  const n = features.length;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = features[i] !== 0 ? 0 : Infinity;
  const maxLen = Math.max(...dims);
  const f = new Float64Array(maxLen);
  const v = new Int32Array(maxLen);
  const z = new Float64Array(maxLen + 1);
  const strides: number[] = [];
  let s = 1;
  for (const d of dims) {
    strides.push(s);
    s *= d;
  }
  for (let axis = 0; axis < dims.length; axis++) {
    const len = dims[axis]!;
    if (len === 1) continue;
    const stride = strides[axis]!;
    const h2 = spacing[axis]! * spacing[axis]!;
    // Every line along `axis`: offsets with index 0 on that axis.
    const outer = n / (len * stride);
    for (let o = 0; o < outer; o++) {
      const base = o * len * stride;
      for (let i = 0; i < stride; i++) {
        pass1d(out, base + i, stride, len, h2, f, v, z);
      }
    }
  }
  return out;
}

/**
 * Euclidean distance transform with scipy's convention: for each non-zero
 * voxel of `mask`, the distance in mm to the nearest zero voxel; 0 on zero
 * voxels. A mask with no zero voxel gives `Infinity` on every voxel (scipy
 * instead returns distances to a virtual border; we refuse to invent one).
 *
 * Same as `scipy.ndimage.distance_transform_edt(mask, sampling=spacing)`.
 *
 * @param mask Mask of `prod(dims)` voxels, x fastest.
 * @param options Grid size and spacing.
 * @returns Distances in mm, same layout.
 * @throws {TypeError} When `dims`/`spacing` do not match the mask.
 * @throws {RangeError} When a size or spacing is not positive.
 *
 * @example
 * ```ts
 * import { euclideanDistanceTransform } from "@agcl/agcl/metrics";
 * import assert from "node:assert/strict";
 * const d = euclideanDistanceTransform(new Uint8Array([0, 1, 1, 1]), { dims: [4] });
 * assert.deepEqual(Array.from(d), [0, 1, 2, 3]);
 * ```
 */
export function euclideanDistanceTransform(
  mask: ArrayLike<number>,
  options: DistanceTransformOptions,
): Float64Array {
  const zeros = new Uint8Array(mask.length);
  for (let i = 0; i < mask.length; i++) zeros[i] = mask[i] === 0 ? 1 : 0;
  const d = squaredDistanceToFeatures(zeros, options);
  for (let i = 0; i < d.length; i++) d[i] = Math.sqrt(d[i]!);
  return d;
}
