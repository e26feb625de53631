/**
 * The safetensors format (Hugging Face): an 8-byte little-endian header
 * length, a JSON header `{name: {dtype, shape, data_offsets: [begin, end]}}`
 * with an optional `__metadata__` string map, then the raw little-endian
 * tensor bytes, back to back. Reading checks every entry, so a truncated or
 * malformed file fails with a message that says what is wrong.
 */

/** Element types this reader and writer handle, by safetensors name. */
export type SafetensorsDtype =
  | "F64"
  | "F32"
  | "I64"
  | "I32"
  | "I16"
  | "I8"
  | "U8"
  | "BOOL";

/** Typed array holding one tensor's values. */
export type SafetensorsData =
  | Float64Array
  | Float32Array
  | BigInt64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array;

/** One named tensor of a safetensors file. */
export interface SafetensorsEntry {
  /** Element type. */
  dtype: SafetensorsDtype;
  /** Shape (`[]` for a scalar). */
  shape: number[];
  /** Values in row-major order. */
  data: SafetensorsData;
}

/** A decoded safetensors file. */
export interface SafetensorsFile {
  /** Tensors by name, in file order. */
  tensors: Record<string, SafetensorsEntry>;
  /** The `__metadata__` map (empty when absent). */
  metadata: Record<string, string>;
}

const ARRAYS: Record<
  SafetensorsDtype,
  { bytes: number; make: (b: ArrayBuffer) => SafetensorsData }
> = {
  F64: { bytes: 8, make: (b) => new Float64Array(b) },
  F32: { bytes: 4, make: (b) => new Float32Array(b) },
  I64: { bytes: 8, make: (b) => new BigInt64Array(b) },
  I32: { bytes: 4, make: (b) => new Int32Array(b) },
  I16: { bytes: 2, make: (b) => new Int16Array(b) },
  I8: { bytes: 1, make: (b) => new Int8Array(b) },
  U8: { bytes: 1, make: (b) => new Uint8Array(b) },
  BOOL: { bytes: 1, make: (b) => new Uint8Array(b) },
};

/** Largest header this reader accepts (the reference implementation's limit). */
const MAX_HEADER = 100_000_000;

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error(
    "Cannot use safetensors on a big-endian platform: the format is little-endian",
  );
}

function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Serialises tensors as safetensors bytes, in the order given. The header
 * is padded with spaces to a multiple of 8 bytes, as the reference writer
 * does.
 *
 * @example Round trip
 * ```ts
 * import { decodeSafetensors, encodeSafetensors } from "@agcl/agcl/models";
 * import assert from "node:assert/strict";
 *
 * const bytes = encodeSafetensors({ w: { dtype: "F32", shape: [2], data: new Float32Array([1, 2]) } });
 * assert.deepEqual(decodeSafetensors(bytes).tensors.w!.data, new Float32Array([1, 2]));
 * ```
 *
 * @param tensors Tensors by name.
 * @param metadata String metadata stored as `__metadata__`.
 * @returns The file's bytes.
 * @throws {TypeError} If an entry's data length does not match its shape or dtype.
 */
export function encodeSafetensors(
  tensors: Record<string, SafetensorsEntry>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const spec = ARRAYS[t.dtype];
    if (!spec) {
      throw new TypeError(
        `Cannot encode safetensors as '${name}' has unsupported dtype ${t.dtype}`,
      );
    }
    if (
      t.data.length !== numel(t.shape) ||
      t.data.BYTES_PER_ELEMENT !== spec.bytes
    ) {
      throw new TypeError(
        `Cannot encode safetensors as '${name}' has ${t.data.length} values of ${t.data.BYTES_PER_ELEMENT} bytes for shape [${t.shape}] of dtype ${t.dtype}`,
      );
    }
    const size = t.data.length * spec.bytes;
    header[name] = {
      dtype: t.dtype,
      shape: t.shape,
      data_offsets: [offset, offset + size],
    };
    offset += size;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (new TextEncoder().encode(json).length % 8)) % 8);
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let pos = 8 + head.length;
  for (const t of Object.values(tensors)) {
    out.set(
      new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
      pos,
    );
    pos += t.data.byteLength;
  }
  return out;
}

