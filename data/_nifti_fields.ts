/**
 * The NIfTI-1 (348 bytes) and NIfTI-2 (540 bytes) header layouts as field
 * tables (name as in `nifti1.h` / `nifti2.h`, byte offset, type, count),
 * and the one reader and one writer that walk them: {@link ./nifti.ts}
 * parses both versions and writes NIfTI-1 through these, so the layout is
 * stated once.
 *
 * @module
 */

/** How a field is stored: a number type, or `char` (a NUL-padded string). */
export type FieldType = "u8" | "i16" | "i32" | "i64" | "f32" | "f64" | "char";

/** One header field; `count` makes a number field an array, and is a string's byte length. */
export interface HeaderField {
  /** The name in `nifti1.h` / `nifti2.h`. */
  readonly name: string;
  /** Byte offset from the start of the header. */
  readonly offset: number;
  /** Storage type. */
  readonly type: FieldType;
  /** Elements of an array field; bytes of a `char` field. */
  readonly count?: number;
}

/** NIfTI-1 header, `nifti1.h` (`srow` holds `srow_x`, `srow_y`, `srow_z`). */
export const NIFTI1_FIELDS = [
  { name: "sizeof_hdr", offset: 0, type: "i32" },
  { name: "data_type", offset: 4, type: "char", count: 10 },
  { name: "db_name", offset: 14, type: "char", count: 18 },
  { name: "extents", offset: 32, type: "i32" },
  { name: "session_error", offset: 36, type: "i16" },
  { name: "regular", offset: 38, type: "u8" },
  { name: "dim_info", offset: 39, type: "u8" },
  { name: "dim", offset: 40, type: "i16", count: 8 },
  { name: "intent_p", offset: 56, type: "f32", count: 3 },
  { name: "intent_code", offset: 68, type: "i16" },
  { name: "datatype", offset: 70, type: "i16" },
  { name: "bitpix", offset: 72, type: "i16" },
  { name: "slice_start", offset: 74, type: "i16" },
  { name: "pixdim", offset: 76, type: "f32", count: 8 },
  { name: "vox_offset", offset: 108, type: "f32" },
  { name: "scl_slope", offset: 112, type: "f32" },
  { name: "scl_inter", offset: 116, type: "f32" },
  { name: "slice_end", offset: 120, type: "i16" },
  { name: "slice_code", offset: 122, type: "u8" },
  { name: "xyzt_units", offset: 123, type: "u8" },
  { name: "cal_max", offset: 124, type: "f32" },
  { name: "cal_min", offset: 128, type: "f32" },
  { name: "slice_duration", offset: 132, type: "f32" },
  { name: "toffset", offset: 136, type: "f32" },
  { name: "glmax", offset: 140, type: "i32" },
  { name: "glmin", offset: 144, type: "i32" },
  { name: "descrip", offset: 148, type: "char", count: 80 },
  { name: "aux_file", offset: 228, type: "char", count: 24 },
  { name: "qform_code", offset: 252, type: "i16" },
  { name: "sform_code", offset: 254, type: "i16" },
  { name: "quatern", offset: 256, type: "f32", count: 3 },
  { name: "qoffset", offset: 268, type: "f32", count: 3 },
  { name: "srow", offset: 280, type: "f32", count: 12 },
  { name: "intent_name", offset: 328, type: "char", count: 16 },
  { name: "magic", offset: 344, type: "char", count: 4 },
] as const satisfies readonly HeaderField[];

/** NIfTI-2 header, `nifti2.h` (the same fields, wider, in another order). */
export const NIFTI2_FIELDS = [
  { name: "sizeof_hdr", offset: 0, type: "i32" },
  { name: "magic", offset: 4, type: "char", count: 8 },
  { name: "datatype", offset: 12, type: "i16" },
  { name: "bitpix", offset: 14, type: "i16" },
  { name: "dim", offset: 16, type: "i64", count: 8 },
  { name: "intent_p", offset: 80, type: "f64", count: 3 },
  { name: "pixdim", offset: 104, type: "f64", count: 8 },
  { name: "vox_offset", offset: 168, type: "i64" },
  { name: "scl_slope", offset: 176, type: "f64" },
  { name: "scl_inter", offset: 184, type: "f64" },
  { name: "cal_max", offset: 192, type: "f64" },
  { name: "cal_min", offset: 200, type: "f64" },
  { name: "slice_duration", offset: 208, type: "f64" },
  { name: "toffset", offset: 216, type: "f64" },
  { name: "slice_start", offset: 224, type: "i64" },
  { name: "slice_end", offset: 232, type: "i64" },
  { name: "descrip", offset: 240, type: "char", count: 80 },
  { name: "aux_file", offset: 320, type: "char", count: 24 },
  { name: "qform_code", offset: 344, type: "i32" },
  { name: "sform_code", offset: 348, type: "i32" },
  { name: "quatern", offset: 352, type: "f64", count: 3 },
  { name: "qoffset", offset: 376, type: "f64", count: 3 },
  { name: "srow", offset: 400, type: "f64", count: 12 },
  { name: "slice_code", offset: 496, type: "i32" },
  { name: "xyzt_units", offset: 500, type: "i32" },
  { name: "intent_code", offset: 504, type: "i32" },
  { name: "intent_name", offset: 508, type: "char", count: 16 },
  { name: "dim_info", offset: 524, type: "u8" },
  { name: "unused_str", offset: 525, type: "char", count: 15 },
] as const satisfies readonly HeaderField[];

