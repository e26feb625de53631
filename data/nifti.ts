/**
 * NIfTI-1/NIfTI-2 reading and NIfTI-1 writing, `.nii` and `.nii.gz`. The
 * header layouts are the field tables of `_nifti_fields.ts`, walked by one
 * reader and one writer; the affine arithmetic is `_affine.ts`.
 *
 * Rules: the affine comes from the sform when `sform_code > 0`, else from
 * the qform when `qform_code > 0`, else from `pixdim` (NIfTI method 1, no
 * flip); `scl_slope`/`scl_inter` are applied when the slope is finite and
 * not 0; both byte orders are read; gzip goes through the runtime's native
 * zlib (`DecompressionStream`).
 *
 * @module
 */
import {
  allocVoxels,
  countNonFinite,
  dtypeOf,
  type Volume,
  type VoxelArray,
  type VoxelDtype,
} from "./volume.ts";
import {
  gunzip,
  gunzipPrefix,
  gzip,
  isGzip,
  readFileClear,
  writeFileAtomic,
} from "./_io.ts";
import {
  affinesAgree,
  affineToQform,
  columnNorm,
  det3,
  qformToAffine,
} from "./_affine.ts";
import {
  type FieldValues,
  NIFTI1_FIELDS,
  NIFTI2_FIELDS,
  readFields,
  writeFields,
} from "./_nifti_fields.ts";

/** NIfTI datatype codes of the supported voxel types. */
const CODE_OF: Readonly<Record<VoxelDtype, number>> = Object.freeze({
  uint8: 2,
  int16: 4,
  int32: 8,
  float32: 16,
  float64: 64,
  int8: 256,
  uint16: 512,
  uint32: 768,
});

const DTYPE_OF_CODE: ReadonlyMap<number, VoxelDtype> = new Map(
  Object.entries(CODE_OF).map(([k, v]) => [v, k as VoxelDtype]),
);

const BYTES: Readonly<Record<VoxelDtype, number>> = Object.freeze({
  uint8: 1,
  int8: 1,
  int16: 2,
  uint16: 2,
  int32: 4,
  uint32: 4,
  float32: 4,
  float64: 8,
});

const UNSUPPORTED_NAMES: ReadonlyMap<number, string> = new Map([
  [0, "none"],
  [1, "binary"],
  [32, "complex64"],
  [128, "rgb24"],
  [1024, "int64"],
  [1280, "uint64"],
  [1536, "float128"],
  [1792, "complex128"],
  [2048, "complex256"],
  [2304, "rgba32"],
]);

/** Most voxels one volume may have (2^30, a 1024³ grid). */
export const MAX_VOXELS: number = 2 ** 30;

/**
 * The header fields of a NIfTI file, as plain data (kept on
 * {@linkcode Volume.header} so that {@linkcode writeNifti} can carry them
 * over). Extensions are not kept.
 */
export interface NiftiHeader {
  /** Marks this object as a NIfTI header. */
  kind: "nifti";
  /** 1 for NIfTI-1 (348-byte header), 2 for NIfTI-2 (540 bytes). */
  version: 1 | 2;
  /** Byte order of the source file. */
  littleEndian: boolean;
  /** `dim[0..7]`: rank, then sizes. */
  dim: number[];
  /** `pixdim[0..7]`: qfac, then voxel sizes. */
  pixdim: number[];
  /** NIfTI datatype code (2 = uint8, 4 = int16, 16 = float32, …). */
  datatypeCode: number;
  /** Bits per voxel. */
  bitpix: number;
  /** Byte offset of the voxel data. */
  voxOffset: number;
  /** Intensity scale; 0 or NaN means none. */
  sclSlope: number;
  /** Intensity offset (used with a valid slope). */
  sclInter: number;
  /** 0 unknown, 1 scanner, 2 aligned, 3 Talairach, 4 MNI. */
  qformCode: number;
  /** Same codes as `qformCode`. */
  sformCode: number;
  /** `quatern_b`, `quatern_c`, `quatern_d`. */
  quatern: [number, number, number];
  /** `qoffset_x`, `qoffset_y`, `qoffset_z`. */
  qoffset: [number, number, number];
  /** `srow_x`, `srow_y`, `srow_z`: the sform's 3×4 rows. */
  srow: number[][];
  /** Space and time units (`2 | 8` = mm and s). */
  xyztUnits: number;
  /** Frequency/phase/slice axis bits. */
  dimInfo: number;
  /** Intent code and parameters. */
  intentCode: number;
  /** `intent_p1`, `intent_p2`, `intent_p3`. */
  intentP: [number, number, number];
  /** Intent name (up to 16 characters). */
  intentName: string;
  /** Slice timing fields. */
  sliceCode: number;
  /** First slice index for timing. */
  sliceStart: number;
  /** Last slice index for timing. */
  sliceEnd: number;
  /** Time to acquire one slice. */
  sliceDuration: number;
  /** Time axis shift. */
  toffset: number;
  /** Display range. */
  calMin: number;
  /** Display range. */
  calMax: number;
  /** Free text (up to 80 characters). */
  description: string;
  /** Auxiliary file name (up to 24 characters). */
  auxFile: string;
}

