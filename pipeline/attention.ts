/**
 * Attention maps: growing coarse labels into background, a target's region
 * in a slice, and cutting [image, attention] windows for stage 3.
 *
 * @module
 */
import type { LabelMap } from "../data/patch_sampler.ts";
import type { Region, Window } from "./sliding_window.ts";

/** Options for {@linkcode growLabels}. */
export interface GrowLabelsOptions {
  /** Steps of growth, in pixels. */
  radius: number;
}

/**
 * Grows every label of a multi-class map by `radius` pixels into
 * background, within each axial slice (4-neighbour steps; where two labels
 * reach the same pixel in one step, the lower label wins). Labelled pixels
 * never change.
 *
 * @param map `[nz, ny, nx]` label map.
 * @param dims `[nx, ny, nz]`.
 * @param options Steps of growth.
 * @returns A new map.
 *
 * @example
 * ```ts
 * import { growLabels } from "@agcl/agcl/pipeline";
 * import assert from "node:assert/strict";
 *
 * const grown = growLabels(new Uint8Array([0, 0, 3, 0, 0]), [5, 1, 1], {
 *   radius: 1,
 * });
 * assert.deepEqual(Array.from(grown), [0, 3, 3, 3, 0]);
 * ```
 */
export function growLabels<T extends LabelMap>(
  map: T,
  dims: [number, number, number],
  options: GrowLabelsOptions,
): T {
  const { radius } = options;
  const [nx, ny, nz] = dims;
  let cur = map.slice() as T;
  for (let step = 0; step < radius; step++) {
    const next = cur.slice() as T;
    for (let z = 0; z < nz; z++) {
      for (let y = 0; y < ny; y++) {
        for (let x = 0; x < nx; x++) {
          const i = (z * ny + y) * nx + x;
          if (cur[i] !== 0) continue;
          let best = 0;
          const consider = (j: number) => {
            const v = cur[j]!;
            if (v !== 0 && (best === 0 || v < best)) best = v;
          };
          if (x > 0) consider(i - 1);
          if (x < nx - 1) consider(i + 1);
          if (y > 0) consider(i - nx);
          if (y < ny - 1) consider(i + nx);
          if (best) next[i] = best;
        }
      }
    }
    cur = next;
  }
  return cur;
}

/**
 * Dilates a binary 2D mask by `radius` pixels in the max (Chebyshev) norm:
 * a pixel is set when any pixel of the `(2r+1)²` square around it is.
 *
 * @param mask `[height, width]`, non-zero = inside.
 * @param options The mask's `width` and `height`, and the `radius` in
 * pixels (0 copies the mask as 0/1).
 * @returns A new `[height, width]` 0/1 mask.
 *
 * @example
 * ```ts
 * import { dilateMask } from "@agcl/agcl/pipeline";
 * import assert from "node:assert/strict";
 *
 * const grown = dilateMask(new Uint8Array([0, 0, 1, 0, 0]), {
 *   width: 5,
 *   height: 1,
 *   radius: 1,
 * });
 * assert.deepEqual(Array.from(grown), [0, 1, 1, 1, 0]);
 * ```
 */
export function dilateMask(
  mask: ArrayLike<number>,
  options: { width: number; height: number; radius: number },
): Uint8Array {
  const { width: nx, height: ny, radius } = options;
  const rows = new Uint8Array(nx * ny);
  for (let y = 0; y < ny; y++) dilateLine(mask, rows, y * nx, 1, nx, radius);
  const out = new Uint8Array(nx * ny);
  for (let x = 0; x < nx; x++) dilateLine(rows, out, x, nx, ny, radius);
  return out;
}

/**
 * Sets `dst` wherever `src` has a set element within `radius` along one
 * line of `n` elements starting at `start`, `step` apart (a 1-D max filter,
 * one pass from each end).
 */
