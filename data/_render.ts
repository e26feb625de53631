/**
 * The single-pass renderer behind pairwise augmentation (internal): one
 * inverse-mapped affine pass per view that combines cutting the patch out of
 * its slice, the resized crop, the rotation and the flip, then the intensity
 * or colour transform.
 */
import type { LabelMap } from "./patch_sampler.ts";
import type { Prng } from "../random/prng.ts";
import type { ResolvedAugmentOptions, ViewTransform } from "./augment.ts";

/** Where a view's pixels come from: one slice of a case. */
export interface RenderSource {
  image: Float32Array;
  attention: LabelMap;
  label: LabelMap | undefined;
  nx: number;
  ny: number;
  channels: number;
  /** Voxel index of the slice's pixel (0, 0). */
  plane: number;
  /** Attention/label value that counts as foreground. */
  target: number;
  /** Slice row and column of the patch's top-left pixel. */
  y0: number;
  x0: number;
}

/** Where a view's pixels go. */
export interface RenderDest {
  /** Image values, `xStride` floats per pixel starting at `xOff`. */
  x: Float32Array;
  xOff: number;
  xStride: number;
  /** Write the binary attention as the float channel right after the image channels of `x`. */
  attentionInX: boolean;
  /** Binary attention as bytes (or `null`). */
  att: Uint8Array | null;
  attOff: number;
  /** Binary label as bytes. */
  y: Uint8Array;
  yOff: number;
}

const GRAY_R = 0.2989;
const GRAY_G = 0.587;
const GRAY_B = 0.114;

function clamp01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

/**
 * Draws the pixel-value part of a view from `prng` into `t`: colour jitter
 * for 3-channel images, the intensity transform otherwise, each only when
 * on and with its probability. Shared by patch views and whole slices so
 * both draw in the same order from the same ranges.
 */
export function drawJitter(
  prng: Prng,
  options: Pick<ResolvedAugmentOptions, "color" | "intensity">,
  channels: number,
  t: Pick<ViewTransform, "color" | "intensity">,
): void {
  if (channels === 3) {
    const c = options.color;
    if (c && prng.next() < c.p) {
      t.color = {
        brightness: prng.uniform(
          Math.max(0, 1 - c.brightness),
          1 + c.brightness,
        ),
        contrast: prng.uniform(Math.max(0, 1 - c.contrast), 1 + c.contrast),
        saturation: prng.uniform(
          Math.max(0, 1 - c.saturation),
          1 + c.saturation,
        ),
        hue: prng.uniform(-c.hue, c.hue),
      };
    }
  } else {
    const it = options.intensity;
    if (it && prng.next() < it.p) {
      t.intensity = {
        scale: prng.uniform(it.scale[0], it.scale[1]),
        shift: prng.uniform(it.shift[0], it.shift[1]),
        gamma: prng.uniform(it.gamma[0], it.gamma[1]),
      };
    }
  }
}

/** One `[ny, nx, channels]` plane of an image, channels last. */
export interface Plane {
  /** The values. */
  image: Float32Array;
  /** Index of pixel (0, 0)'s first channel. */
  base: number;
  /** Columns. */
  nx: number;
  /** Rows. */
  ny: number;
  /** Channels per pixel. */
  channels: number;
}

/** The CT/MRI intensity transform `v' = scale · sign(v)|v|^gamma + shift`. */
export function intensityTransform(
  v: number,
  it: NonNullable<ViewTransform["intensity"]>,
): number {
  const { gamma } = it;
  if (gamma !== 1) v = v < 0 ? -Math.pow(-v, gamma) : Math.pow(v, gamma);
  return it.scale * v + it.shift;
}

/**
 * Samples every channel of `src` bilinearly at `(u, v)`, in pixel units
 * with pixel centres at integers (taps outside the plane count as 0), then
 * applies the intensity transform `it` when given, and writes the values
 * to `out[o]`, `out[o + 1]`, … (one per channel).
 */
