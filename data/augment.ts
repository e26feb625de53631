/**
 * Pairwise data augmentation (paper section 3.1, "Pairwise Data
 * Augmentation"): each view of a patch gets a random resized crop, a rotation
 * and a horizontal flip, applied identically to the image, the attention and
 * the label, plus an intensity (CT/MRI) or colour (RGB) transform on the
 * image alone. Images are interpolated bilinearly, masks by nearest
 * neighbour; everything runs on typed arrays in one pass per view.
 *
 * @module
 */
import { Prng } from "../random/prng.ts";
import type { Patch } from "./patch_sampler.ts";
import { drawJitter, renderView } from "./_render.ts";
import { checkInterval, checkUpTo } from "./_ranges.ts";

/**
 * The parameters of one augmented view, as drawn by
 * {@linkcode sampleViewTransform}. The view is the flip of the rotation of the
 * crop resized to the full patch.
 */
export interface ViewTransform {
  /** Crop box in patch pixels, resized back to the full patch. */
  crop: { top: number; left: number; height: number; width: number };
  /** Rotation in degrees; positive turns the content counter-clockwise as displayed (rows down). */
  angle: number;
  /** Horizontal flip (columns reversed), applied last. */
  flip: boolean;
  /** CT/MRI intensity: `v' = scale · sign(v)|v|^gamma + shift`; absent when not applied. */
  intensity?: { scale: number; shift: number; gamma: number };
  /** RGB colour jitter factors (torchvision `ColorJitter` meanings); absent when not applied. */
  color?: {
    brightness: number;
    contrast: number;
    saturation: number;
    hue: number;
  };
}

/** Random resized crop, as torchvision's `RandomResizedCrop`. */
export interface CropOptions {
  /** Range of the crop's area as a fraction of the patch (the authors' 0.3–0.7). @default {[0.3, 0.7]} */
  scale?: [number, number];
  /** Range of the crop's aspect ratio (width / height), drawn log-uniformly. @default {[3 / 4, 4 / 3]} */
  ratio?: [number, number];
}

/** Random rotation about the patch centre. */
export interface RotationOptions {
  /** Angles are drawn uniformly from `[-degrees, degrees]`. @default {30} */
  degrees?: number;
}

/** Random horizontal flip. */
export interface FlipOptions {
  /** Probability of flipping. @default {0.5} */
  p?: number;
}

/**
 * Random intensity transform for CT/MRI (any image that is not 3-channel):
 * `v' = scale · sign(v)|v|^gamma + shift`, each factor uniform in its range.
 */
export interface IntensityOptions {
  /** Multiplicative factor range. @default {[0.9, 1.1]} */
  scale?: [number, number];
  /** Additive shift range. @default {[-0.1, 0.1]} */
  shift?: [number, number];
  /** Gamma range. @default {[0.7, 1.5]} */
  gamma?: [number, number];
  /** Probability of applying the transform to a view. @default {0.8} */
  p?: number;
}

/**
 * Random colour jitter for RGB images in `[0, 1]`, with torchvision
 * `ColorJitter` meanings: brightness, contrast and saturation factors are
 * uniform in `[max(0, 1 - x), 1 + x]`, the hue shift in `[-hue, hue]` turns.
 */
export interface ColorOptions {
  /** Brightness strength. @default {0.4} */
  brightness?: number;
  /** Contrast strength. @default {0.4} */
  contrast?: number;
  /** Saturation strength. @default {0.4} */
  saturation?: number;
  /** Hue strength, at most 0.5. @default {0.1} */
  hue?: number;
  /** Probability of applying the jitter to a view (SimCLR's 0.8). @default {0.8} */
  p?: number;
}

/**
 * Options for pairwise augmentation. Each transform is on by default with
 * the values below; `false` turns it off. `intensity` applies to images
 * with other than 3 channels, `color` to 3-channel (RGB) images.
 */
export interface AugmentOptions {
  /** Random resized crop. @default {{ scale: [0.3, 0.7], ratio: [3 / 4, 4 / 3] }} */
  crop?: CropOptions | false;
  /** Random rotation. @default {{ degrees: 30 }} */
  rotation?: RotationOptions | false;
  /** Random horizontal flip. @default {{ p: 0.5 }} */
  flip?: FlipOptions | false;
  /** CT/MRI intensity transform (non-RGB images). @default {{ scale: [0.9, 1.1], shift: [-0.1, 0.1], gamma: [0.7, 1.5], p: 0.8 }} */
  intensity?: IntensityOptions | false;
  /** RGB colour jitter (3-channel images). @default {{ brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1, p: 0.8 }} */
  color?: ColorOptions | false;
}