/**
 * Parses safetensors bytes, checking the header length, the JSON, every
 * entry's dtype, shape and byte range, and that the data section is
 * exactly covered (no gaps, overlaps, truncation or trailing bytes).
 *
 * @param bytes The file's bytes.
 * @param source Name used in error messages (a path).
 * @returns The tensors (copied out of `bytes`) and the metadata.
 * @throws {Error} If the file is truncated or malformed, naming `source` and the entry.
 */
export function decodeSafetensors(
  bytes: Uint8Array,
  source = "<bytes>",
): SafetensorsFile {
  const fail = (why: string): never => {
    throw new Error(`Cannot read safetensors '${source}': ${why}`);
  };
  if (bytes.length < 8) {
    fail(
      `the file is truncated (${bytes.length} bytes, no 8-byte header length)`,
    );
  }
  const n = Number(
    new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true),
  );
  if (n > MAX_HEADER) {
    fail(`the header length ${n} exceeds ${MAX_HEADER} bytes`);
  }
  if (8 + n > bytes.length) {
    fail(
      `the file is truncated (${bytes.length} bytes, the header alone needs ${
        8 + n
      })`,
    );
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(
      new TextDecoder("utf-8", { fatal: true }).decode(
        bytes.subarray(8, 8 + n),
      ),
    );
  } catch (e) {
    return fail(
      `the header is not valid JSON (${e instanceof Error ? e.message : e})`,
    );
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) {
    fail("the header is not a JSON object");
  }
  const dataStart = 8 + n;
  const dataLength = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const ranges: { name: string; begin: number; end: number }[] = [];
  const tensors: Record<string, SafetensorsEntry> = {};
  for (const [name, raw] of Object.entries(header)) {
    if (name === "__metadata__") {
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== "string") fail(`__metadata__ '${k}' is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    const e = raw as {
      dtype?: unknown;
      shape?: unknown;
      data_offsets?: unknown;
    };
    const spec = ARRAYS[e?.dtype as SafetensorsDtype];
    if (!spec) {
      fail(`'${name}' has unsupported dtype ${JSON.stringify(e?.dtype)}`);
    }
    const shape = e.shape;
    if (
      !Array.isArray(shape) ||
      !shape.every((d) => Number.isInteger(d) && d >= 0)
    ) {
      fail(`'${name}' has an invalid shape ${JSON.stringify(shape)}`);
    }
    const offsets = e.data_offsets;
    if (
      !Array.isArray(offsets) || offsets.length !== 2 ||
      !offsets.every((o) => Number.isInteger(o) && o >= 0) ||
      offsets[0] > offsets[1]
    ) {
      fail(`'${name}' has invalid data_offsets ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    const expected = numel(shape as number[]) * spec!.bytes;
    if (end - begin !== expected) {
      fail(
        `'${name}' has ${
          end - begin
        } bytes but shape [${shape}] of dtype ${e.dtype} needs ${expected}`,
      );
    }
    if (end > dataLength) {
      fail(
        `the file is truncated: '${name}' ends at data byte ${end} but only ${dataLength} are present`,
      );
    }
    ranges.push({ name, begin, end });
    const copy = bytes.slice(dataStart + begin, dataStart + end);
    tensors[name] = {
      dtype: e.dtype as SafetensorsDtype,
      shape: shape as number[],
      data: spec!.make(copy.buffer),
    };
  }
  ranges.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  for (const r of ranges) {
    if (r.begin !== covered) {
      fail(
        r.begin < covered
          ? `'${r.name}' overlaps another tensor at data byte ${r.begin}`
          : `data bytes ${covered}..${r.begin} before '${r.name}' belong to no tensor`,
      );
    }
    covered = r.end;
  }
  if (covered !== dataLength) {
    fail(
      `${dataLength - covered} bytes after the last tensor belong to no tensor`,
    );
  }
  return { tensors, metadata };
}