type ValueOf<F extends HeaderField> = F extends { type: "char" } ? string
  : F extends { count: number } ? number[]
  : number;

/** The values of a table's fields, by name: a number, an array, or a string. */
export type FieldValues<T extends readonly HeaderField[]> = {
  [F in T[number] as F["name"]]: ValueOf<F>;
};

const SIZE: Readonly<Record<Exclude<FieldType, "char">, number>> = {
  u8: 1,
  i16: 2,
  i32: 4,
  i64: 8,
  f32: 4,
  f64: 8,
};

function getNumber(
  view: DataView,
  at: number,
  type: Exclude<FieldType, "char">,
  le: boolean,
): number {
  switch (type) {
    case "u8":
      return view.getUint8(at);
    case "i16":
      return view.getInt16(at, le);
    case "i32":
      return view.getInt32(at, le);
    case "i64":
      return Number(view.getBigInt64(at, le));
    case "f32":
      return view.getFloat32(at, le);
    case "f64":
      return view.getFloat64(at, le);
  }
}

function setNumber(
  view: DataView,
  at: number,
  type: Exclude<FieldType, "char">,
  value: number,
): void {
  switch (type) {
    case "u8":
      return view.setUint8(at, value);
    case "i16":
      return view.setInt16(at, value, true);
    case "i32":
      return view.setInt32(at, value, true);
    case "i64":
      return view.setBigInt64(at, BigInt(value), true);
    case "f32":
      return view.setFloat32(at, value, true);
    case "f64":
      return view.setFloat64(at, value, true);
  }
}

/**
 * Reads every field of `fields` from `view` in the given byte order. A
 * string ends at its first NUL (as `nifti1_io` and nibabel read it) and is
 * decoded as Latin-1.
 */
export function readFields<T extends readonly HeaderField[]>(
  fields: T,
  view: DataView,
  littleEndian: boolean,
): FieldValues<T> {
  const out: Record<string, number | number[] | string> = {};
  const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  for (const f of fields) {
    if (f.type === "char") {
      const start = f.offset, end = start + f.count!;
      let e = start;
      while (e < end && bytes[e] !== 0) e++;
      out[f.name] = new TextDecoder("latin1").decode(bytes.subarray(start, e));
    } else if (f.count === undefined) {
      out[f.name] = getNumber(view, f.offset, f.type, littleEndian);
    } else {
      const type = f.type;
      out[f.name] = Array.from(
        { length: f.count },
        (_, i) =>
          getNumber(view, f.offset + i * SIZE[type], type, littleEndian),
      );
    }
  }
  return out as FieldValues<T>;
}

/**
 * Writes the given fields of `fields` into `view`, little-endian; fields
 * not given keep their bytes (zero in a fresh buffer). A string is written
 * as UTF-8, cut to leave at least one NUL; an array writes its first
 * `count` elements.
 */
export function writeFields<T extends readonly HeaderField[]>(
  fields: T,
  view: DataView,
  values: Partial<FieldValues<T>>,
): void {
  const given = values as Record<string, number | number[] | string>;
  const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  for (const f of fields) {
    const v = given[f.name];
    if (v === undefined) continue;
    if (f.type === "char") {
      bytes.set(
        new TextEncoder().encode(v as string).subarray(0, f.count! - 1),
        f.offset,
      );
    } else if (f.count === undefined) {
      setNumber(view, f.offset, f.type, v as number);
    } else {
      const a = v as number[];
      for (let i = 0; i < f.count; i++) {
        setNumber(view, f.offset + i * SIZE[f.type], f.type, a[i]!);
      }
    }
  }
}