/** Augmentation options with every default filled in and checked. */
export interface ResolvedAugmentOptions {
  /** Crop ranges, or `null` when off. */
  crop: { scale: [number, number]; ratio: [number, number] } | null;
  /** Maximum rotation in degrees (0 when off). */
  degrees: number;
  /** Flip probability (0 when off). */
  flipP: number;
  /** Intensity ranges, or `null` when off. */
  intensity: Required<IntensityOptions> | null;
  /** Colour jitter strengths, or `null` when off. */
  color: Required<ColorOptions> | null;
}

/**
 * Fills in the defaults of `options` and checks every value.
 *
 * @param options The options to resolve.
 * @returns The resolved options.
 * @throws {RangeError} If a range or probability is out of bounds.
 *
 * @example Usage
 * ```ts
 * import { resolveAugmentOptions } from "@agcl/agcl/data";
 * import assert from "node:assert/strict";
 *
 * const r = resolveAugmentOptions({ rotation: false });
 * assert.equal(r.degrees, 0);
 * assert.deepEqual(r.crop?.scale, [0.3, 0.7]);
 * ```
 */
export function resolveAugmentOptions(
  options: AugmentOptions = {},
): ResolvedAugmentOptions {
  const { crop = {}, rotation = {}, flip = {}, intensity = {}, color = {} } =
    options;
  const action = "augment";
  return {
    crop: crop === false ? null : {
      scale: checkInterval(crop.scale ?? [0.3, 0.7], "crop.scale", {
        action,
        lo: Number.MIN_VALUE,
        hi: 1,
      }),
      ratio: checkInterval(crop.ratio ?? [3 / 4, 4 / 3], "crop.ratio", {
        action,
        lo: Number.MIN_VALUE,
        hi: Infinity,
      }),
    },
    degrees: rotation === false
      ? 0
      : checkUpTo(rotation.degrees ?? 30, "rotation.degrees", {
        action,
        hi: 180,
      }),
    flipP: flip === false
      ? 0
      : checkUpTo(flip.p ?? 0.5, "flip.p", { action, hi: 1 }),
    intensity: intensity === false ? null : {
      scale: checkInterval(intensity.scale ?? [0.9, 1.1], "intensity.scale", {
        action,
        lo: 0,
        hi: Infinity,
      }),
      shift: checkInterval(intensity.shift ?? [-0.1, 0.1], "intensity.shift", {
        action,
        lo: -Infinity,
        hi: Infinity,
      }),
      gamma: checkInterval(intensity.gamma ?? [0.7, 1.5], "intensity.gamma", {
        action,
        lo: Number.MIN_VALUE,
        hi: Infinity,
      }),
      p: checkUpTo(intensity.p ?? 0.8, "intensity.p", { action, hi: 1 }),
    },
    color: color === false ? null : {
      brightness: checkUpTo(color.brightness ?? 0.4, "color.brightness", {
        action,
        hi: Infinity,
      }),
      contrast: checkUpTo(color.contrast ?? 0.4, "color.contrast", {
        action,
        hi: Infinity,
      }),
      saturation: checkUpTo(color.saturation ?? 0.4, "color.saturation", {
        action,
        hi: Infinity,
      }),
      hue: checkUpTo(color.hue ?? 0.1, "color.hue", { action, hi: 0.5 }),
      p: checkUpTo(color.p ?? 0.8, "color.p", { action, hi: 1 }),
    },
  };
}

/**
 * Draws the parameters of one view from `prng`, in a fixed order (crop,
 * angle, flip, then intensity or colour), so a seed fixes every view.
 *
 * The crop follows torchvision's `RandomResizedCrop`: up to 10 tries of an
 * area fraction uniform in `scale` and an aspect ratio log-uniform in
 * `ratio`, integer sides, a uniform integer position; failing that, the
 * largest centred crop within `ratio`.
 *
 * @param prng The generator (advanced by the draws).
 * @param options Resolved options, patch side `patchSize` and image `channels`.
 * @returns The view's transform.
 *
 * @example Usage
 * ```ts
 * import { resolveAugmentOptions, sampleViewTransform } from "@agcl/agcl/data";
 * import { Prng } from "@agcl/agcl/random";
 * import assert from "node:assert/strict";
 *
 * const t = sampleViewTransform(new Prng(1), {
 *   ...resolveAugmentOptions(), patchSize: 128, channels: 1,
 * });
 * assert.ok(Math.abs(t.angle) <= 30);
 * const area = t.crop.width * t.crop.height / 128 ** 2;
 * assert.ok(area > 0.29 && area < 0.71);
 * ```
 */