/** Geometry read from a header, without the voxels. */
export interface NiftiInfo {
  /** The parsed header. */
  header: NiftiHeader;
  /** Grid `[nx, ny, nz]`. */
  dims: [number, number, number];
  /** Voxel size in mm. */
  spacing: [number, number, number];
  /** 4×4 voxel → world matrix. */
  affine: number[][];
  /** Voxel datatype. */
  dtype: VoxelDtype;
  /** Number of 3D volumes (product of dims 4..7). */
  volumes: number;
  /**
   * What the reader assumed where the header was silent or invalid, one
   * sentence each (e.g. 1 mm voxels when `pixdim` is 0 and neither qform
   * nor sform is set); empty for a sound header.
   */
  assumed: string[];
}

/** Options for {@linkcode readNifti}. */
export interface ReadNiftiOptions {
  /**
   * Which volume of a 4D (or higher) file to read. Files with more than
   * one volume are rejected unless this is given.
   */
  volumeIndex?: number;
  /**
   * What to do with NaN/±Inf voxels: `"report"` keeps them and sets
   * {@linkcode Volume.nonFinite} to their count; `"error"` throws.
   * @default {"report"}
   */
  nonFinite?: "report" | "error";
}

function sourceName(path: string | undefined): string {
  return path === undefined ? "NIfTI bytes" : `NIfTI file '${path}'`;
}

function fail(source: string, problem: string): never {
  throw new Error(`Cannot read ${source} as ${problem}`);
}

