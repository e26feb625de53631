/**
 * Reorientation to the closest canonical (RAS+) voxel order, by axis
 * permutation and flips only (no resampling), and back.
 *
 * @module
 */
import type { Volume, VoxelArray } from "./volume.ts";
import { columnNorm, matmul4 } from "./_affine.ts";

/** How a grid's voxel axes map onto world axes. */
export interface Orientation {
  /** `axis[j]`: the world axis (0 = x/R, 1 = y/A, 2 = z/S) voxel axis `j` runs along. */
  axis: [number, number, number];
  /** `flip[j]`: voxel axis `j` runs towards L, P or I (against RAS+). */
  flip: [boolean, boolean, boolean];
}

/**
 * The orientation of an affine: for each voxel axis, the world axis its
 * direction is closest to (a one-to-one assignment, largest cosine first)
 * and its sign.
 *
 * @param affine 4×4 voxel → world matrix.
 * @returns The axis assignment and flips.
 * @throws {TypeError} If the affine is not 4×4 or has a zero column.
 */
export function orientationOf(affine: number[][]): Orientation {
  if (
    !Array.isArray(affine) || affine.length < 3 ||
    !affine.slice(0, 3).every((r) => Array.isArray(r) && r.length >= 3)
  ) {
    throw new TypeError(
      `Cannot compute orientationOf as 'affine' must be a 4×4 matrix`,
    );
  }
  const cos: number[][] = [[], [], []]; // cos[i][j]: world i, voxel j
  for (let j = 0; j < 3; j++) {
    const n = columnNorm(affine, j);
    if (!(n > 0)) {
      throw new TypeError(
        `Cannot compute orientationOf as column ${j} of 'affine' is zero or not finite`,
      );
    }
    for (let i = 0; i < 3; i++) cos[i]![j] = affine[i]![j]! / n;
  }
  const axis: [number, number, number] = [-1, -1, -1];
  const flip: [boolean, boolean, boolean] = [false, false, false];
  const usedWorld = [false, false, false];
  for (let k = 0; k < 3; k++) {
    let best = -1, bi = 0, bj = 0;
    for (let j = 0; j < 3; j++) {
      if (axis[j] !== -1) continue;
      for (let i = 0; i < 3; i++) {
        if (usedWorld[i]) continue;
        const a = Math.abs(cos[i]![j]!);
        if (a > best) {
          best = a;
          bi = i;
          bj = j;
        }
      }
    }
    axis[bj] = bi;
    flip[bj] = cos[bi]![bj]! < 0;
    usedWorld[bi] = true;
  }
  return { axis, flip };
}

/**
 * Axis codes of an affine, as nibabel's `aff2axcodes` gives them
 * (`"RAS"`, `"LAS"`, `"LPS"`, …).
 *
 * @example Usage
 * ```ts
 * import { axisCodes } from "@agcl/agcl/data";
 * import assert from "node:assert/strict";
 *
 * assert.equal(axisCodes([[-2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 3, 0], [0, 0, 0, 1]]), "LAS");
 * ```
 *
 * @param affine 4×4 voxel → world matrix.
 * @returns Three letters, one per voxel axis.
 */
export function axisCodes(affine: number[][]): string {
  const { axis, flip } = orientationOf(affine);
  const pos = ["R", "A", "S"], neg = ["L", "P", "I"];
  return axis.map((a, j) => (flip[j] ? neg : pos)[a]).join("");
}

interface Mapping {
  dims: [number, number, number];
  base: number;
  strides: [number, number, number];
  transform: number[][];
}

/** Gather offsets: canonical index (a0, a1, a2) → original offset. */
function mapping(dims: [number, number, number], o: Orientation): Mapping {
  const oldStride = [1, dims[0], dims[0] * dims[1]];
  const inv = [0, 0, 0];
  for (let j = 0; j < 3; j++) inv[o.axis[j]!] = j;
  const newDims = [0, 0, 0] as [number, number, number];
  const strides = [0, 0, 0] as [number, number, number];
  let base = 0;
  // transform: new index → old index (4×4)
  const t = [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]];
  for (let i = 0; i < 3; i++) {
    const j = inv[i]!;
    newDims[i] = dims[j]!;
    const f = o.flip[j]!;
    strides[i] = f ? -oldStride[j]! : oldStride[j]!;
    if (f) base += (dims[j]! - 1) * oldStride[j]!;
    t[j]![i] = f ? -1 : 1;
    t[j]![3] = f ? dims[j]! - 1 : 0;
  }
  return { dims: newDims, base, strides, transform: t };
}

