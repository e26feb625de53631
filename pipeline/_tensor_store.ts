/**
 * Named float32 arrays in a safetensors file (little-endian, 8-byte header
 * length, JSON header, raw data), for training-state checkpoints.
 */

/** One stored array and its shape. */
export interface StoredTensor {
  /** Shape. */
  shape: number[];
  /** Values. */
  data: Float32Array;
}

/** Serialises named float32 arrays as safetensors bytes (names sorted). */
export function encodeSafetensors(
  tensors: Record<string, StoredTensor>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const n of names) {
    const t = tensors[n]!;
    const size = t.shape.reduce((a, b) => a * b, 1);
    if (size !== t.data.length) {
      throw new TypeError(
        `Cannot encode safetensors as '${n}' has shape [${t.shape}] but ${t.data.length} values`,
      );
    }
    header[n] = {
      dtype: "F32",
      shape: t.shape,
      data_offsets: [offset, offset + t.data.length * 4],
    };
    offset += t.data.length * 4;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const pad = (8 - (json.length % 8)) % 8;
  if (pad) {
    json = new TextEncoder().encode(JSON.stringify(header) + " ".repeat(pad));
  }
  const out = new Uint8Array(8 + json.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let pos = 8 + json.length;
  for (const n of names) {
    const d = tensors[n]!.data;
    for (let i = 0; i < d.length; i++) {
      view.setFloat32(pos + i * 4, d[i]!, true);
    }
    pos += d.length * 4;
  }
  return out;
}

/** Parses safetensors bytes written by {@linkcode encodeSafetensors}. */
export function decodeSafetensors(
  bytes: Uint8Array,
  source: string,
): Record<string, StoredTensor> {
  const bad = (why: string): never => {
    throw new Error(`Cannot read checkpoint ${source}: ${why}`);
  };
  if (bytes.length < 8) bad("file is truncated");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hlen = Number(view.getBigUint64(0, true));
  if (8 + hlen > bytes.length) bad("header is truncated");
  let header: Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + hlen)));
  } catch {
    return bad("header is not JSON");
  }
  const base = 8 + hlen;
  const out: Record<string, StoredTensor> = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    if (info.dtype !== "F32") {
      bad(`tensor '${name}' has dtype ${info.dtype}, expected F32`);
    }
    const [a, b] = info.data_offsets;
    if (base + b > bytes.length) bad(`tensor '${name}' data is truncated`);
    const n = (b - a) / 4;
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      data[i] = view.getFloat32(base + a + i * 4, true);
    }
    out[name] = { shape: info.shape, data };
  }
  return out;
}
