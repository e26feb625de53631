/**
 * 8-bit JPEG and PNG images in, indexed label PNGs out: what `predict`
 * reads and writes for runs trained on natural images (PASCAL VOC). JPEGs go
 * through the same decoder as {@linkcode readVocSample} (jpeg-js, always
 * RGB), PNGs through fast-png.
 *
 * @module
 */
import { encode as encodePngLib } from "fast-png";
import { decodePngClear, unpackSamples } from "./_png.ts";
import { decodeJpeg, type LabelImage, vocColor } from "./voc.ts";
import { readFileClear, writeFileAtomic } from "./_io.ts";

/** An 8-bit image, row-major. */
export interface PixelImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** Colour channels: 1 (grey) or 3 (RGB); alpha is dropped. */
  channels: 1 | 3;
  /** Pixels `[height, width, channels]`, interleaved, top row first. */
  data: Uint8Array;
}

/** File name extensions {@linkcode readImage} accepts, lower case. */
export const IMAGE_EXTENSIONS: readonly string[] = Object.freeze([
  ".jpg",
  ".jpeg",
  ".png",
]);

/** Whether `path` ends in `.jpg`, `.jpeg` or `.png` (any case). */
export function isImagePath(path: string): boolean {
  const p = path.toLowerCase();
  return IMAGE_EXTENSIONS.some((e) => p.endsWith(e));
}

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function isPng(bytes: Uint8Array): boolean {
  return PNG_MAGIC.every((b, i) => bytes[i] === b);
}

function isJpeg(bytes: Uint8Array): boolean {
  return bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 &&
    bytes[2] === 0xff;
}

function decodePng(bytes: Uint8Array, source: string): PixelImage {
  const png = decodePngClear(bytes, source);
  const { width, height, channels, depth, palette } = png;
  if (depth === 16) {
    throw new Error(
      `Cannot decode ${source}: expected an 8-bit PNG (values 0..255, as the JPEGs runs are trained on), found 16 bits per sample`,
    );
  }
  const n = width * height;
  if (palette) {
    // Indexed colour: expand through the palette (its alpha is dropped).
    const idx = unpackSamples(png.data, width, height, depth);
    const data = new Uint8Array(n * 3);
    for (let i = 0; i < n; i++) {
      const c = palette[idx[i]!];
      if (!c) {
        throw new Error(
          `Cannot decode ${source} as a PNG: pixel ${i} has palette index ${
            idx[i]
          } but the palette has ${palette.length} colours`,
        );
      }
      data[3 * i] = c[0]!;
      data[3 * i + 1] = c[1]!;
      data[3 * i + 2] = c[2]!;
    }
    return { width, height, channels: 3, data };
  }
  if (channels === 1 || channels === 2) {
    // Grey (+ alpha); 1-, 2- and 4-bit grey is scaled to 0..255.
    const grey = channels === 1
      ? unpackSamples(png.data, width, height, depth)
      : Uint8Array.from({ length: n }, (_, i) => png.data[2 * i]!);
    const scale = 255 / ((1 << depth) - 1);
    if (scale !== 1) {
      for (let i = 0; i < n; i++) grey[i] = Math.round(grey[i]! * scale);
    }
    return { width, height, channels: 1, data: grey };
  }
  // RGB (+ alpha).
  const data = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    data[3 * i] = png.data[channels * i]!;
    data[3 * i + 1] = png.data[channels * i + 1]!;
    data[3 * i + 2] = png.data[channels * i + 2]!;
  }
  return { width, height, channels: 3, data };
}

/**
 * Decodes a JPEG or an 8-bit PNG (told apart by their signatures). JPEGs
 * decode to RGB as in {@linkcode decodeJpeg} (grey JPEGs too); PNGs keep
 * grey as 1 channel, expand palettes to RGB and drop alpha.
 *
 * @example Usage
 * ```ts
 * import { decodeImage } from "@agcl/agcl/data";
 * import { encode } from "fast-png";
 * import assert from "node:assert/strict";
 *
 * const png = encode({ width: 2, height: 1, data: new Uint8Array([0, 255]), channels: 1, depth: 8 });
 * const img = decodeImage(png, "two pixels");
 * assert.deepEqual([img.width, img.height, img.channels], [2, 1, 1]);
 * assert.deepEqual(Array.from(img.data), [0, 255]);
 * ```
 *
 * @param bytes The file's bytes.
 * @param source Name for error messages.
 * @returns The image.
 * @throws {Error} Naming `source` when the bytes are neither JPEG nor PNG,
 * cannot be decoded, or are a 16-bit PNG.
 */
