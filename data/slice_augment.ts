/**
 * Whole-slice augmentation for training a segmentation network on full
 * slices (stage 1 of the pipeline): a random zoom, rotation, shift and
 * left-right mirror applied identically to the image (bilinear) and its
 * multi-class label map (nearest neighbour), then the CT/MRI intensity or
 * RGB colour transform of {@linkcode augmentPatch} on the image. Slices may
 * be rectangular; everything runs on typed arrays in one inverse-mapped pass.
 *
 * @module
 */
import type { Prng } from "../random/prng.ts";
import type {
  ColorOptions,
  IntensityOptions,
  ViewTransform,
} from "./augment.ts";
import { resolveAugmentOptions } from "./augment.ts";
import {
  colorJitter,
  drawJitter,
  type Plane,
  sampleBilinear,
} from "./_render.ts";
import { checkInterval, checkUpTo } from "./_ranges.ts";

/** Options of {@linkcode sampleSliceTransform}; every transform is off unless asked for. */
export interface SliceAugmentOptions {
  /** Probability of a left-right mirror (columns reversed). @default {0} */
  flipP?: number;
  /** Rotation angles are uniform in `[-degrees, degrees]`. @default {0} */
  degrees?: number;
  /** Zoom factor range (`> 1` enlarges the content). @default {[1, 1]} */
  scale?: [number, number];
  /** Largest shift along each axis, as a fraction of that side. @default {0} */
  translate?: number;
  /**
   * Elastic deformation: each of `elasticGrid` × `elasticGrid` control
   * points spread over the slice (corners included) moves by an offset
   * uniform in ±`elastic` × the slice's shorter side along each axis, and
   * every pixel moves by the bilinear blend of its four surrounding points'
   * offsets: a smooth warp, the idea of MONAI's `Rand2DElastic`. `0` is off.
   * @default {0}
   */
  elastic?: number;
  /** Control points per side of the elastic warp (at least 2). @default {4} */
  elasticGrid?: number;
  /** CT/MRI intensity transform (non-RGB images), as in {@linkcode augmentPatch}; `false` = off. @default {false} */
  intensity?: IntensityOptions | false;
  /** RGB colour jitter (3-channel images), as in {@linkcode augmentPatch}; `false` = off. @default {false} */
  color?: ColorOptions | false;
}

/**
 * One draw of {@linkcode sampleSliceTransform}. Output pixel `q` (relative
 * to the slice centre) reads the source at `R(angle) · m(q − shift) / scale`,
 * where `m` mirrors the column when `flip`: the content is zoomed by
 * `scale`, rotated, mirrored and shifted by `shift` pixels.
 */
export interface SliceTransform {
  /** Rotation in degrees; positive turns the content counter-clockwise as displayed (rows down). */
  angle: number;
  /** Zoom factor. */
  scale: number;
  /** Shift in pixels, `[columns, rows]`. */
  shift: [number, number];
  /** Left-right mirror. */
  flip: boolean;
  /**
   * Elastic warp: offsets in pixels (`dx` columns, `dy` rows) of a
   * `[rows, columns]` grid of control points spread over the output slice,
   * corners included; output pixel `q` reads as if it sat at `q` plus the
   * bilinear blend of the offsets around it. Absent when not applied.
   */
  elastic?: { grid: [number, number]; dx: Float32Array; dy: Float32Array };
  /** CT/MRI intensity `v' = scale · sign(v)|v|^gamma + shift`; absent when not applied. */
  intensity?: NonNullable<ViewTransform["intensity"]>;
  /** RGB colour jitter; absent when not applied. */
  color?: NonNullable<ViewTransform["color"]>;
}

/** Options of {@linkcode sampleSliceTransform}: the transforms and the slice they apply to. */
export interface SampleSliceTransformOptions extends SliceAugmentOptions {
  /** `[rows, columns]` of the slice, for the shift in pixels. */
  size: [number, number];
  /** Image channels (3 = RGB: colour jitter instead of intensity). */
  channels: number;
}

