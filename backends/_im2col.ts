/**
 * Convolution geometry and the patch copies (im2col, col2im) that turn a
 * 2-D convolution over NHWC data into one matrix product. Plain loops over
 * typed arrays, so they work on any heap (the wasm backend's memory, a
 * scratch buffer).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** A 2-D convolution over NHWC input with an HWIO filter. */
export interface ConvGeometry {
  /** Batch, input height, width and channels. */
  n: number;
  h: number;
  w: number;
  c: number;
  /** Output height, width and channels. */
  oh: number;
  ow: number;
  co: number;
  /** Filter height and width. */
  kh: number;
  kw: number;
  /** Strides and dilations. */
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  /** Padding before the first row and column. */
  top: number;
  left: number;
}

/**
 * Conv2D geometry from a kernel's shapes and attributes (`strides`,
 * `dilations`, `pad`, `dimRoundingMode`), as tfjs computes it; `depthwise`
 * for the depthwise kernels.
 */
export function convInfoFromAttrs(
  inShape: readonly number[],
  filterShape: readonly number[],
  a: Record<string, unknown>,
  depthwise = false,
): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    [...inShape] as [number, number, number, number],
    [...filterShape] as [number, number, number, number],
    a.strides as [number, number] | number,
    (a.dilations ?? 1) as [number, number] | number,
    a.pad as "same",
    a.dimRoundingMode as "floor" | undefined,
    depthwise,
  );
}

/** Reads the geometry out of tfjs's `Conv2DInfo` (channels-last only). */
export function geometry(info: tf.backend_util.Conv2DInfo): ConvGeometry {
  return {
    n: info.batchSize,
    h: info.inHeight,
    w: info.inWidth,
    c: info.inChannels,
    oh: info.outHeight,
    ow: info.outWidth,
    co: info.outChannels,
    kh: info.filterHeight,
    kw: info.filterWidth,
    sh: info.strideHeight,
    sw: info.strideWidth,
    dh: info.dilationHeight,
    dw: info.dilationWidth,
    top: info.padInfo.top,
    left: info.padInfo.left,
  };
}

/** Whether the convolution is a plain per-pixel matrix product (1×1, stride 1, no padding). */
export function isPointwise(g: ConvGeometry): boolean {
  return g.kh === 1 && g.kw === 1 && g.sh === 1 && g.sw === 1 &&
    g.top === 0 && g.left === 0 && g.oh === g.h && g.ow === g.w;
}

function copy(
  src: Float32Array,
  s: number,
  dst: Float32Array,
  d: number,
  len: number,
): void {
  if (len >= 16) {
    dst.set(src.subarray(s, s + len), d);
  } else {
    for (let i = 0; i < len; i++) dst[d + i] = src[s + i]!;
  }
}

function addInto(
  src: Float32Array,
  s: number,
  dst: Float32Array,
  d: number,
  len: number,
): void {
  for (let i = 0; i < len; i++) dst[d + i] = dst[d + i]! + src[s + i]!;
}

/**
 * Writes rows `p0 … p1-1` of the patch matrix of `src` (NHWC at float
 * offset `sOff`) into `dst` at `dOff`, row-major `[p1 - p0, kh·kw·c]`:
 * row `p = (b·oh + y)·ow + x` holds the receptive field of output pixel
 * (b, y, x) in (ky, kx, c) order, zeros where it falls into padding.
 */
export function im2colRows(
  src: Float32Array,
  sOff: number,
  g: ConvGeometry,
  p0: number,
  p1: number,
  dst: Float32Array,
  dOff: number,
): void {
  const { h, w, c, oh, ow, kh, kw, sh, sw, dh, dw, top, left } = g;
  const ohw = oh * ow;
  const run = kw * c;
  let d = dOff;
  for (let p = p0; p < p1; p++) {
    const b = Math.floor(p / ohw);
    const r = p - b * ohw;
    const oy = Math.floor(r / ow);
    const ox = r - oy * ow;
    const iy0 = oy * sh - top;
    const ix0 = ox * sw - left;
    const base = sOff + b * h * w * c;
    for (let ky = 0; ky < kh; ky++) {
      const iy = iy0 + ky * dh;
      if (iy < 0 || iy >= h) {
        dst.fill(0, d, d + run);
        d += run;
        continue;
      }
      const rowBase = base + iy * w * c;
      if (dw === 1 && ix0 >= 0 && ix0 + kw <= w) {
        copy(src, rowBase + ix0 * c, dst, d, run);
        d += run;
        continue;
      }
      for (let kx = 0; kx < kw; kx++) {
        const ix = ix0 + kx * dw;
        if (ix < 0 || ix >= w) dst.fill(0, d, d + c);
        else copy(src, rowBase + ix * c, dst, d, c);
        d += c;
      }
    }
  }
}

/**
 * Adds the rows `p0 … p1-1` of a patch matrix (layout of
 * {@linkcode im2colRows}, in `cols` at `cOff`) back into the NHWC image
 * `dst` at `dOff`: the adjoint of {@linkcode im2colRows}.
 */