export function decodeImage(bytes: Uint8Array, source = "image"): PixelImage {
  if (isPng(bytes)) return decodePng(bytes, source);
  if (isJpeg(bytes)) {
    const rgb = decodeJpeg(bytes, source);
    return { ...rgb, channels: 3 };
  }
  throw new Error(
    `Cannot decode ${source}: expected a JPEG or PNG file, found neither signature (first bytes ${
      Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, "0"))
        .join(" ")
    })`,
  );
}

/**
 * Reads a `.jpg`, `.jpeg` or `.png` file with {@linkcode decodeImage}.
 *
 * @param path The file.
 * @returns The image.
 * @throws {TypeError} If `path` does not end in `.jpg`, `.jpeg` or `.png`.
 * @throws {Error} Naming the file when it is missing or cannot be decoded.
 */
export async function readImage(path: string): Promise<PixelImage> {
  if (!isImagePath(path)) {
    throw new TypeError(
      `Cannot read image '${path}' as its extension is not one of ${
        IMAGE_EXTENSIONS.join(", ")
      }`,
    );
  }
  return decodeImage(await readFileClear(path, "image"), `image '${path}'`);
}

/** Options for {@linkcode encodeLabelPng}. */
export interface EncodeLabelPngOptions {
  /**
   * `"voc"`: an indexed PNG whose palette is the PASCAL VOC colour map
   * (pixel values are still the class ids); `"grey"`: 8-bit greyscale ids.
   * @default {"voc"}
   */
  palette?: "voc" | "grey";
}

/**
 * Encodes a label image as an 8-bit PNG: one class id per pixel, by default
 * indexed with the PASCAL VOC palette (so viewers show the VOC colours and
 * {@linkcode decodeLabelPng} reads the ids back).
 *
 * @example Usage
 * ```ts
 * import { decodeLabelPng, encodeLabelPng } from "@agcl/agcl/data";
 * import assert from "node:assert/strict";
 *
 * const png = encodeLabelPng({ width: 3, height: 1, data: new Uint8Array([0, 8, 255]) });
 * assert.deepEqual(Array.from(decodeLabelPng(png).data), [0, 8, 255]);
 * ```
 *
 * @param label Class ids `[height, width]`.
 * @param options The palette.
 * @returns The PNG file's bytes.
 * @throws {TypeError} If `label.data` does not hold `width × height` bytes.
 */
export function encodeLabelPng(
  label: LabelImage,
  options: EncodeLabelPngOptions = {},
): Uint8Array {
  const { palette = "voc" } = options;
  const { width, height, data } = label;
  if (!(data instanceof Uint8Array) || data.length !== width * height) {
    throw new TypeError(
      `Cannot encode a label PNG as 'label.data' must be a Uint8Array of ${width}×${height} = ${
        width * height
      } ids: current length is ${data?.length}`,
    );
  }
  if (palette === "grey") {
    return encodePngLib({ width, height, data, channels: 1, depth: 8 });
  }
  return encodePngLib({
    width,
    height,
    data,
    channels: 1,
    depth: 8,
    palette: Array.from({ length: 256 }, (_, i) => vocColor(i)),
  });
}

/**
 * Writes {@linkcode encodeLabelPng}'s PNG atomically (a temporary file
 * renamed over `path`), so a reader never sees half a file.
 *
 * @param path The `.png` file.
 * @param label Class ids `[height, width]`.
 * @param options The palette.
 * @throws {TypeError} If `path` does not end in `.png` or `label` is malformed.
 * @throws {Error} If the file cannot be written.
 */
export async function writeLabelPng(
  path: string,
  label: LabelImage,
  options: EncodeLabelPngOptions = {},
): Promise<void> {
  if (!path.toLowerCase().endsWith(".png")) {
    throw new TypeError(
      `Cannot write label PNG '${path}' as its extension is not .png`,
    );
  }
  await writeFileAtomic(path, [encodeLabelPng(label, options)]);
}
