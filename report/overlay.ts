/**
 * Overlays of image, prediction and truth for one slice (Fig. 7), written as
 * PNG with fast-png.
 *
 * @module
 */
import { encode } from "fast-png";

/** One 2-D slice, row-major `[height, width]`. */
export interface OverlaySlice {
  /** Intensities (any range; windowed to its 1st–99th percentile). */
  image: ArrayLike<number>;
  /** Predicted labels. */
  pred: ArrayLike<number>;
  /** True labels. */
  truth: ArrayLike<number>;
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
}

/** Options for {@linkcode overlayPng}. */
export interface OverlayOptions {
  /** Integer upscaling factor (nearest neighbour). @default {auto: ≥ 256 px tall} */
  scale?: number;
  /** Opacity of the label colours. @default {0.6} */
  alpha?: number;
}

/** Label colours (Tableau 10 with gold for its grey, then a few more), by label id − 1. */
const PALETTE: [number, number, number][] = [
  [31, 119, 180],
  [255, 127, 14],
  [44, 160, 44],
  [214, 39, 40],
  [148, 103, 189],
  [140, 86, 75],
  [227, 119, 194],
  [188, 189, 34],
  [23, 190, 207],
  [255, 215, 0],
  [174, 199, 232],
  [255, 187, 120],
  [152, 223, 138],
  [255, 152, 150],
];

/**
 * Colour of a label id (0 = none) in overlays.
 *
 * @param label Label id ≥ 1.
 * @returns `[r, g, b]`, 0–255.
 *
 * @example
 * ```ts
 * import { labelColor } from "@agcl/agcl/report";
 * console.log(labelColor(1)); // [31, 119, 180]
 * ```
 */
export function labelColor(label: number): [number, number, number] {
  return PALETTE[(Math.max(1, Math.round(label)) - 1) % PALETTE.length]!;
}

/**
 * Draws three panels side by side — image, image + prediction, image +
 * truth — with label colours from {@linkcode labelColor}, and returns the PNG
 * bytes.
 *
 * @param slice The slice's image, prediction and truth.
 * @param options Upscaling and opacity.
 * @returns PNG file bytes (RGB).
 * @throws {TypeError} When an array's length is not `width · height`.
 *
 * @example
 * ```ts
 * import { overlayPng } from "@agcl/agcl/report";
 * const png = overlayPng({ image: [0, 1, 2, 3], pred: [0, 1, 1, 0], truth: [0, 1, 0, 0], width: 2, height: 2 });
 * console.log(png[1], png[2], png[3]); // 80 78 71
 * ```
 */
export function overlayPng(
  slice: OverlaySlice,
  options: OverlayOptions = {},
): Uint8Array {
  const { image, pred, truth, width, height } = slice;
  const n = width * height;
  for (
    const [name, a] of [["image", image], ["pred", pred], [
      "truth",
      truth,
    ]] as const
  ) {
    if (a.length !== n) {
      throw new TypeError(
        `Cannot compute overlayPng as '${name}' has ${a.length} pixels but width × height is ${n}`,
      );
    }
  }
  const { alpha = 0.6 } = options;
  const scale = options.scale ?? Math.max(1, Math.ceil(256 / height));
  // Window to the 1st–99th percentile so outliers do not flatten the image.
  const sorted = Float64Array.from(image).sort();
  const lo = sorted[Math.floor(0.01 * (n - 1))]!;
  const hi = sorted[Math.ceil(0.99 * (n - 1))]!;
  const span = hi > lo ? hi - lo : 1;
  const gap = 4;
  const pw = width * scale, ph = height * scale;
  const W = 3 * pw + 2 * gap;
  const out = new Uint8Array(W * ph * 3).fill(255);
  for (let y = 0; y < ph; y++) {
    const sy = Math.floor(y / scale);
    for (let x = 0; x < pw; x++) {
      const i = sy * width + Math.floor(x / scale);
      const g = Math.round(
        255 * Math.min(1, Math.max(0, (image[i]! - lo) / span)),
      );
      for (let panel = 0; panel < 3; panel++) {
        const o = (y * W + panel * (pw + gap) + x) * 3;
        const label = panel === 1 ? pred[i]! : panel === 2 ? truth[i]! : 0;
        if (label > 0 && label !== 255) {
          const c = labelColor(label);
          out[o] = Math.round((1 - alpha) * g + alpha * c[0]);
          out[o + 1] = Math.round((1 - alpha) * g + alpha * c[1]);
          out[o + 2] = Math.round((1 - alpha) * g + alpha * c[2]);
        } else {
          out[o] = out[o + 1] = out[o + 2] = g;
        }
      }
    }
  }
  return encode({ width: W, height: ph, data: out, channels: 3, depth: 8 });
}