/**
 * Draws one slice transform from `prng`, in a fixed order (zoom, angle,
 * shift, flip, intensity or colour, then the elastic warp), so a seed fixes
 * every transform.
 * Draws are made only for the transforms that are on.
 *
 * @param prng The generator (advanced by the draws).
 * @param options Which transforms, their ranges, and the slice's size and
 * channels.
 * @returns The transform.
 * @throws {RangeError} If an option is out of range.
 *
 * @example Usage
 * ```ts
 * import { sampleSliceTransform } from "@agcl/agcl/data";
 * import { Prng } from "@agcl/agcl/random";
 * import assert from "node:assert/strict";
 *
 * const t = sampleSliceTransform(new Prng(1), {
 *   degrees: 10,
 *   scale: [0.9, 1.1],
 *   size: [64, 88],
 *   channels: 1,
 * });
 * assert.ok(Math.abs(t.angle) <= 10 && t.scale >= 0.9 && t.scale <= 1.1);
 * assert.equal(t.flip, false);
 * ```
 */
export function sampleSliceTransform(
  prng: Prng,
  options: SampleSliceTransformOptions,
): SliceTransform {
  const { size, channels } = options;
  const action = "augment slices";
  const flipP = checkUpTo(options.flipP ?? 0, "flipP", { action, hi: 1 });
  const degrees = checkUpTo(options.degrees ?? 0, "degrees", {
    action,
    hi: 180,
  });
  const [s0, s1] = checkInterval(options.scale ?? [1, 1], "scale", {
    action,
    lo: 0,
    openLow: true,
  });
  const translate = checkUpTo(options.translate ?? 0, "translate", {
    action,
    hi: 1,
  });
  const elastic = checkUpTo(options.elastic ?? 0, "elastic", {
    action,
    hi: 0.5,
  });
  const grid = options.elasticGrid ?? 4;
  if (!Number.isInteger(grid) || grid < 2) {
    throw new RangeError(
      `Cannot augment slices as 'elasticGrid' must be an integer >= 2: current value is ${grid}`,
    );
  }
  const resolved = resolveAugmentOptions({
    crop: false,
    rotation: false,
    flip: false,
    intensity: options.intensity ?? false,
    color: options.color ?? false,
  });
  const t: SliceTransform = {
    angle: 0,
    scale: 1,
    shift: [0, 0],
    flip: false,
  };
  if (s1 > s0) t.scale = Math.exp(prng.uniform(Math.log(s0), Math.log(s1)));
  else t.scale = s0;
  if (degrees > 0) t.angle = prng.uniform(-degrees, degrees);
  if (translate > 0) {
    t.shift = [
      prng.uniform(-translate, translate) * size[1],
      prng.uniform(-translate, translate) * size[0],
    ];
  }
  if (flipP > 0) t.flip = prng.next() < flipP;
  drawJitter(prng, resolved, channels, t);
  // Drawn last, so that turning it on leaves every other draw as it was.
  if (elastic > 0) {
    const m = elastic * Math.min(size[0], size[1]);
    const dx = new Float32Array(grid * grid);
    const dy = new Float32Array(grid * grid);
    for (let k = 0; k < grid * grid; k++) {
      dx[k] = prng.uniform(-m, m);
      dy[k] = prng.uniform(-m, m);
    }
    t.elastic = { grid: [grid, grid], dx, dy };
  }
  return t;
}

/**
 * The elastic warp's offset at output pixel centre (`x`, `y`) of an
 * `h` × `w` slice, written to `out` as `[dx, dy]`.
 */
function elasticOffset(
  e: NonNullable<SliceTransform["elastic"]>,
  x: number,
  y: number,
  h: number,
  w: number,
  out: Float64Array,
): void {
  const [gh, gw] = e.grid;
  const gy = Math.min(Math.max(y / h * (gh - 1), 0), gh - 1);
  const gx = Math.min(Math.max(x / w * (gw - 1), 0), gw - 1);
  const r0 = Math.min(Math.floor(gy), gh - 2);
  const c0 = Math.min(Math.floor(gx), gw - 2);
  const fy = gy - r0;
  const fx = gx - c0;
  const a = r0 * gw + c0;
  const b = a + gw;
  const w00 = (1 - fy) * (1 - fx);
  const w01 = (1 - fy) * fx;
  const w10 = fy * (1 - fx);
  const w11 = fy * fx;
  out[0] = w00 * e.dx[a]! + w01 * e.dx[a + 1]! + w10 * e.dx[b]! +
    w11 * e.dx[b + 1]!;
  out[1] = w00 * e.dy[a]! + w01 * e.dy[a + 1]! + w10 * e.dy[b]! +
    w11 * e.dy[b + 1]!;
}

