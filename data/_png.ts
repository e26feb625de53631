/**
 * PNG decoding shared by the VOC mask reader and the image reader
 * (internal): fast-png with an error naming the file, and unpacking of
 * packed low-bit-depth samples.
 */
import { decode as decodePngLib } from "fast-png";

/** Decodes a PNG with fast-png; a failure names `source`. */
export function decodePngClear(
  bytes: Uint8Array,
  source: string,
): ReturnType<typeof decodePngLib> {
  try {
    return decodePngLib(bytes);
  } catch (e) {
    throw new Error(
      `Cannot decode ${source} as a PNG: ${e instanceof Error ? e.message : e}`,
    );
  }
}

/** Unpacks 1-, 2- or 4-bit samples (rows padded to whole bytes) to one byte each. */
export function unpackSamples(
  src: ArrayLike<number>,
  width: number,
  height: number,
  depth: number,
): Uint8Array {
  const out = new Uint8Array(width * height);
  if (depth === 8) {
    for (let i = 0; i < out.length; i++) out[i] = src[i]!;
    return out;
  }
  const perByte = 8 / depth, mask = (1 << depth) - 1;
  const rowBytes = Math.ceil(width / perByte);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const byte = src[y * rowBytes + Math.floor(x / perByte)]!;
      out[y * width + x] = (byte >> (8 - depth * (1 + (x % perByte)))) & mask;
    }
  }
  return out;
}
