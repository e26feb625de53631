/**
 * Natural images in the PASCAL VOC 2012 segmentation layout:
 * `JPEGImages/<id>.jpg`, palette PNG masks in `SegmentationClass/<id>.png`,
 * and `ImageSets/Segmentation/{train,val}.txt`. Label 255 means ignore
 * (object borders). Decoding goes through jpeg-js and fast-png.
 *
 * @module
 */
import { decode as decodeJpegLib } from "jpeg-js";
import { decodePngClear, unpackSamples } from "./_png.ts";
import { readFileClear } from "./_io.ts";

/** The 21 VOC classes; the index is the label value. */
export const VOC_CLASSES: readonly string[] = Object.freeze([
  "background",
  "aeroplane",
  "bicycle",
  "bird",
  "boat",
  "bottle",
  "bus",
  "car",
  "cat",
  "chair",
  "cow",
  "diningtable",
  "dog",
  "horse",
  "motorbike",
  "person",
  "pottedplant",
  "sheep",
  "sofa",
  "train",
  "tvmonitor",
]);

/** Label value that marks pixels to ignore (object borders in VOC). */
export const VOC_IGNORE = 255;

/**
 * The VOC colour map: the RGB colour of palette index `i` (the standard
 * bit-interleaved PASCAL palette; 255 is cream `[224, 224, 192]`).
 *
 * @param i Palette index in `[0, 255]`.
 * @returns `[r, g, b]`.
 */
export function vocColor(i: number): [number, number, number] {
  let r = 0, g = 0, b = 0, c = i;
  for (let j = 0; j < 8; j++) {
    r |= ((c >> 0) & 1) << (7 - j);
    g |= ((c >> 1) & 1) << (7 - j);
    b |= ((c >> 2) & 1) << (7 - j);
    c >>= 3;
  }
  return [r, g, b];
}

/** An RGB image, row-major. */
export interface RgbImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** Pixels `[height, width, 3]`, interleaved RGB, top row first. */
  data: Uint8Array;
}

/** A label image, row-major. */
export interface LabelImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** Class ids `[height, width]`, 255 = ignore. */
  data: Uint8Array;
}

/**
 * Decodes a baseline or progressive JPEG to RGB with jpeg-js.
 *
 * @param bytes The file's bytes.
 * @param source Name for error messages.
 * @returns The RGB image.
 * @throws {Error} Naming `source` when the bytes are not a decodable JPEG.
 */
export function decodeJpeg(bytes: Uint8Array, source = "JPEG"): RgbImage {
  let img: { width: number; height: number; data: Uint8Array };
  try {
    img = decodeJpegLib(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      maxMemoryUsageInMB: 1024,
    });
  } catch (e) {
    throw new Error(
      `Cannot decode ${source} as a JPEG: ${
        e instanceof Error ? e.message : e
      }`,
    );
  }
  const n = img.width * img.height;
  if (img.data.length === n * 3) return img;
  if (img.data.length === n * 4) {
    const rgb = new Uint8Array(n * 3);
    for (let i = 0; i < n; i++) {
      rgb[3 * i] = img.data[4 * i]!;
      rgb[3 * i + 1] = img.data[4 * i + 1]!;
      rgb[3 * i + 2] = img.data[4 * i + 2]!;
    }
    return { width: img.width, height: img.height, data: rgb };
  }
  throw new Error(
    `Cannot decode ${source} as a JPEG: ${img.data.length} bytes for ${img.width}×${img.height}`,
  );
}

/**
 * Decodes a VOC mask PNG to class ids with fast-png: palette PNGs give
 * their indices directly (VOC's convention), 8-bit grey PNGs their values
 * (the "SegmentationClassAug" convention), RGB PNGs are mapped back
 * through the VOC colour map.
 *
 * @param bytes The file's bytes.
 * @param source Name for error messages.
 * @returns The label image.
 * @throws {Error} Naming `source` when the PNG cannot be decoded or an
 * RGB colour is not a VOC colour.
 */
export function decodeLabelPng(
  bytes: Uint8Array,
  source = "PNG",
): LabelImage {
  const png = decodePngClear(bytes, source);
  const { width, height, channels, depth } = png;
  const n = width * height;
  const out = new Uint8Array(n);
  const src = png.data;
  if (channels === 1 && (png.palette || depth === 8)) {
    return { width, height, data: unpackSamples(src, width, height, depth) };
  }
  if ((channels === 3 || channels === 4) && depth === 8) {
    const lut = new Map<number, number>();
    for (let i = 0; i < 256; i++) {
      const [r, g, b] = vocColor(i);
      if (!lut.has((r << 16) | (g << 8) | b)) {
        lut.set((r << 16) | (g << 8) | b, i);
      }
    }
    for (let i = 0; i < n; i++) {
      const key = (src[channels * i]! << 16) | (src[channels * i + 1]! << 8) |
        src[channels * i + 2]!;
      const id = lut.get(key);
      if (id === undefined) {
        throw new Error(
          `Cannot decode ${source} as a VOC mask: pixel ${i} has colour [${
            src[channels * i]
          }, ${src[channels * i + 1]}, ${
            src[channels * i + 2]
          }], not in the VOC colour map`,
        );
      }
      out[i] = id;
    }
    return { width, height, data: out };
  }
  throw new Error(
    `Cannot decode ${source} as a VOC mask: expected a palette, 8-bit grey or RGB PNG, found ${channels} channels at ${depth} bits`,
  );
}

