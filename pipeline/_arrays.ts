/**
 * Typed arrays the pipeline builds in several places: label maps of the
 * smallest type that holds their labels, and 8-bit pixels mapped to [0, 1].
 */
import type { LabelMap } from "../data/mod.ts";

/** The largest value of `data` (0 for an empty or all-negative array). */
export function maxValue(data: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < data.length; i++) if (data[i]! > max) max = data[i]!;
  return max;
}

/** The NIfTI datatype of a label map with labels up to `maxLabel`: 8-bit up to 255, else 16-bit. */
export function labelDtype(maxLabel: number): "uint8" | "int16" {
  return maxLabel <= 255 ? "uint8" : "int16";
}

/** A zeroed label map of `length` voxels, of the smallest type that holds `maxLabel`. */
export function newLabelMap(length: number, maxLabel: number): LabelMap {
  return labelDtype(maxLabel) === "uint8"
    ? new Uint8Array(length)
    : new Int16Array(length);
}

/**
 * A copy of `data` as a label map of the smallest type that holds
 * `maxLabel` (by default the largest value of `data`).
 */
export function toLabelMap(
  data: ArrayLike<number>,
  maxLabel: number = maxValue(data),
): LabelMap {
  return labelDtype(maxLabel) === "uint8"
    ? Uint8Array.from(data)
    : Int16Array.from(data);
}

/** Options for {@linkcode scale8bit}. */
export interface Scale8bitOptions {
  /** Where to write; a new array of `data.length` values when absent. */
  into?: Float32Array;
  /** Index of the first written value. @default {0} */
  offset?: number;
  /** Distance between written values (the channel count when interleaving). @default {1} */
  stride?: number;
  /** What `data` is, for the error message. @default {"the image"} */
  source?: string;
}

/**
 * Maps 8-bit values to [0, 1] as `v / 255`, the mapping of the 8-bit images
 * (PASCAL VOC JPEGs) runs are trained on.
 *
 * @throws {RangeError} When a value is not an integer in 0..255.
 */
export function scale8bit(
  data: ArrayLike<number>,
  options: Scale8bitOptions = {},
): Float32Array {
  const {
    into = new Float32Array(data.length),
    offset = 0,
    stride = 1,
    source = "the image",
  } = options;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (!(Number.isInteger(v) && v >= 0 && v <= 255)) {
      throw new RangeError(
        `Cannot predict ${source}: voxel ${i} is ${v}, expected 8-bit values 0..255 (the run maps them to [0, 1] as its training images)`,
      );
    }
    into[i * stride + offset] = v / 255;
  }
  return into;
}