/** Parses and validates a header from the first bytes of an uncompressed file. */
function parseHeader(bytes: Uint8Array, source: string): NiftiHeader {
  if (bytes.length < 4) {
    fail(source, `it is not NIfTI: only ${bytes.length} bytes long`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const le = view.getInt32(0, true);
  const be = view.getInt32(0, false);
  const size = le === 348 || le === 540 ? le : be;
  const littleEndian = le === 348 || le === 540;
  if (size !== 348 && size !== 540) {
    fail(
      source,
      `it is not NIfTI: sizeof_hdr is ${le} (expected 348 for NIfTI-1 or 540 for NIfTI-2)`,
    );
  }
  const version: 1 | 2 = size === 348 ? 1 : 2;
  if (bytes.length < size) {
    fail(
      source,
      `its header is truncated: ${bytes.length} bytes (expected ${size})`,
    );
  }
  // Extensions, past the fixed header, are not kept.
  const h: FieldValues<typeof NIFTI1_FIELDS | typeof NIFTI2_FIELDS> =
    readFields(
      version === 1 ? NIFTI1_FIELDS : NIFTI2_FIELDS,
      view,
      littleEndian,
    );
  if (h.magic === "ni1" || h.magic === "ni2") {
    fail(
      source,
      `it is a .hdr/.img pair header (magic '${h.magic}'): only single-file .nii is supported`,
    );
  }
  if (h.magic !== (version === 1 ? "n+1" : "n+2")) {
    fail(
      source,
      `it is not NIfTI: bad magic '${h.magic}' (expected '${
        version === 1 ? "n+1" : "n+2"
      }')`,
    );
  }
  return {
    kind: "nifti",
    version,
    littleEndian,
    dim: h.dim,
    pixdim: h.pixdim,
    datatypeCode: h.datatype,
    bitpix: h.bitpix,
    voxOffset: h.vox_offset,
    sclSlope: h.scl_slope,
    sclInter: h.scl_inter,
    qformCode: h.qform_code,
    sformCode: h.sform_code,
    quatern: h.quatern as [number, number, number],
    qoffset: h.qoffset as [number, number, number],
    srow: [0, 1, 2].map((r) => h.srow.slice(4 * r, 4 * r + 4)),
    xyztUnits: h.xyzt_units,
    dimInfo: h.dim_info,
    intentCode: h.intent_code,
    intentP: h.intent_p as [number, number, number],
    intentName: h.intent_name,
    sliceCode: h.slice_code,
    sliceStart: h.slice_start,
    sliceEnd: h.slice_end,
    sliceDuration: h.slice_duration,
    toffset: h.toffset,
    calMin: h.cal_min,
    calMax: h.cal_max,
    description: h.descrip,
    auxFile: h.aux_file,
  };
}

/** The qform as a 4×4 affine (nifti1_io's `quatern_to_mat44`). */
export function qformAffine(header: NiftiHeader): number[][] {
  const px = header.pixdim;
  return qformToAffine({
    quatern: header.quatern,
    qfac: px[0]!,
    zooms: [1, 2, 3].map((i) => px[i]! > 0 ? px[i]! : 1),
    offset: header.qoffset,
  });
}

/** The affine a header defines: sform if `sform_code > 0`, else qform, else pixdim. */
export function headerAffine(header: NiftiHeader): number[][] {
  if (header.sformCode > 0) {
    return [...header.srow.map((r) => r.slice()), [0, 0, 0, 1]];
  }
  if (header.qformCode > 0) return qformAffine(header);
  // NIfTI method 1. As nibabel: a zero (or non-finite) voxel size becomes
  // 1 mm, a negative one its absolute value (see pixdimAssumptions).
  const p = header.pixdim;
  const s = (v: number | undefined) =>
    v !== undefined && Number.isFinite(v) && v !== 0 ? Math.abs(v) : 1;
  return [
    [s(p[1]), 0, 0, 0],
    [0, s(p[2]), 0, 0],
    [0, 0, s(p[3]), 0],
    [0, 0, 0, 1],
  ];
}

/**
 * What the reader assumes about voxel sizes when neither qform nor sform is
 * set: one sentence per kind of defect in `pixdim[1..rank]` (zero or
 * non-finite: 1 mm; negative: its absolute value), none for a sound header.
 */
function pixdimAssumptions(header: NiftiHeader): string[] {
  if (header.sformCode > 0 || header.qformCode > 0) return [];
  const rank = Math.min(3, header.dim[0] ?? 3);
  const zero: number[] = [], negative: number[] = [];
  for (let i = 1; i <= rank; i++) {
    const v = header.pixdim[i] ?? 0;
    if (!(Number.isFinite(v) && v !== 0)) zero.push(i);
    else if (v < 0) negative.push(i);
  }
  const shown = `pixdim[1..${rank}] is [${header.pixdim.slice(1, rank + 1)}]`;
  const axes = (ix: number[]) => ix.map((i) => "xyz"[i - 1]).join(", ");
  const out: string[] = [];
  if (zero.length > 0) {
    out.push(
      `${shown} and qform_code and sform_code are 0: a voxel size of 1 mm was assumed along ${
        axes(zero)
      }, so distances in mm (HD95, ASSD) may be meaningless`,
    );
  }
  if (negative.length > 0) {
    out.push(
      `${shown} and qform_code and sform_code are 0: the absolute value was used as the voxel size along ${
        axes(negative)
      }`,
    );
  }
  return out;
}

/** Validates dims/datatype/offset and derives the geometry. */
function headerInfo(header: NiftiHeader, source: string): NiftiInfo {
  const code = header.datatypeCode;
  const dtype = DTYPE_OF_CODE.get(code);
  if (dtype === undefined) {
    const name = UNSUPPORTED_NAMES.get(code) ?? "unknown";
    fail(
      source,
      `its datatype ${code} (${name}) is not supported: expected uint8, int8, int16, uint16, int32, uint32, float32 or float64`,
    );
  }
  const ndim = header.dim[0]!;
  if (!(ndim >= 1 && ndim <= 7)) {
    fail(source, `dim[0] (the rank) is ${ndim}: expected 1 to 7`);
  }
  const sizes: number[] = [];
  for (let i = 1; i <= 7; i++) sizes.push(i <= ndim ? header.dim[i]! : 1);
  const bad = sizes.findIndex((s) => !(Number.isInteger(s) && s >= 1));
  if (bad >= 0) {
    fail(
      source,
      `its dims must be >= 1: dim[${bad + 1}] is ${sizes[bad]} (dim = [${
        header.dim.slice(0, ndim + 1)
      }])`,
    );
  }
  const [nx, ny, nz] = sizes as [number, number, number];
  const nvox = nx * ny * nz;
  if (nvox > MAX_VOXELS) {
    fail(
      source,
      `its grid ${nx}×${ny}×${nz} (${nvox} voxels) is larger than the ${MAX_VOXELS} voxels one volume may have`,
    );
  }
  const volumes = sizes.slice(3).reduce((a, b) => a * b, 1);
  if (volumes * nvox * BYTES[dtype] > Number.MAX_SAFE_INTEGER) {
    fail(source, `its dims [${header.dim.slice(0, ndim + 1)}] are absurd`);
  }
  const minOffset = header.version === 1 ? 348 : 540;
  if (!(header.voxOffset >= minOffset)) {
    fail(
      source,
      `its vox_offset is ${header.voxOffset}: expected at least ${minOffset} in a single-file NIfTI`,
    );
  }
  const affine = headerAffine(header);
  if (!affine.flat().every(Number.isFinite)) {
    fail(source, `its affine is not finite: ${JSON.stringify(affine)}`);
  }
  // A zero column (a zeroed sform) or parallel columns leave no voxel axis
  // for some world axis: orientation and distances in mm are meaningless.
  const det = det3(affine);
  const scale = columnNorm(affine, 0) * columnNorm(affine, 1) *
    columnNorm(affine, 2);
  if (!(Math.abs(det) > 1e-6 * scale)) {
    fail(
      source,
      `its affine (from ${
        header.sformCode > 0
          ? "sform"
          : header.qformCode > 0
          ? "qform"
          : "pixdim"
      }) is singular: the rotation-zoom part ${
        JSON.stringify(affine.slice(0, 3).map((r) => r.slice(0, 3)))
      } has rank < 3, expected three independent voxel axes`,
    );
  }
  const spacing = [1, 2, 3].map((i) => {
    const p = Math.abs(header.pixdim[i] ?? 0);
    return p > 0 && Number.isFinite(p) ? p : columnNorm(affine, i - 1) || 1;
  }) as [number, number, number];
  return {
    header,
    dims: [nx, ny, nz],
    spacing,
    affine,
    dtype,
    volumes,
    assumed: pixdimAssumptions(header),
  };
}

function swapBytes(bytes: Uint8Array, width: number): void {
  if (width === 1) return;
  for (let i = 0; i + width <= bytes.length; i += width) {
    for (let a = i, b = i + width - 1; a < b; a++, b--) {
      const t = bytes[a]!;
      bytes[a] = bytes[b]!;
      bytes[b] = t;
    }
  }
}

function viewAs(
  dtype: VoxelDtype,
  buffer: ArrayBuffer,
  offset: number,
  length: number,
): VoxelArray {
  switch (dtype) {
    case "uint8":
      return new Uint8Array(buffer, offset, length);
    case "int8":
      return new Int8Array(buffer, offset, length);
    case "int16":
      return new Int16Array(buffer, offset, length);
    case "uint16":
      return new Uint16Array(buffer, offset, length);
    case "int32":
      return new Int32Array(buffer, offset, length);
    case "uint32":
      return new Uint32Array(buffer, offset, length);
    case "float32":
      return new Float32Array(buffer, offset, length);
    case "float64":
      return new Float64Array(buffer, offset, length);
  }
}

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Decodes one volume from an uncompressed file image. `owned`: may alias `bytes`. */
function decode(
  bytes: Uint8Array,
  path: string | undefined,
  owned: boolean,
  options: ReadNiftiOptions,
): Volume {
  const source = sourceName(path);
  const info = headerInfo(parseHeader(bytes, source), source);
  const { header, dims, dtype, volumes } = info;
  const { volumeIndex, nonFinite = "report" } = options;
  if (volumeIndex === undefined) {
    if (volumes > 1) {
      fail(
        source,
        `it has ${volumes} volumes (dim = [${
          header.dim.slice(0, header.dim[0]! + 1)
        }]) where one 3D volume is expected: pick one with 'volumeIndex' (deno task predict: --volume-index), or save the volume to use as a 3D NIfTI file of its own`,
      );
    }
  } else if (
    !(Number.isInteger(volumeIndex) && volumeIndex >= 0 &&
      volumeIndex < volumes)
  ) {
    throw new RangeError(
      `Cannot read ${source} as 'volumeIndex' must be an integer in [0, ${
        volumes - 1
      }]: current value is ${volumeIndex}`,
    );
  }
  const nvox = dims[0] * dims[1] * dims[2];
  const width = BYTES[dtype];
  const offset = Math.floor(header.voxOffset);
  const needed = offset + volumes * nvox * width;
  if (bytes.length < needed) {
    fail(
      source,
      `its voxel data is truncated: ${bytes.length} bytes, expected ${needed} (header ${offset} + ${volumes}×${nvox} voxels × ${width} bytes)`,
    );
  }
  const start = offset + (volumeIndex ?? 0) * nvox * width;
  const swap = header.littleEndian !== HOST_LITTLE_ENDIAN;
  let data: VoxelArray;
  const abs = bytes.byteOffset + start;
  if (owned && !swap && abs % width === 0) {
    data = viewAs(dtype, bytes.buffer as ArrayBuffer, abs, nvox);
  } else {
    const copy = bytes.slice(start, start + nvox * width);
    if (swap) swapBytes(copy, width);
    data = viewAs(dtype, copy.buffer, 0, nvox);
  }
  const slope = header.sclSlope;
  if (Number.isFinite(slope) && slope !== 0) {
    const inter = Number.isFinite(header.sclInter) ? header.sclInter : 0;
    if (slope !== 1 || inter !== 0) {
      const out = dtype === "float64"
        ? new Float64Array(nvox)
        : new Float32Array(nvox);
      for (let i = 0; i < nvox; i++) out[i] = data[i]! * slope + inter;
      data = out;
    }
  }
  const bad = countNonFinite(data);
  if (bad > 0 && nonFinite === "error") {
    fail(source, `it has ${bad} NaN or infinite voxels`);
  }
  const volume: Volume = {
    data,
    dims,
    spacing: info.spacing,
    affine: info.affine,
    header,
    nonFinite: bad,
  };
  if (info.assumed.length > 0) volume.assumed = info.assumed;
  if (path !== undefined) volume.path = path;
  return volume;
}

/** Inflated bytes a `.nii.gz` may hold beyond what its header declares. */
const GZIP_SLACK = 1 << 20;

/**
 * Inflates a `.nii.gz` header first, checks it (the voxel cap included),
 * then inflates the rest only up to the size the header declares (plus
 * {@linkcode GZIP_SLACK}), so a decompression bomb is stopped early.
 */
async function gunzipNifti(
  bytes: Uint8Array,
  source: string,
): Promise<Uint8Array> {
  const head = await gunzip(bytes, source, { maxBytes: 540, prefix: true });
  const { header, dims, dtype, volumes } = headerInfo(
    parseHeader(head, source),
    source,
  );
  const nvox = dims[0] * dims[1] * dims[2];
  const offset = Math.floor(header.voxOffset);
  const needed = offset + volumes * nvox * BYTES[dtype];
  return await gunzip(bytes, source, {
    maxBytes: needed + GZIP_SLACK,
    limitReason:
      `while its header declares ${needed} (vox_offset ${offset} + ${volumes}×${nvox} voxels × ${
        BYTES[dtype]
      } bytes)`,
  });
}

/**
 * Reads a NIfTI-1 or NIfTI-2 volume (`.nii` or `.nii.gz`, detected from the
 * bytes) into a {@linkcode Volume}.
 *
 * Datatypes uint8, int8, int16, uint16, int32, uint32, float32 and float64
 * in either byte order; `scl_slope`/`scl_inter` applied when the slope is
 * finite and not 0 (then `data` is a `Float32Array`, or `Float64Array` for
 * float64 files); 2D files give `nz = 1`.
 *
 * NaN/±Inf policy: they are kept and counted in `volume.nonFinite`
 * (`nonFinite: "error"` throws instead); the preprocessing functions map
 * them to finite values.
 *
 * @example Usage
 * ```ts
 * import { readNifti, writeNifti } from "@agcl/agcl/data";
 * import assert from "node:assert/strict";
 *
 * const path = await Deno.makeTempFile({ suffix: ".nii.gz" });
 * await writeNifti(path, {
 *   data: new Int16Array([-1000, 0, 40, 1000]),
 *   dims: [2, 2, 1],
 *   spacing: [0.5, 0.5, 2],
 *   affine: [[0.5, 0, 0, 0], [0, 0.5, 0, 0], [0, 0, 2, 0], [0, 0, 0, 1]],
 * });
 * const v = await readNifti(path);
 * assert.deepEqual(v.dims, [2, 2, 1]);
 * assert.deepEqual(Array.from(v.data), [-1000, 0, 40, 1000]);
 * await Deno.remove(path);
 * ```
 *
 * @param pathOrBytes A file path, or the file's bytes (gzip or not).
 * @param options Which volume of a 4D file; the NaN/Inf policy.
 * @returns The volume: `data` `[nz, ny, nx]` x fastest, `dims` `[nx, ny, nz]`.
 * @throws {Error} Naming the file when it is missing, not NIfTI, truncated,
 * corrupt gzip, of an unsupported datatype, with bad dims, or 4D without
 * `volumeIndex`.
 * @throws {RangeError} If `volumeIndex` is out of range.
 */
export async function readNifti(
  pathOrBytes: string | Uint8Array,
  options: ReadNiftiOptions = {},
): Promise<Volume> {
  if (typeof pathOrBytes === "string") {
    const path = pathOrBytes;
    let bytes = await readFileClear(path, "NIfTI file");
    if (isGzip(bytes)) bytes = await gunzipNifti(bytes, `NIfTI file '${path}'`);
    return decode(bytes, path, true, options);
  }
  if (!(pathOrBytes instanceof Uint8Array)) {
    throw new TypeError(
      `Cannot read NIfTI as 'pathOrBytes' must be a string or Uint8Array: current type is ${typeof pathOrBytes}`,
    );
  }
  if (isGzip(pathOrBytes)) {
    return decode(
      await gunzipNifti(pathOrBytes, "NIfTI bytes"),
      undefined,
      true,
      options,
    );
  }
  return decode(pathOrBytes, undefined, false, options);
}

/**
 * Reads only the header of a NIfTI file (inflating just its first bytes
 * when gzipped): grid, spacing, affine, datatype and volume count.
 *
 * @param path A `.nii` or `.nii.gz` file.
 * @returns The header and the geometry it defines.
 * @throws {Error} As {@linkcode readNifti} for header problems.
 */
export async function readNiftiHeader(path: string): Promise<NiftiInfo> {
  const source = `NIfTI file '${path}'`;
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`Cannot read ${source} as it does not exist`);
    }
    throw new Error(
      `Cannot read ${source}: ${e instanceof Error ? e.message : e}`,
    );
  }
  let head: Uint8Array;
  try {
    if ((await file.stat()).isDirectory) {
      throw new Error(`Cannot read ${source} as it is a directory`);
    }
    const first = new Uint8Array(2);
    const n = await file.read(first);
    await file.seek(0, Deno.SeekMode.Start);
    if (n === 2 && isGzip(first)) {
      head = await gunzipPrefix(file.readable, 540, source);
    } else {
      head = new Uint8Array(540);
      let got = 0;
      while (got < 540) {
        const r = await file.read(head.subarray(got));
        if (r === null) break;
        got += r;
      }
      head = head.subarray(0, got);
      file.close();
    }
  } catch (e) {
    try {
      file.close();
    } catch { /* closed by the stream */ }
    throw e;
  }
  return headerInfo(parseHeader(head, source), source);
}