export function sampleBilinear(
  src: Plane,
  u: number,
  v: number,
  out: Float32Array,
  o: number,
  it?: ViewTransform["intensity"],
): void {
  const { image, nx, ny, channels: ch } = src;
  const ix = Math.floor(u);
  const iy = Math.floor(v);
  const fx = u - ix;
  const fy = v - iy;
  const w00 = (1 - fx) * (1 - fy);
  const w01 = fx * (1 - fy);
  const w10 = (1 - fx) * fy;
  const w11 = fx * fy;
  const b00 = src.base + (iy * nx + ix) * ch;
  const b10 = b00 + nx * ch;
  if (ix >= 0 && ix + 1 < nx && iy >= 0 && iy + 1 < ny) {
    for (let c = 0; c < ch; c++) {
      const val = w00 * image[b00 + c]! + w01 * image[b00 + ch + c]! +
        w10 * image[b10 + c]! + w11 * image[b10 + ch + c]!;
      out[o + c] = it ? intensityTransform(val, it) : val;
    }
    return;
  }
  const in0 = iy >= 0 && iy < ny;
  const in1 = iy + 1 >= 0 && iy + 1 < ny;
  const ix0 = ix >= 0 && ix < nx;
  const ix1 = ix + 1 >= 0 && ix + 1 < nx;
  for (let c = 0; c < ch; c++) {
    let val = 0;
    if (in0 && ix0) val += w00 * image[b00 + c]!;
    if (in0 && ix1) val += w01 * image[b00 + ch + c]!;
    if (in1 && ix0) val += w10 * image[b10 + c]!;
    if (in1 && ix1) val += w11 * image[b10 + ch + c]!;
    out[o + c] = it ? intensityTransform(val, it) : val;
  }
}

/**
 * Renders one `p × p` view of `src` into `dest`. Output pixel centre
 * `(j + 0.5, i + 0.5)` is mapped back through the flip, the rotation about
 * the patch centre and the resized crop to a slice position; the image is
 * sampled bilinearly (zero outside the slice), the attention and label by
 * nearest neighbour. Output pixels whose pre-rotation position falls outside
 * the resized crop are filled with 0 (image, attention and label).
 * `inside` (length `p * p`) is scratch space.
 */
export function renderView(
  src: RenderSource,
  p: number,
  t: ViewTransform,
  dest: RenderDest,
  inside: Uint8Array,
): void {
  const { image, attention, label, nx, ny, plane, target } = src;
  const ch = src.channels;
  const { x: out, xStride } = dest;
  const h = p / 2;
  const rad = t.angle * Math.PI / 180;
  const cos = Math.cos(rad);
  const sin = Math.sin(rad);
  const fs = t.flip ? -1 : 1;
  const fx0 = t.flip ? p - 0.5 : 0.5;
  const sx = t.crop.width / p;
  const sy = t.crop.height / p;
  const ox = src.x0 + t.crop.left;
  const oy = src.y0 + t.crop.top;
  const dx2 = cos * fs; // d(x2)/dj
  const dy2 = sin * fs; // d(y2)/dj
  const it = t.intensity;
  const plane2d: Plane = { image, base: plane * ch, nx, ny, channels: ch };
  const att = dest.att;
  const yArr = dest.y;
  for (let i = 0; i < p; i++) {
    const dy = i + 0.5 - h;
    const ddx = fx0 - h;
    // Position in the resized-crop frame at j = 0.
    let x2 = h + cos * ddx - sin * dy;
    let y2 = h + sin * ddx + cos * dy;
    let xo = dest.xOff + i * p * xStride;
    let po = i * p;
    for (let j = 0; j < p; j++, x2 += dx2, y2 += dy2, xo += xStride, po++) {
      if (!(x2 >= 0 && x2 < p && y2 >= 0 && y2 < p)) {
        inside[po] = 0;
        for (let c = 0; c < xStride; c++) out[xo + c] = 0;
        if (att) att[dest.attOff + po] = 0;
        yArr[dest.yOff + po] = 0;
        continue;
      }
      inside[po] = 1;
      const X = ox + x2 * sx;
      const Y = oy + y2 * sy;
      // Nearest neighbour for the masks: the pixel containing (X, Y).
      const mx = Math.floor(X);
      const my = Math.floor(Y);
      let a = 0;
      let l = 0;
      if (mx >= 0 && mx < nx && my >= 0 && my < ny) {
        const m = plane + my * nx + mx;
        a = attention[m] === target ? 1 : 0;
        l = label !== undefined && label[m] === target ? 1 : 0;
      }
      if (att) att[dest.attOff + po] = a;
      if (dest.attentionInX) out[xo + ch] = a;
      yArr[dest.yOff + po] = l;
      // Bilinear for the image, pixel centres at integer + 0.5.
      sampleBilinear(plane2d, X - 0.5, Y - 0.5, out, xo, it);
    }
  }
  if (t.color && ch === 3) colorJitter(dest, p * p, t.color, inside);
}