function isIdentity(o: Orientation): boolean {
  return o.axis.every((a, j) => a === j) && o.flip.every((f) => !f);
}

function like<T extends VoxelArray>(data: T, length: number): T {
  return new (data.constructor as new (n: number) => T)(length);
}

function checkLength(
  data: VoxelArray,
  dims: [number, number, number],
  fn: string,
): void {
  const n = dims[0] * dims[1] * dims[2];
  if (data.length !== n) {
    throw new TypeError(
      `Cannot compute ${fn} as the data length ${data.length} does not match dims [${dims}] (${n} voxels)`,
    );
  }
}

/**
 * Reorients a volume to the closest canonical RAS+ layout (voxel x runs
 * along world +x = R, y along +y = A, z along +z = S), using only axis
 * permutations and flips, so
 * left/right and up/down agree across cases whose affines differ. The
 * affine is updated so every voxel keeps its world position.
 *
 * When the volume is already canonical it is returned with the same data
 * array (not copied).
 *
 * @example Usage
 * ```ts
 * import { toCanonical, fromCanonical } from "@agcl/agcl/data";
 * import assert from "node:assert/strict";
 *
 * const v = {
 *   data: new Uint8Array([1, 2, 3, 4]),
 *   dims: [2, 2, 1] as [number, number, number],
 *   spacing: [1, 1, 1] as [number, number, number],
 *   affine: [[-1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
 * };
 * const c = toCanonical(v); // x was flipped (LAS)
 * assert.deepEqual(Array.from(c.data), [2, 1, 4, 3]);
 * assert.deepEqual(Array.from(fromCanonical(c.data, v)), [1, 2, 3, 4]);
 * ```
 *
 * @param volume A volume, `data` `[nz, ny, nx]` x fastest.
 * @returns The canonical volume (dims, spacing and affine permuted).
 * @throws {TypeError} If the data length and dims disagree.
 */
export function toCanonical(volume: Volume): Volume {
  checkLength(volume.data, volume.dims, "toCanonical");
  const o = orientationOf(volume.affine);
  if (isIdentity(o)) return { ...volume };
  const m = mapping(volume.dims, o);
  const src = volume.data;
  const out = like(src, src.length);
  const [n0, n1, n2] = m.dims;
  const [s0, s1, s2] = m.strides;
  let k = 0;
  for (let a2 = 0; a2 < n2; a2++) {
    for (let a1 = 0; a1 < n1; a1++) {
      let off = m.base + a1 * s1 + a2 * s2;
      for (let a0 = 0; a0 < n0; a0++, off += s0) out[k++] = src[off]!;
    }
  }
  const inv = [0, 0, 0];
  for (let j = 0; j < 3; j++) inv[o.axis[j]!] = j;
  const result: Volume = {
    ...volume,
    data: out,
    dims: m.dims,
    spacing: inv.map((j) => volume.spacing[j]!) as [number, number, number],
    affine: matmul4(volume.affine, m.transform),
  };
  return result;
}

/**
 * Puts a canonical-layout array (for instance a prediction made on
 * {@linkcode toCanonical}'s output) back into the original volume's voxel
 * layout, so it can be written with the original header and affine.
 *
 * @param data Voxels in the canonical layout of `original`.
 * @param original The volume as read (its dims and affine define the layout).
 * @returns A new array of the same type in the original layout.
 * @throws {TypeError} If `data` does not have `original`'s voxel count.
 */
export function fromCanonical<T extends VoxelArray>(
  data: T,
  original: Volume,
): T {
  checkLength(data, original.dims, "fromCanonical");
  const o = orientationOf(original.affine);
  if (isIdentity(o)) return data.slice() as T;
  const m = mapping(original.dims, o);
  const out = like(data, data.length);
  const [n0, n1, n2] = m.dims;
  const [s0, s1, s2] = m.strides;
  let k = 0;
  for (let a2 = 0; a2 < n2; a2++) {
    for (let a1 = 0; a1 < n1; a1++) {
      let off = m.base + a1 * s1 + a2 * s2;
      for (let a0 = 0; a0 < n0; a0++, off += s0) out[off] = data[k++]!;
    }
  }
  return out;
}