/** A VOC-layout dataset folder. */
export interface VocDataset {
  /** The root folder, as given to {@linkcode loadVoc}. */
  root: string;
  /** Class names; the index is the label value. */
  classes: readonly string[];
  /** Image ids per split file found in `ImageSets/Segmentation/` (`train`, `val`, …). */
  splits: Record<string, string[]>;
}

/** One VOC sample. */
export interface VocSample {
  /** Image id (file name without extension). */
  id: string;
  /** The RGB image. */
  image: RgbImage;
  /** Class ids, 255 = ignore; absent when the split has no masks. */
  label?: LabelImage;
}

/**
 * Reads the split lists of a VOC-layout folder
 * (`ImageSets/Segmentation/*.txt`, one id per line). `train` and `val` are
 * required.
 *
 * @example Usage
 * ```ts ignore
 * import { loadVoc, readVocSample } from "@agcl/agcl/data";
 * const voc = await loadVoc("VOCdevkit/VOC2012");
 * const s = await readVocSample(voc, voc.splits.train![0]!);
 * console.log(s.image.width, s.label?.data.length);
 * ```
 *
 * @param root The folder holding `JPEGImages/`, `SegmentationClass/` and `ImageSets/`.
 * @param options `classes` to override the 21 VOC names.
 * @returns The dataset's splits.
 * @throws {Error} If `train.txt` or `val.txt` is missing or lists no ids.
 */
export async function loadVoc(
  root: string,
  options: { classes?: readonly string[] } = {},
): Promise<VocDataset> {
  const dir = `${root}/ImageSets/Segmentation`;
  const splits: Record<string, string[]> = {};
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch {
    throw new Error(
      `Cannot load VOC dataset '${root}' as '${dir}' does not exist`,
    );
  }
  for (const e of entries) {
    if (!e.isFile || !e.name.endsWith(".txt")) continue;
    const text = await Deno.readTextFile(`${dir}/${e.name}`);
    splits[e.name.slice(0, -4)] = text.split(/\r?\n/).map((l) => l.trim())
      .filter((l) => l !== "").map((l) => l.split(/\s+/)[0]!);
  }
  for (const required of ["train", "val"]) {
    if (!splits[required]?.length) {
      throw new Error(
        `Cannot load VOC dataset '${root}' as '${dir}/${required}.txt' is missing or empty`,
      );
    }
  }
  return { root, classes: options.classes ?? VOC_CLASSES, splits };
}

/**
 * Reads one VOC sample: `JPEGImages/<id>.jpg` and, when present,
 * `SegmentationClass/<id>.png`; checks that they have the same size and
 * that label values are class ids or 255.
 *
 * @param voc A dataset from {@linkcode loadVoc}.
 * @param id The image id.
 * @returns The image and its label image.
 * @throws {Error} Naming the file when it is missing, undecodable, of a
 * different size than its image, or has values that are not classes.
 */
export async function readVocSample(
  voc: VocDataset,
  id: string,
): Promise<VocSample> {
  const jpgPath = `${voc.root}/JPEGImages/${id}.jpg`;
  const image = decodeJpeg(
    await readFileClear(jpgPath, "VOC image"),
    `VOC image '${jpgPath}'`,
  );
  const pngPath = `${voc.root}/SegmentationClass/${id}.png`;
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(pngPath);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { id, image };
    throw new Error(
      `Cannot read VOC mask '${pngPath}': ${
        e instanceof Error ? e.message : e
      }`,
    );
  }
  const label = decodeLabelPng(bytes, `VOC mask '${pngPath}'`);
  if (label.width !== image.width || label.height !== image.height) {
    throw new Error(
      `VOC mask '${pngPath}' is ${label.width}×${label.height} but its image is ${image.width}×${image.height}`,
    );
  }
  const nClasses = voc.classes.length;
  for (let i = 0; i < label.data.length; i++) {
    const v = label.data[i]!;
    if (v >= nClasses && v !== VOC_IGNORE) {
      throw new Error(
        `VOC mask '${pngPath}' has label ${v} at pixel ${i}: expected 0..${
          nClasses - 1
        } or ${VOC_IGNORE} (ignore)`,
      );
    }
  }
  return { id, image, label };
}
