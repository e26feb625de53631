/**
 * The in-memory volume every loader returns and every preprocessing step
 * takes: a typed voxel array in NIfTI order plus its grid.
 *
 * @module
 */

/** Typed arrays a {@linkcode Volume} can hold, one per supported NIfTI datatype. */
export type VoxelArray =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array;

/** Names of the supported voxel datatypes. */
export type VoxelDtype =
  | "uint8"
  | "int8"
  | "int16"
  | "uint16"
  | "int32"
  | "uint32"
  | "float32"
  | "float64";

/**
 * A 3D image or label map on a voxel grid.
 *
 * `data` is stored x fastest, then y, then z (NIfTI order): the voxel
 * `(x, y, z)` is `data[(z * ny + y) * nx + x]`.
 */
export interface Volume {
  /**
   * Voxels `[nz, ny, nx]` row-major (x fastest); `scl_slope`/`scl_inter`
   * already applied. May be a view into a larger buffer (mind `byteOffset`).
   */
  data: VoxelArray;
  /** Grid size `[nx, ny, nz]`; 2D images have `nz = 1`. */
  dims: [number, number, number];
  /** Voxel size in mm along x, y, z. */
  spacing: [number, number, number];
  /** 4×4 voxel-index → world (RAS+, mm) matrix. */
  affine: number[][];
  /** The source NIfTI header ({@linkcode NiftiHeader}), kept for writing. */
  header?: unknown;
  /** The file the volume was read from. */
  path?: string;
  /**
   * How many voxels are NaN or ±Inf (float data only; 0 otherwise). The
   * reader reports and keeps them; the preprocessing functions replace them
   * (see `windowIntensity` and `percentileNormalize`).
   */
  nonFinite?: number;
  /**
   * What the reader assumed where the file's header was silent or invalid,
   * one sentence each (e.g. 1 mm voxels when `pixdim` is 0 and neither
   * qform nor sform is set); absent when nothing was assumed. Callers pass
   * these on as warnings.
   */
  assumed?: string[];
}

/** Returns the datatype name of a voxel array. */
export function dtypeOf(data: VoxelArray): VoxelDtype {
  if (data instanceof Uint8Array) return "uint8";
  if (data instanceof Int8Array) return "int8";
  if (data instanceof Int16Array) return "int16";
  if (data instanceof Uint16Array) return "uint16";
  if (data instanceof Int32Array) return "int32";
  if (data instanceof Uint32Array) return "uint32";
  if (data instanceof Float32Array) return "float32";
  return "float64";
}

/** Allocates a zeroed voxel array of `dtype` with `length` elements. */
export function allocVoxels(dtype: VoxelDtype, length: number): VoxelArray {
  switch (dtype) {
    case "uint8":
      return new Uint8Array(length);
    case "int8":
      return new Int8Array(length);
    case "int16":
      return new Int16Array(length);
    case "uint16":
      return new Uint16Array(length);
    case "int32":
      return new Int32Array(length);
    case "uint32":
      return new Uint32Array(length);
    case "float32":
      return new Float32Array(length);
    case "float64":
      return new Float64Array(length);
  }
}

/** Counts NaN and ±Inf voxels (0 for integer arrays). */
export function countNonFinite(data: VoxelArray): number {
  if (!(data instanceof Float32Array || data instanceof Float64Array)) return 0;
  let n = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    // v - v is NaN exactly for NaN and ±Inf
    if (v - v !== 0) n++;
  }
  return n;
}