/** Options for {@linkcode writeNifti}. */
export interface WriteNiftiOptions {
  /**
   * Datatype on disk; defaults to the array's own. Integer targets need
   * integer values in range.
   */
  datatype?: VoxelDtype;
}

function isNiftiHeader(h: unknown): h is NiftiHeader {
  return typeof h === "object" && h !== null &&
    (h as { kind?: unknown }).kind === "nifti";
}

function checkCast(
  data: VoxelArray,
  target: VoxelDtype,
  path: string,
): VoxelArray {
  const own = dtypeOf(data);
  if (own === target) return data;
  const out = allocVoxels(target, data.length);
  if (target === "float32" || target === "float64") {
    out.set(data);
    return out;
  }
  const probe = allocVoxels(target, 1);
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    probe[0] = v;
    if (probe[0] !== v) {
      throw new RangeError(
        `Cannot write NIfTI file '${path}' as ${target}: voxel ${i} is ${v}, not an integer in the ${target} range`,
      );
    }
    out[i] = v;
  }
  return out;
}

/**
 * Writes a volume as a NIfTI-1 file (`.nii`, or gzipped when the path ends
 * in `.gz`), atomically (temporary file, fsync, rename).
 *
 * The source header's fields (codes, units, description, intent, and when
 * the affine is unchanged its exact qform/sform) are kept; otherwise the
 * sform (and the qform, when the affine has no shear) are set from
 * `volume.affine`. Data are written little-endian with `scl_slope = 1`,
 * `scl_inter = 0`.
 *
 * @param path Destination ending in `.nii` or `.nii.gz`.
 * @param volume The volume; `data.length` must equal `nx·ny·nz`.
 * @param options Datatype on disk (default: the array's).
 * @throws {TypeError} If the path does not end in `.nii`/`.nii.gz` or the
 * data and dims disagree.
 * @throws {RangeError} If dims exceed 32767 or values do not fit the datatype.
 * @throws {Error} If the file cannot be written.
 */