/**
 * Colour jitter on the RGB channels of the rendered pixels (fill pixels stay
 * 0), in the fixed order brightness, contrast, saturation, hue, clamping to
 * `[0, 1]` after each step as torchvision does for float images. Hue is a
 * rotation of the chroma plane in YIQ space by `2π · hue`, a linear stand-in
 * for torchvision's HSV hue shift. `n` pixels, those with `inside[k] = 0`
 * untouched.
 */
export function colorJitter(
  dest: Pick<RenderDest, "x" | "xOff" | "xStride">,
  n: number,
  c: NonNullable<ViewTransform["color"]>,
  inside: Uint8Array,
): void {
  const { x: out, xOff, xStride } = dest;
  const b = c.brightness;
  let sum = 0;
  let count = 0;
  for (let k = 0, o = xOff; k < n; k++, o += xStride) {
    if (!inside[k]) continue;
    const r = clamp01(out[o]! * b);
    const g = clamp01(out[o + 1]! * b);
    const bl = clamp01(out[o + 2]! * b);
    out[o] = r;
    out[o + 1] = g;
    out[o + 2] = bl;
    sum += GRAY_R * r + GRAY_G * g + GRAY_B * bl;
    count++;
  }
  const mean = count > 0 ? sum / count : 0;
  const ct = c.contrast;
  const s = c.saturation;
  const th = 2 * Math.PI * c.hue;
  const hc = Math.cos(th);
  const hs = Math.sin(th);
  for (let k = 0, o = xOff; k < n; k++, o += xStride) {
    if (!inside[k]) continue;
    let r = clamp01(ct * out[o]! + (1 - ct) * mean);
    let g = clamp01(ct * out[o + 1]! + (1 - ct) * mean);
    let bl = clamp01(ct * out[o + 2]! + (1 - ct) * mean);
    const gray = GRAY_R * r + GRAY_G * g + GRAY_B * bl;
    r = clamp01(s * r + (1 - s) * gray);
    g = clamp01(s * g + (1 - s) * gray);
    bl = clamp01(s * bl + (1 - s) * gray);
    if (th !== 0) {
      const yy = 0.299 * r + 0.587 * g + 0.114 * bl;
      const ii = 0.596 * r - 0.274 * g - 0.322 * bl;
      const qq = 0.211 * r - 0.523 * g + 0.312 * bl;
      const i2 = hc * ii - hs * qq;
      const q2 = hs * ii + hc * qq;
      r = clamp01(yy + 0.956 * i2 + 0.621 * q2);
      g = clamp01(yy - 0.272 * i2 - 0.647 * q2);
      bl = clamp01(yy - 1.106 * i2 + 1.703 * q2);
    }
    out[o] = r;
    out[o + 1] = g;
    out[o + 2] = bl;
  }
}