function dilateLine(
  src: ArrayLike<number>,
  dst: Uint8Array,
  start: number,
  step: number,
  n: number,
  radius: number,
): void {
  let last = -Infinity;
  for (let i = 0; i < n; i++) {
    if (src[start + i * step] !== 0) last = i;
    if (i - last <= radius) dst[start + i * step] = 1;
  }
  last = Infinity;
  for (let i = n - 1; i >= 0; i--) {
    if (src[start + i * step] !== 0) last = i;
    if (last - i <= radius) dst[start + i * step] = 1;
  }
}

/**
 * Keeps, for each label of a volume's label map, only its largest 3D
 * connected component (6-connectivity) and sets the rest to background:
 * nnU-Net's "largest component" post-processing, for organs that are one
 * piece. Ties go to the component met first in memory order.
 *
 * @param map `[nz, ny, nx]` label map (not modified).
 * @param dims `[nx, ny, nz]`.
 * @param options The `labels` to filter (default: every label).
 * @returns A new map.
 * @throws {TypeError} When `map` does not hold `nx·ny·nz` voxels.
 *
 * @example
 * ```ts
 * import { keepLargestComponents } from "@agcl/agcl/pipeline";
 * import assert from "node:assert/strict";
 *
 * // One row: label 1 in pieces of 2 and 1 voxels, label 2 in one piece.
 * const kept = keepLargestComponents(new Uint8Array([1, 1, 0, 1, 2, 2]), [6, 1, 1]);
 * assert.deepEqual(Array.from(kept), [1, 1, 0, 0, 2, 2]);
 * ```
 */
export function keepLargestComponents<T extends LabelMap>(
  map: T,
  dims: [number, number, number],
  options: { labels?: Iterable<number> } = {},
): T {
  const only = options.labels ? new Set(options.labels) : null;
  const [nx, ny, nz] = dims;
  const n = nx * ny * nz;
  if (map.length !== n) {
    throw new TypeError(
      `Cannot keep largest components as 'map' must hold ${n} voxels for dims [${dims}]: current length is ${map.length}`,
    );
  }
  const plane = nx * ny;
  // Component id of each voxel (its label's own numbering), -1 = unvisited.
  const comp = new Int32Array(n).fill(-1);
  const stack = new Int32Array(n);
  const best = new Map<number, { id: number; size: number }>();
  const count = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const label = map[i]!;
    if (label === 0 || comp[i]! >= 0 || (only && !only.has(label))) continue;
    const id = count.get(label) ?? 0;
    count.set(label, id + 1);
    let sp = 0, size = 0;
    stack[sp++] = i;
    comp[i] = id;
    while (sp > 0) {
      const v = stack[--sp]!;
      size++;
      const x = v % nx, y = Math.floor(v / nx) % ny, z = Math.floor(v / plane);
      const visit = (u: number) => {
        if (map[u] === label && comp[u]! < 0) {
          comp[u] = id;
          stack[sp++] = u;
        }
      };
      if (x > 0) visit(v - 1);
      if (x < nx - 1) visit(v + 1);
      if (y > 0) visit(v - nx);
      if (y < ny - 1) visit(v + nx);
      if (z > 0) visit(v - plane);
      if (z < nz - 1) visit(v + plane);
    }
    const b = best.get(label);
    if (!b || size > b.size) best.set(label, { id, size });
  }
  const out = map.slice() as T;
  for (let i = 0; i < n; i++) {
    const b = best.get(map[i]!);
    if (b && comp[i] !== b.id) out[i] = 0;
  }
  return out;
}