export function sampleViewTransform(
  prng: Prng,
  options: ResolvedAugmentOptions & { patchSize: number; channels: number },
): ViewTransform {
  const p = options.patchSize;
  let crop = { top: 0, left: 0, height: p, width: p };
  if (options.crop) {
    const [s0, s1] = options.crop.scale;
    const [r0, r1] = options.crop.ratio;
    const area = p * p;
    let found = false;
    for (let attempt = 0; attempt < 10 && !found; attempt++) {
      const target = area * prng.uniform(s0, s1);
      const aspect = Math.exp(prng.uniform(Math.log(r0), Math.log(r1)));
      const w = Math.round(Math.sqrt(target * aspect));
      const h = Math.round(Math.sqrt(target / aspect));
      if (w > 0 && w <= p && h > 0 && h <= p) {
        crop = {
          top: prng.int(p - h + 1),
          left: prng.int(p - w + 1),
          height: h,
          width: w,
        };
        found = true;
      }
    }
    if (!found) {
      // Largest centred crop whose aspect ratio lies within `ratio`.
      let w = p;
      let h = p;
      if (1 < r0) h = Math.round(w / r0);
      else if (1 > r1) w = Math.round(h * r1);
      crop = {
        top: Math.floor((p - h) / 2),
        left: Math.floor((p - w) / 2),
        height: h,
        width: w,
      };
    }
  }
  const angle = options.degrees > 0
    ? prng.uniform(-options.degrees, options.degrees)
    : 0;
  const flip = options.flipP > 0 && prng.next() < options.flipP;
  const t: ViewTransform = { crop, angle, flip };
  drawJitter(prng, options, options.channels, t);
  return t;
}

/** Options for {@linkcode augmentPatch}. */
export interface AugmentPatchOptions extends AugmentOptions {
  /** Seed of a fresh generator, used when `prng` is not given. @default {0} */
  seed?: number;
  /** Generator to draw from (advanced by the draws). */
  prng?: Prng;
  /** Use this transform instead of drawing one. */
  transform?: ViewTransform;
}

/**
 * Returns one augmented view of a cut patch: the same random resized crop,
 * rotation and flip for the image (bilinear), the attention and the label
 * (nearest neighbour), then the intensity or colour transform on the image.
 * Pixels rotated in from outside the crop are 0 in all three.
 * {@linkcode BatchStream} renders views straight from the volume with the
 * same code, without cutting the patch first.
 *
 * @param patch The patch: image `[p, p, channels]`, attention and label `[p, p]`.
 * @param options Transform options and the generator.
 * @returns A new patch of the same shapes.
 * @throws {TypeError} If the patch's arrays do not match its size and channels.
 * @throws {RangeError} If an option is out of range.
 *
 * @example Usage
 * ```ts
 * import { augmentPatch } from "@agcl/agcl/data";
 * import assert from "node:assert/strict";
 *
 * const p = 4;
 * const patch = { size: p, channels: 1, image: new Float32Array(p * p).fill(0.5),
 *   attention: new Uint8Array(p * p).fill(1), label: new Uint8Array(p * p) };
 * const view = augmentPatch(patch, { seed: 3, crop: false, rotation: false, intensity: false });
 * assert.deepEqual([...view.image], [...patch.image]); // only a flip: uniform stays uniform
 * ```
 */
export function augmentPatch(
  patch: Patch,
  options: AugmentPatchOptions = {},
): Patch {
  const { seed = 0, prng, transform, ...augment } = options;
  const { size: p, channels } = patch;
  if (
    !Number.isInteger(p) || p < 1 || !Number.isInteger(channels) ||
    channels < 1 || patch.image.length !== p * p * channels ||
    patch.attention.length !== p * p || patch.label.length !== p * p
  ) {
    throw new TypeError(
      `Cannot augment patch as its arrays must be image [${p}, ${p}, ${channels}] and attention, label [${p}, ${p}]: current lengths are ${patch.image.length}, ${patch.attention.length}, ${patch.label.length}`,
    );
  }
  const t = transform ?? sampleViewTransform(prng ?? new Prng(seed), {
    ...resolveAugmentOptions(augment),
    patchSize: p,
    channels,
  });
  const out: Patch = {
    size: p,
    channels,
    image: new Float32Array(p * p * channels),
    attention: new Uint8Array(p * p),
    label: new Uint8Array(p * p),
  };
  renderView(
    {
      image: patch.image,
      attention: patch.attention,
      label: patch.label,
      nx: p,
      ny: p,
      channels,
      plane: 0,
      target: 1,
      y0: 0,
      x0: 0,
    },
    p,
    t,
    {
      x: out.image,
      xOff: 0,
      xStride: channels,
      attentionInX: false,
      att: out.attention,
      attOff: 0,
      y: out.label,
      yOff: 0,
    },
    new Uint8Array(p * p),
  );
  return out;
}