/** A label map as {@linkcode augmentSlice} reads and writes it. */
export type SliceLabels = Uint8Array | Int16Array | Int32Array;

/** Options of {@linkcode augmentSlice}. */
export interface AugmentSliceOptions<L extends SliceLabels> {
  /** `[h, w]` of the slice. */
  size: [number, number];
  /** Image channels. */
  channels: number;
  /** The transform, e.g. from {@linkcode sampleSliceTransform}. */
  transform: SliceTransform;
  /** Destination arrays of the same sizes (new ones when omitted). */
  out?: { image?: Float32Array; labels?: L };
  /** Label outside the slice. @default {0} */
  fill?: number;
}

/**
 * Applies `transform` to one slice: output pixel centres are mapped back to the
 * source (see {@linkcode SliceTransform}); the image is sampled bilinearly
 * with 0 outside the slice, the labels by nearest neighbour with `fill`
 * outside. The intensity transform is applied to pixels that sample the
 * slice; pixels wholly outside stay 0.
 *
 * @param image `[h, w, channels]` source image.
 * @param labels `[h, w]` source labels, or `null`.
 * @param options The slice's size and channels, the transform, and where
 * to write.
 * @returns The augmented image and labels.
 * @throws {TypeError} If an array's length does not match `size` and `channels`.
 *
 * @example Mirroring a 1×3 slice
 * ```ts
 * import { augmentSlice } from "@agcl/agcl/data";
 * import assert from "node:assert/strict";
 *
 * const r = augmentSlice(new Float32Array([1, 2, 3]), new Uint8Array([1, 0, 2]), {
 *   size: [1, 3],
 *   channels: 1,
 *   transform: { angle: 0, scale: 1, shift: [0, 0], flip: true },
 * });
 * assert.deepEqual([...r.image], [3, 2, 1]);
 * assert.deepEqual([...r.labels!], [2, 0, 1]);
 * ```
 */
export function augmentSlice<L extends SliceLabels>(
  image: Float32Array,
  labels: L | null,
  options: AugmentSliceOptions<L>,
): { image: Float32Array; labels: L | null } {
  const { size, channels, transform: t, out = {}, fill = 0 } = options;
  const [h, w] = size;
  const ch = channels;
  const n = h * w;
  if (
    image.length !== n * ch || (labels !== null && labels.length !== n) ||
    (out.image && out.image.length !== n * ch) ||
    (out.labels && out.labels.length !== n)
  ) {
    throw new TypeError(
      `Cannot augment slice as its arrays must be image [${h}, ${w}, ${ch}] and labels [${h}, ${w}]: current lengths are ${image.length}, ${
        labels?.length ?? "-"
      }`,
    );
  }
  if (t.elastic) {
    const [gh, gw] = t.elastic.grid;
    if (
      !(gh >= 2 && gw >= 2) || t.elastic.dx.length !== gh * gw ||
      t.elastic.dy.length !== gh * gw
    ) {
      throw new TypeError(
        `Cannot augment slice as its elastic warp must hold a grid of at least 2 × 2 offsets in dx and dy: current grid [${t.elastic.grid}], lengths ${t.elastic.dx.length}, ${t.elastic.dy.length}`,
      );
    }
  }
  const img = out.image ?? new Float32Array(n * ch);
  const lab = labels === null
    ? null
    : out.labels ?? (new (labels.constructor as { new (n: number): L })(n));
  const rad = t.angle * Math.PI / 180;
  const cos = Math.cos(rad) / t.scale;
  const sin = Math.sin(rad) / t.scale;
  const cx = w / 2;
  const cy = h / 2;
  const fs = t.flip ? -1 : 1;
  const src: Plane = { image, base: 0, nx: w, ny: h, channels: ch };
  const inside = t.color && ch === 3 ? new Uint8Array(n) : null;
  const d = new Float64Array(2);
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < w; j++) {
      if (t.elastic) elasticOffset(t.elastic, j + 0.5, i + 0.5, h, w, d);
      const qy = i + 0.5 + d[1]! - cy - t.shift[1];
      const qx = fs * (j + 0.5 + d[0]! - cx - t.shift[0]);
      const X = cx + cos * qx - sin * qy;
      const Y = cy + sin * qx + cos * qy;
      const o = i * w + j;
      if (lab) {
        const mx = Math.floor(X);
        const my = Math.floor(Y);
        lab[o] = mx >= 0 && mx < w && my >= 0 && my < h
          ? labels![my * w + mx]!
          : fill;
      }
      const u = X - 0.5;
      const v = Y - 0.5;
      const ix = Math.floor(u);
      const iy = Math.floor(v);
      if (ix < -1 || ix >= w || iy < -1 || iy >= h) {
        for (let c = 0; c < ch; c++) img[o * ch + c] = 0;
        continue;
      }
      if (inside) inside[o] = 1;
      sampleBilinear(src, u, v, img, o * ch, t.intensity);
    }
  }
  if (inside && t.color) {
    colorJitter({ x: img, xOff: 0, xStride: ch }, n, t.color, inside);
  }
  return { image: img, labels: lab };
}