export function col2imRows(
  cols: Float32Array,
  cOff: number,
  g: ConvGeometry,
  p0: number,
  p1: number,
  dst: Float32Array,
  dOff: number,
): void {
  const { h, w, c, oh, ow, kh, kw, sh, sw, dh, dw, top, left } = g;
  const ohw = oh * ow;
  const run = kw * c;
  let s = cOff;
  for (let p = p0; p < p1; p++) {
    const b = Math.floor(p / ohw);
    const r = p - b * ohw;
    const oy = Math.floor(r / ow);
    const ox = r - oy * ow;
    const iy0 = oy * sh - top;
    const ix0 = ox * sw - left;
    const base = dOff + b * h * w * c;
    for (let ky = 0; ky < kh; ky++) {
      const iy = iy0 + ky * dh;
      if (iy < 0 || iy >= h) {
        s += run;
        continue;
      }
      const rowBase = base + iy * w * c;
      if (dw === 1 && ix0 >= 0 && ix0 + kw <= w) {
        addInto(cols, s, dst, rowBase + ix0 * c, run);
        s += run;
        continue;
      }
      for (let kx = 0; kx < kw; kx++) {
        const ix = ix0 + kx * dw;
        if (ix >= 0 && ix < w) addInto(cols, s, dst, rowBase + ix * c, c);
        s += c;
      }
    }
  }
}

/**
 * Writes columns `p0 … p1-1` of the transposed patch matrix into `dst` at
 * `dOff` with row stride `ld`: entry (k, p - p0) is the input value that
 * filter tap k = (ky·kw + kx)·c + ci sees for output pixel p (zero in
 * padding). The layout a product with no transposes needs.
 */
export function im2colCols(
  src: Float32Array,
  sOff: number,
  g: ConvGeometry,
  p0: number,
  p1: number,
  dst: Float32Array,
  dOff: number,
  ld: number,
): void {
  const { h, w, c, oh, ow, kh, kw, sh, sw, dh, dw, top, left } = g;
  const ohw = oh * ow;
  // Walk output rows (b, oy) that intersect [p0, p1).
  let p = p0;
  while (p < p1) {
    const b = Math.floor(p / ohw);
    const r = p - b * ohw;
    const oy = Math.floor(r / ow);
    const ox0 = r - oy * ow;
    const ox1 = Math.min(ow, ox0 + (p1 - p));
    const col0 = dOff + (p - p0);
    const base = sOff + b * h * w * c;
    for (let ky = 0; ky < kh; ky++) {
      const iy = oy * sh - top + ky * dh;
      const inRow = iy >= 0 && iy < h;
      const rowBase = base + iy * w * c;
      for (let kx = 0; kx < kw; kx++) {
        const kBase = (ky * kw + kx) * c;
        for (let ci = 0; ci < c; ci++) {
          const d = col0 + (kBase + ci) * ld - ox0;
          if (!inRow) {
            dst.fill(0, d + ox0, d + ox1);
            continue;
          }
          for (let ox = ox0; ox < ox1; ox++) {
            const ix = ox * sw - left + kx * dw;
            dst[d + ox] = ix >= 0 && ix < w ? src[rowBase + ix * c + ci]! : 0;
          }
        }
      }
    }
    p += ox1 - ox0;
  }
}

/** Activations the fused kernels apply after the bias. */
export type Activation =
  | "linear"
  | "relu"
  | "relu6"
  | "elu"
  | "leakyrelu"
  | "sigmoid";

/** Whether `name` is an {@linkcode Activation} these kernels implement. */
export function isActivation(name: unknown): name is Activation {
  return name === undefined || name === "linear" || name === "relu" ||
    name === "relu6" || name === "elu" || name === "leakyrelu" ||
    name === "sigmoid";
}

/**
 * In place over `rows × cols` floats at `off`: adds the per-column bias (at
 * `biasOff`, or none when negative) and applies the activation.
 */
export function biasActivation(
  h: Float32Array,
  off: number,
  rows: number,
  cols: number,
  biasOff: number,
  activation: Activation | undefined,
  alpha = 0.2,
): void {
  const end = off + rows * cols;
  if (biasOff >= 0) {
    for (let i = off; i < end; i += cols) {
      for (let j = 0; j < cols; j++) h[i + j] = h[i + j]! + h[biasOff + j]!;
    }
  }
  switch (activation ?? "linear") {
    case "linear":
      return;
    case "relu":
      for (let i = off; i < end; i++) if (h[i]! < 0) h[i] = 0;
      return;
    case "relu6":
      for (let i = off; i < end; i++) h[i] = Math.min(6, Math.max(0, h[i]!));
      return;
    case "elu":
      for (let i = off; i < end; i++) {
        const v = h[i]!;
        if (v < 0) h[i] = Math.expm1(v);
      }
      return;
    case "leakyrelu":
      for (let i = off; i < end; i++) {
        const v = h[i]!;
        if (v < 0) h[i] = alpha * v;
      }
      return;
    case "sigmoid":
      for (let i = off; i < end; i++) h[i] = 1 / (1 + Math.exp(-h[i]!));
      return;
  }
}