/**
 * The targets whose truth is one piece: in every training case that holds
 * the target, its largest 3D component (6-connectivity) holds all its
 * voxels. These are the labels {@linkcode keepLargestComponents} may
 * filter in stage 1's maps; a target that truth shows in several pieces
 * (a bilateral region, two instances of a digit) is left alone.
 *
 * @param cases Training cases: `dims` `[nx, ny, nz]` and `[nz, ny, nx]` labels.
 * @param options The target label ids.
 * @returns The one-piece target ids, ascending.
 *
 * @example
 * ```ts
 * import { onePieceLabels } from "@agcl/agcl/pipeline";
 * import assert from "node:assert/strict";
 *
 * // Label 1 in one piece, label 2 in two.
 * const c = { dims: [5, 1, 1] as [number, number, number], label: new Uint8Array([1, 1, 2, 0, 2]) };
 * assert.deepEqual(onePieceLabels([c], { targets: [1, 2] }), [1]);
 * ```
 */
export function onePieceLabels(
  cases: { dims: [number, number, number]; label?: LabelMap }[],
  options: { targets: number[] },
): number[] {
  const split = new Set<number>();
  for (const c of cases) {
    if (!c.label) continue;
    const kept = keepLargestComponents(c.label, c.dims);
    for (let i = 0; i < kept.length; i++) {
      if (kept[i] !== c.label[i]) split.add(c.label[i]!);
    }
  }
  return options.targets.filter((t) => !split.has(t)).sort((a, b) => a - b);
}

/** The image part of a case: canonical, channels last. */
export interface CaseImage {
  /** `[nx, ny, nz]`. */
  dims: [number, number, number];
  /** Image channels. */
  channels: number;
  /** `[nz, ny, nx, channels]`. */
  image: Float32Array;
}

/** Options for {@linkcode cutWindows}. */
export interface CutWindowsOptions {
  /** The label whose attention is the last channel. */
  target: number;
  /** The slice. */
  z: number;
  /** Top-left corners of the windows. */
  windows: Window[];
  /** Window side. */
  patchSize: number;
}

/**
 * Cuts windows of one slice as the stage-3 input: image channels, then the
 * binary attention of `target`; zero outside the slice.
 *
 * @param c The image.
 * @param attention `[nz, ny, nx]` multi-class attention.
 * @param options Target, slice, windows and their side `p`.
 * @returns `[windows.length, p, p, channels + 1]`.
 */
export function cutWindows(
  c: CaseImage,
  attention: LabelMap,
  options: CutWindowsOptions,
): Float32Array {
  const { target, z, windows, patchSize: p } = options;
  const [nx, ny] = c.dims;
  const ch = c.channels;
  const k = ch + 1;
  const out = new Float32Array(windows.length * p * p * k);
  windows.forEach((win, b) => {
    for (let i = 0; i < p; i++) {
      const y = win.y + i;
      if (y < 0 || y >= ny) continue;
      for (let j = 0; j < p; j++) {
        const x = win.x + j;
        if (x < 0 || x >= nx) continue;
        const v = (z * ny + y) * nx + x;
        const o = ((b * p + i) * p + j) * k;
        for (let q = 0; q < ch; q++) out[o + q] = c.image[v * ch + q]!;
        out[o + ch] = attention[v] === target ? 1 : 0;
      }
    }
  });
  return out;
}

/** Options for {@linkcode targetRegion}. */
export interface TargetRegionOptions {
  /** The label. */
  target: number;
  /** The slice. */
  z: number;
}

/**
 * Bounding box of `target` in slice `z`, or `null` when absent.
 *
 * @param attention `[nz, ny, nx]` multi-class attention.
 * @param dims `[nx, ny, nz]`.
 * @param options Target and slice.
 * @returns The box, one past its last row and column.
 */
export function targetRegion(
  attention: LabelMap,
  dims: [number, number, number],
  options: TargetRegionOptions,
): Region | null {
  const { target, z } = options;
  const [nx, ny] = dims;
  let y0 = ny, y1 = -1, x0 = nx, x1 = -1;
  for (let y = 0; y < ny; y++) {
    const row = (z * ny + y) * nx;
    for (let x = 0; x < nx; x++) {
      if (attention[row + x] === target) {
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
      }
    }
  }
  return y1 < 0 ? null : { y0, y1: y1 + 1, x0, x1: x1 + 1 };
}