export async function writeNifti(
  path: string,
  volume: Volume,
  options: WriteNiftiOptions = {},
): Promise<void> {
  if (!/\.nii(\.gz)?$/.test(path)) {
    throw new TypeError(
      `Cannot write NIfTI file '${path}' as its name must end in .nii or .nii.gz`,
    );
  }
  const { dims, affine } = volume;
  const target = options.datatype ?? dtypeOf(volume.data);
  if (!(target in CODE_OF)) {
    throw new TypeError(
      `Cannot write NIfTI file '${path}' as 'datatype' must be one of ${
        Object.keys(CODE_OF).join(", ")
      }: current value is ${target}`,
    );
  }
  if (
    !Array.isArray(dims) || dims.length !== 3 ||
    !dims.every((d) => Number.isInteger(d) && d >= 1)
  ) {
    throw new TypeError(
      `Cannot write NIfTI file '${path}' as 'dims' must be 3 positive integers: current value is [${dims}]`,
    );
  }
  if (dims.some((d) => d > 32767)) {
    throw new RangeError(
      `Cannot write NIfTI file '${path}' as NIfTI-1 dims must be <= 32767: current value is [${dims}]`,
    );
  }
  const nvox = dims[0] * dims[1] * dims[2];
  if (volume.data.length !== nvox) {
    throw new TypeError(
      `Cannot write NIfTI file '${path}' as data length ${volume.data.length} does not match dims [${dims}] (${nvox} voxels)`,
    );
  }
  if (
    !Array.isArray(affine) || affine.length !== 4 ||
    !affine.every((r) => Array.isArray(r) && r.length === 4) ||
    !affine.flat().every(Number.isFinite)
  ) {
    throw new TypeError(
      `Cannot write NIfTI file '${path}' as 'affine' must be a finite 4×4 matrix`,
    );
  }
  const data = checkCast(volume.data, target, path);
  const src = isNiftiHeader(volume.header) ? volume.header : undefined;

  const head = new Uint8Array(352); // 348-byte header + 4 bytes: no extensions
  const rank = dims[2] === 1 && src?.dim[0] === 2 ? 2 : 3;
  const sameGrid = src !== undefined && src.dim[1] === dims[0] &&
    src.dim[2] === (src.dim[0]! >= 2 ? dims[1] : 1) &&
    (src.dim[0]! >= 3 ? src.dim[3] : 1) === dims[2];
  const keepForms = sameGrid &&
    affinesAgree(headerAffine(src!), affine, 1e-6);

  let pixdim: number[];
  let qformCode: number, sformCode: number;
  let quatern: number[], qoffset: number[], srow: number[][];
  if (keepForms) {
    pixdim = src!.pixdim.slice(0, 8);
    qformCode = src!.qformCode;
    sformCode = src!.sformCode;
    quatern = src!.quatern;
    qoffset = src!.qoffset;
    srow = src!.srow;
  } else {
    const q = affineToQform(affine);
    const code = (src?.sformCode ?? 0) > 0
      ? src!.sformCode
      : (src?.qformCode ?? 0) > 0
      ? src!.qformCode
      : 2; // aligned anatomical
    sformCode = code;
    srow = affine.slice(0, 3).map((r) => r.slice());
    qoffset = [affine[0]![3]!, affine[1]![3]!, affine[2]![3]!];
    if (q) {
      qformCode = (src?.qformCode ?? 0) > 0 ? src!.qformCode : code;
      quatern = q.quatern;
      pixdim = [q.qfac, ...q.zooms];
    } else {
      qformCode = 0;
      quatern = [0, 0, 0];
      pixdim = [1, ...volume.spacing];
    }
    const rest = src?.pixdim ?? [];
    for (let i = 4; i < 8; i++) pixdim.push(rest[i] ?? 1);
  }
  writeFields(NIFTI1_FIELDS, new DataView(head.buffer), {
    sizeof_hdr: 348,
    regular: "r".charCodeAt(0), // as nifti1_io writes
    dim_info: src?.dimInfo ?? 0,
    dim: [rank, dims[0], dims[1], dims[2], 1, 1, 1, 1],
    intent_p: src?.intentP ?? [0, 0, 0],
    intent_code: src?.intentCode ?? 0,
    datatype: CODE_OF[target],
    bitpix: BYTES[target] * 8,
    slice_start: sameGrid ? src!.sliceStart : 0,
    pixdim: Array.from({ length: 8 }, (_, i) => pixdim[i] ?? 1),
    vox_offset: 352,
    scl_slope: 1,
    scl_inter: 0,
    slice_end: sameGrid ? src!.sliceEnd : 0,
    slice_code: sameGrid ? src!.sliceCode : 0,
    xyzt_units: src?.xyztUnits ?? 10, // mm and s
    cal_max: 0, // the display range is not carried: values may change
    cal_min: 0,
    slice_duration: src?.sliceDuration ?? 0,
    toffset: src?.toffset ?? 0,
    descrip: src?.description ?? "AGCL for Deno",
    aux_file: src?.auxFile ?? "",
    qform_code: qformCode,
    sform_code: sformCode,
    quatern,
    qoffset,
    srow: srow.flat(),
    intent_name: src?.intentName ?? "",
    magic: "n+1",
  });

  let body: Uint8Array;
  if (HOST_LITTLE_ENDIAN) {
    body = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  } else {
    body = new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
      .slice();
    swapBytes(body, BYTES[target]);
  }
  if (path.endsWith(".gz")) {
    const whole = new Uint8Array(352 + body.length);
    whole.set(head, 0);
    whole.set(body, 352);
    await writeFileAtomic(path, [await gzip(whole)]);
  } else {
    await writeFileAtomic(path, [head, body]);
  }
}