/** Seeded whole-slice augmentation of a batch, in place. */
export interface AugmentSliceBatchOptions extends SliceAugmentOptions {
  /** `[b, h, w, channels]` of the batch. */
  shape: [number, number, number, number];
  /** Generator to draw from (advanced). */
  prng: Prng;
  /** Label written outside the slice. @default {0} */
  fill?: number;
  /**
   * Channels of the image itself when `shape`'s channels stack several
   * slices of it (2.5D): the jitter is drawn for an image of this many
   * channels (3 = colour) and applied alike to every slice of the stack.
   * @default {shape[3]}
   */
  imageChannels?: number;
}

/**
 * Augments every slice of a `[b, h, w, channels]` batch and its `[b, h, w]`
 * labels in place, each slice with its own draw of
 * {@linkcode sampleSliceTransform}.
 *
 * @param x `[b, h, w, channels]` images.
 * @param y `[b, h, w]` labels.
 * @param options The batch shape, transforms, ranges and the generator.
 * @returns The transforms drawn, one per slice.
 * @throws {TypeError} If an array's length does not match `shape`.
 * @throws {RangeError} If an option is out of range.
 *
 * @example Usage
 * ```ts
 * import { augmentSliceBatch } from "@agcl/agcl/data";
 * import { Prng } from "@agcl/agcl/random";
 * import assert from "node:assert/strict";
 *
 * const x = new Float32Array(2 * 4 * 6).fill(1);
 * const y = new Int32Array(2 * 4 * 6).fill(3);
 * const ts = augmentSliceBatch(x, y, {
 *   shape: [2, 4, 6, 1],
 *   prng: new Prng(0),
 *   flipP: 1,
 * });
 * assert.equal(ts.length, 2);
 * assert.ok(ts.every((t) => t.flip) && y.every((v) => v === 3));
 * ```
 */
export function augmentSliceBatch<L extends SliceLabels>(
  x: Float32Array,
  y: L,
  options: AugmentSliceBatchOptions,
): SliceTransform[] {
  const { shape, prng, fill = 0, imageChannels, ...aug } = options;
  const [b, h, w, ch] = shape;
  if (x.length !== b * h * w * ch || y.length !== b * h * w) {
    throw new TypeError(
      `Cannot augment slice batch as x must hold [${shape}] and y [${b}, ${h}, ${w}] values: current lengths are ${x.length}, ${y.length}`,
    );
  }
  const ts: SliceTransform[] = [];
  const n = h * w;
  for (let k = 0; k < b; k++) {
    const t = sampleSliceTransform(prng, {
      ...aug,
      size: [h, w],
      channels: imageChannels ?? ch,
    });
    ts.push(t);
    const xs = x.slice(k * n * ch, (k + 1) * n * ch);
    const ys = y.slice(k * n, (k + 1) * n) as L;
    augmentSlice(xs, ys, {
      size: [h, w],
      channels: ch,
      transform: t,
      out: {
        image: x.subarray(k * n * ch, (k + 1) * n * ch),
        labels: y.subarray(k * n, (k + 1) * n) as L,
      },
      fill,
    });
  }
  return ts;
}
