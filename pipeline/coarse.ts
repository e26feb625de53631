/**
 * Stage 1: coarse multi-class segmentation on whole axial slices, trained
 * with cross-entropy plus Dice; its label maps (grown by a few pixels into
 * background) are the attention of stages 2 and 3.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { diceLoss } from "../losses/mod.ts";
import { Prng, type PrngState } from "../random/prng.ts";
import type { PipelineConfig } from "./config.ts";
import { createAdam, scheduledLr } from "./optim.ts";
import { augmentSliceBatch } from "../data/slice_augment.ts";
import type { StageSpec } from "./_stage_runner.ts";
import type { Stage } from "./run_dir.ts";
import { type DeepLab, namedVariables, pickTrainable } from "./_models.ts";
import { optimizeStep, roundUp, stageEpochs } from "./_train_util.ts";

import type { LabelMap } from "../data/mod.ts";
import { maxValue, newLabelMap } from "./_arrays.ts";

/** What slices are cut from: a canonical image, with an optional label map. */
export interface SliceSource {
  /** `[nx, ny, nz]`. */
  dims: [number, number, number];
  /** Image channels. */
  channels: number;
  /** `[nz, ny, nx, channels]`. */
  image: Float32Array;
  /** `[nz, ny, nx]` labels. */
  label?: LabelMap;
}

/** Slice sides are padded to a multiple of this for the encoder's strides. */
export function paddingMultiple(config: PipelineConfig): number {
  return config.model.stem === "cifar" ? 8 : 32;
}

/** Options for {@linkcode sliceBatch}. */
export interface SliceBatchOptions {
  /** Padded height `h` (at least every picked slice's). */
  height: number;
  /** Padded width `w` (at least every picked slice's). */
  width: number;
  /**
   * Neighbouring slices on each side stacked as extra channels (2.5D):
   * slices `z - context … z + context`, repeated at the volume's ends.
   * @default {0}
   */
  context?: number;
}

/**
 * Copies slices into a zero-padded batch; with `context`, each slice's
 * neighbours come with it as channels (`[z - context, …, z + context]`, each
 * with the image's channels, the slice itself in the middle).
 *
 * @param cases The cases.
 * @param picks `[case index, slice]` of each batch item.
 * @param options The padded size and the neighbouring slices.
 * @returns `x` `[b, h, w, channels]` and `y` `[b, h, w]` (0 where padded);
 *   `channels` is the image's times `2 context + 1`.
 */
export function sliceBatch(
  cases: SliceSource[],
  picks: [number, number][],
  options: SliceBatchOptions,
): { x: Float32Array; y: Int32Array; channels: number } {
  const { height: h, width: w, context = 0 } = options;
  const ch = cases[picks[0]![0]]!.channels;
  const depth = 2 * context + 1;
  const channels = ch * depth;
  const x = new Float32Array(picks.length * h * w * channels);
  const y = new Int32Array(picks.length * h * w);
  picks.forEach(([ci, z], b) => {
    const c = cases[ci]!;
    const [nx, ny, nz] = c.dims;
    for (let r = 0; r < ny; r++) {
      const src = (z * ny + r) * nx;
      const dst = ((b * h + r) * w) * channels;
      if (depth === 1) {
        x.set(c.image.subarray(src * ch, (src + nx) * ch), dst);
      } else {
        for (let d = 0; d < depth; d++) {
          const zz = Math.min(nz - 1, Math.max(0, z + d - context));
          const from = ((zz * ny + r) * nx) * ch;
          for (let col = 0; col < nx; col++) {
            for (let q = 0; q < ch; q++) {
              x[dst + col * channels + d * ch + q] = c
                .image[from + col * ch + q]!;
            }
          }
        }
      }
      if (c.label) {
        for (let col = 0; col < nx; col++) {
          y[(b * h + r) * w + col] = c.label[src + col]!;
        }
      }
    }
  });
  return { x, y, channels };
}

/**
 * The slices stage 1 sees at `coarse.downsample` = `factor`: each `factor`
 * × `factor` block of a slice becomes one pixel holding the block's mean
 * image value (per channel) and its most frequent label (a tie goes to the
 * lower label). A side that `factor` does not divide is first extended by
 * repeating its last row or column. Slices (z) are kept. `factor` 1 returns
 * `c` itself.
 *
 * @param c The case at full resolution.
 * @param factor The in-plane reduction, a positive integer.
 * @returns The case at `[⌈nx / factor⌉, ⌈ny / factor⌉, nz]`.
 * @throws {RangeError} If `factor` is not a positive integer.
 *
 * @example
 * ```ts
 * import { downsampleSlices } from "@agcl/agcl/pipeline";
 * import assert from "node:assert/strict";
 *
 * const c = {
 *   dims: [3, 2, 1] as [number, number, number],
 *   channels: 1,
 *   image: new Float32Array([0, 2, 4, 6, 8, 10]),
 *   label: new Uint8Array([1, 1, 2, 0, 1, 2]),
 * };
 * const low = downsampleSlices(c, 2);
 * assert.deepEqual(low.dims, [2, 1, 1]);
 * assert.deepEqual(Array.from(low.image), [4, 7]);
 * assert.deepEqual(Array.from(low.label!), [1, 2]);
 * ```
 */
export function downsampleSlices<T extends SliceSource>(
  c: T,
  factor: number,
): T {
  if (!Number.isInteger(factor) || factor < 1) {
    throw new RangeError(
      `Cannot downsample slices as 'factor' must be a positive integer: current value is ${factor}`,
    );
  }
  if (factor === 1) return c;
  const [nx, ny, nz] = c.dims;
  const ch = c.channels;
  const lx = Math.ceil(nx / factor), ly = Math.ceil(ny / factor);
  const image = new Float32Array(lx * ly * nz * ch);
  const label = c.label
    ? newLabelMap(lx * ly * nz, maxValue(c.label))
    : undefined;
  const inv = 1 / (factor * factor);
  const votes = new Map<number, number>();
  for (let z = 0; z < nz; z++) {
    for (let r = 0; r < ly; r++) {
      for (let q = 0; q < lx; q++) {
        const dst = (z * ly + r) * lx + q;
        votes.clear();
        for (let dy = 0; dy < factor; dy++) {
          const y = Math.min(ny - 1, r * factor + dy);
          for (let dx = 0; dx < factor; dx++) {
            const x = Math.min(nx - 1, q * factor + dx);
            const src = (z * ny + y) * nx + x;
            for (let k = 0; k < ch; k++) {
              image[dst * ch + k] = image[dst * ch + k]! +
                c.image[src * ch + k]! * inv;
            }
            if (c.label) {
              const v = c.label[src]!;
              votes.set(v, (votes.get(v) ?? 0) + 1);
            }
          }
        }
        if (label) {
          let best = -1, bestN = 0;
          for (const [v, n] of votes) {
            if (n > bestN || (n === bestN && v < best)) [best, bestN] = [v, n];
          }
          label[dst] = best;
        }
      }
    }
  }
  const out = { ...c, dims: [lx, ly, nz] as [number, number, number], image };
  if (label) out.label = label;
  else delete out.label;
  return out;
}

/** Options of {@linkcode coarseProbabilities} and {@linkcode coarseLabels}. */
export interface CoarseTtaOptions {
  /**
   * Test-time flip: also predict the left-right mirrored slices and average
   * the two softmaxes (resolved `coarse.tta`). @default {false}
   */
  tta?: boolean;
}

/**
 * Stage 1's class probabilities of a batch of slices: the softmax of the
 * network's logits or, with `tta`, the mean of that softmax and the softmax
 * of the left-right mirrored batch, mirrored back.
 *
 * @param net The stage-1 network.
 * @param input `[b, h, w, channels]` slices, zero-padded as in training.
 * @param options Whether to add the mirrored prediction.
 * @returns `[b, h, w, classes]` probabilities.
 */
export function coarseProbabilities(
  net: DeepLab,
  input: tf.Tensor4D,
  options: CoarseTtaOptions = {},
): tf.Tensor4D {
  const { tta = false } = options;
  return tf.tidy(() => {
    const p = tf.softmax(net.apply(input, { training: false })) as tf.Tensor4D;
    if (!tta) return p;
    // Axis 2 of [b, h, w, c] is the width: the whole padded batch is
    // mirrored, about the same centre as the training flip mirrors it.
    const mirrored = net.apply(tf.reverse(input, 2), { training: false });
    const back = tf.reverse(tf.softmax(mirrored), 2);
    return tf.mul(tf.add(p, back), 0.5) as tf.Tensor4D;
  });
}

/**
 * Stage 1's label of every pixel of a batch of slices: the argmax of the
 * logits or, with `tta`, of {@linkcode coarseProbabilities}' average.
 *
 * @param net The stage-1 network.
 * @param input `[b, h, w, channels]` slices, zero-padded as in training.
 * @param options Whether to add the mirrored prediction.
 * @returns `[b, h, w]` int32 labels.
 */
export function coarseLabels(
  net: DeepLab,
  input: tf.Tensor4D,
  options: CoarseTtaOptions = {},
): tf.Tensor3D {
  return tf.tidy(() =>
    // Without the flip, the logits' argmax: the same labels as the softmax's
    // but bit for bit those of runs from before `coarse.tta`.
    (options.tta
      ? coarseProbabilities(net, input, options)
      : net.apply(input, { training: false })).argMax(-1) as tf.Tensor3D
  );
}

/** Options of {@linkcode predictCoarse}. */
export interface PredictCoarseOptions extends CoarseTtaOptions {
  /** Slice sides are padded to a multiple of this ({@linkcode paddingMultiple}). */
  multiple: number;
  /** Slices per forward pass. */
  batchSize: number;
  /** The largest label id (sizes the label array). */
  maxLabel: number;
  /** Neighbouring slices on each side as extra channels (`coarse.context`). @default {0} */
  context?: number;
  /**
   * The in-plane reduction the network was trained at (`coarse.downsample`):
   * slices are reduced as {@linkcode downsampleSlices} does, and the class
   * probabilities are resized back (bilinear, half-pixel centres) before
   * the argmax. @default {1}
   */
  downsample?: number;
}

/**
 * Predicts a case's coarse label map with the stage-1 network (argmax over
 * classes per pixel, slice by slice; with `tta`, of the softmax averaged
 * with the mirrored slices'; with `downsample`, of the probabilities of the
 * reduced slices resized back to the case's grid).
 *
 * @param net The stage-1 network.
 * @param full The case, at full resolution.
 * @param options Padding multiple, slices per forward pass, test-time flip.
 * @returns `[nz, ny, nx]` labels.
 */
export async function predictCoarse(
  net: DeepLab,
  full: SliceSource,
  options: PredictCoarseOptions,
): Promise<LabelMap> {
  const f = options.downsample ?? 1;
  const [nx, ny, nz] = full.dims;
  const { label: _, ...unlabelled } = full;
  const c = downsampleSlices(unlabelled, f);
  const [lx, ly] = c.dims;
  const h = roundUp(ly, options.multiple);
  const w = roundUp(lx, options.multiple);
  // Rows of the label batch read back: the padded slice, or the full-size
  // one the probabilities were resized to.
  const [oh, ow] = f === 1 ? [h, w] : [ny, nx];
  const out = newLabelMap(nx * ny * nz, options.maxLabel);
  for (let z0 = 0; z0 < nz; z0 += options.batchSize) {
    const picks: [number, number][] = [];
    for (let z = z0; z < Math.min(nz, z0 + options.batchSize); z++) {
      picks.push([0, z]);
    }
    const { x, channels } = sliceBatch([c], picks, {
      height: h,
      width: w,
      context: options.context ?? 0,
    });
    const arg = tf.tidy(() => {
      const input = tf.tensor4d(x, [picks.length, h, w, channels]);
      const tta = options.tta ?? false;
      if (f === 1) return coarseLabels(net, input, { tta });
      const p = coarseProbabilities(net, input, { tta })
        .slice([0, 0, 0, 0], [-1, ly, lx, -1]) as tf.Tensor4D;
      return tf.image.resizeBilinear(p, [ly * f, lx * f], false, true)
        .slice([0, 0, 0, 0], [-1, ny, nx, -1]).argMax(-1);
    });
    const labels = await arg.data();
    arg.dispose();
    picks.forEach(([, z], b) => {
      for (let r = 0; r < ny; r++) {
        for (let col = 0; col < nx; col++) {
          out[(z * ny + r) * nx + col] = labels[(b * oh + r) * ow + col]!;
        }
      }
    });
  }
  return out;
}

const SIDE = /(^|[^a-z])(left|right|[lr])([^a-z]|$)/i;

/** Options for {@linkcode resolveCoarseFlip}. */
export interface ResolveCoarseFlipOptions {
  /** Names of the target labels. */
  labelNames: string[];
  /** The training cases (their `dims`). */
  cases: { dims: [number, number, number] }[];
}

/**
 * Resolves `config.coarse.flip`: `"auto"` mirrors training slices when every
 * case is a volume of more than one slice and no label name names a side
 * (`left`, `right`, or a lone `l`/`r` word such as `kidney_l`).
 *
 * @param flip The configured value.
 * @param options Names of the target labels and the training cases (their `dims`).
 * @returns Whether to mirror.
 *
 * @example
 * ```ts
 * import { resolveCoarseFlip } from "@agcl/agcl/pipeline";
 * import assert from "node:assert/strict";
 *
 * const vol = [{ dims: [45, 108, 90] as [number, number, number] }];
 * const flip = (labelNames: string[], cases = vol) =>
 *   resolveCoarseFlip("auto", { labelNames, cases });
 * assert.equal(flip(["frontal", "temporal"]), true);
 * assert.equal(flip(["kidney_left", "liver"]), false);
 * assert.equal(flip(["digit_0"], [{ dims: [84, 64, 1] }]), false);
 * ```
 */
export function resolveCoarseFlip(
  flip: PipelineConfig["coarse"]["flip"],
  options: ResolveCoarseFlipOptions,
): boolean {
  const { labelNames, cases } = options;
  if (flip !== "auto") return flip === "horizontal";
  return cases.length > 0 && cases.every((c) => c.dims[2] > 1) &&
    !labelNames.some((n) => SIDE.test(n));
}

/**
 * Resolves `config.coarse.tta`: `"auto"` flips at test time exactly when
 * stage 1 mirrors its training slices (the resolved `coarse.flip`), since a
 * mirrored slice is then as valid an input as the slice itself.
 *
 * @param tta The configured value.
 * @param flip The resolved `coarse.flip` ({@linkcode resolveCoarseFlip}).
 * @returns Whether stage 1 averages each slice's prediction with its mirror's.
 *
 * @example
 * ```ts
 * import { resolveCoarseTta } from "@agcl/agcl/pipeline";
 * import assert from "node:assert/strict";
 *
 * assert.equal(resolveCoarseTta("auto", true), true);
 * assert.equal(resolveCoarseTta("auto", false), false);
 * assert.equal(resolveCoarseTta("none", true), false);
 * ```
 */
export function resolveCoarseTta(
  tta: PipelineConfig["coarse"]["tta"],
  flip: boolean,
): boolean {
  return tta === "auto" ? flip : tta === "flip";
}

/**
 * Resolves `config.coarse.jitter` or `config.pretrain.jitter`: `"auto"`
 * jitters intensities unless they come through a fixed HU window.
 *
 * @param jitter The configured value.
 * @param intensity The intensity mapping the data used (`auto` resolved).
 * @returns Whether to jitter.
 */
export function resolveJitter(
  jitter: "auto" | boolean,
  intensity: "window" | "percentile" | "none",
): boolean {
  return jitter === "auto" ? intensity !== "window" : jitter;
}

/**
 * Class weights `1/√share` of each class's share of the labelled pixels,
 * scaled so that the pixel-weighted mean weight is 1; absent classes get 0.
 *
 * @param cases Cases with label maps (`[nz, ny, nx]`).
 * @param nClasses Number of classes, background included.
 * @returns One weight per class.
 */
export function inverseSqrtClassWeights(
  cases: { label?: LabelMap }[],
  nClasses: number,
): Float32Array {
  const counts = new Float64Array(nClasses);
  for (const c of cases) {
    if (!c.label) continue;
    for (const v of c.label) if (v >= 0 && v < nClasses) counts[v]!++;
  }
  const total = counts.reduce((a, b) => a + b, 0);
  const w = new Float32Array(nClasses);
  let mean = 0;
  for (let k = 0; k < nClasses; k++) {
    if (counts[k]! > 0) {
      w[k] = 1 / Math.sqrt(counts[k]! / total);
      mean += w[k]! * counts[k]! / total;
    }
  }
  for (let k = 0; k < nClasses; k++) w[k] = mean > 0 ? w[k]! / mean : 0;
  return w;
}

/** Options of {@linkcode coarseStage}. */
export interface CoarseStageOptions {
  /** The training cases. */
  cases: SliceSource[];
  /** Number of classes, background included. */
  nClasses: number;
  /** Seed of the slice order and the augmentation. */
  seed: number;
  /** Mirror training slices left-right (resolved `coarse.flip`). @default {false} */
  flip?: boolean;
  /** Intensity or colour jitter (resolved `coarse.jitter`). @default {false} */
  jitter?: boolean;
  /** Stage name of the checkpoints (a cross-fit fold's own). @default {"coarse"} */
  stage?: Stage;
}

/**
 * Builds the stage-1 training spec: Adam on CE + multi-class batch Dice
 * (background excluded) over shuffled batches of whole training slices,
 * each augmented by `coarse.rotation`, `scale`, `translate` and the
 * resolved mirror and jitter.
 */
export function coarseStage(
  config: PipelineConfig,
  net: DeepLab,
  options: CoarseStageOptions,
): StageSpec {
  const { cases, nClasses, seed, flip = false, jitter = false } = options;
  const multiple = paddingMultiple(config);
  const h = roundUp(Math.max(...cases.map((c) => c.dims[1])), multiple);
  const w = roundUp(Math.max(...cases.map((c) => c.dims[0])), multiple);
  const slices: [number, number][] = [];
  cases.forEach((c, ci) => {
    for (let z = 0; z < c.dims[2]; z++) slices.push([ci, z]);
  });
  const { batchSize, lr: baseLr, schedule } = config.coarse;
  const epochs = stageEpochs(config.coarse.epochs, "coarse");
  const stepsPerEpoch = Math.ceil(slices.length / batchSize);
  const total = epochs * stepsPerEpoch;
  const co = config.coarse;
  const augment = {
    flipP: flip ? 0.5 : 0,
    degrees: co.rotation,
    scale: co.scale,
    translate: co.translate,
    elastic: co.elastic,
    intensity: jitter ? {} : false as const,
    color: jitter ? {} : false as const,
  };
  const classWeights = config.coarse.classWeights === "inverse-sqrt"
    ? inverseSqrtClassWeights(cases, nClasses)
    : null;
  const augmenting = flip || co.rotation > 0 || co.translate > 0 ||
    co.elastic > 0 ||
    co.scale[0] !== 1 || co.scale[1] !== 1 || jitter;
  const variables = namedVariables({ "": net });
  const trainable = pickTrainable(variables, net.trainableVariables());
  const optimizer = createAdam(trainable);
  const prng = new Prng(seed);
  let order: [number, number][] = [];
  let orderEpoch = -1;
  return {
    stage: options.stage ?? "coarse",
    epochs,
    stepsPerEpoch,
    variables,
    optimizer,
    getExtra: () => ({ prng: prng.getState(), orderEpoch }),
    setExtra(extra) {
      const e = extra as { prng: PrngState; orderEpoch: number };
      prng.setState(e.prng);
      orderEpoch = -1; // the order is redrawn at the next epoch start
    },
    async step(epoch, step) {
      const i = step - epoch * stepsPerEpoch;
      if (orderEpoch !== epoch) {
        order = prng.shuffle(slices.slice());
        orderEpoch = epoch;
      }
      const picks = order.slice(i * batchSize, (i + 1) * batchSize);
      const { x, y, channels } = sliceBatch(cases, picks, {
        height: h,
        width: w,
        context: co.context,
      });
      if (augmenting) {
        augmentSliceBatch(x, y, {
          shape: [picks.length, h, w, channels],
          imageChannels: cases[0]!.channels,
          ...augment,
          prng,
        });
      }
      const lr = scheduledLr(step, { schedule, lr: baseLr, total });
      // Per-pixel class weights; labels outside the classes (VOC's 255 =
      // ignore) weigh 0, as their one-hot rows are all zero.
      let pixelWeights: Float32Array | null = null;
      if (classWeights) {
        pixelWeights = new Float32Array(y.length);
        for (let i = 0; i < y.length; i++) {
          const v = y[i]!;
          pixelWeights[i] = v >= 0 && v < nClasses ? classWeights[v]! : 0;
        }
      }
      const loss = await optimizeStep(
        () =>
          tf.tidy(() => {
            const input = tf.tensor4d(x, [picks.length, h, w, channels]);
            const onehot = tf.oneHot(tf.tensor1d(y, "int32"), nClasses)
              .reshape([picks.length, h, w, nClasses]);
            const logits = net.apply(input, { training: true });
            let ce: tf.Scalar;
            if (pixelWeights) {
              // Weighted mean: Σ w·ce / Σ w over the batch's pixels.
              const wpx = tf.tensor3d(pixelWeights, [picks.length, h, w]);
              const perPixel = tf.neg(
                tf.sum(tf.mul(onehot, tf.logSoftmax(logits)), -1),
              );
              ce = tf.div(
                tf.sum(tf.mul(perPixel, wpx)),
                tf.maximum(tf.sum(wpx), 1e-12),
              );
            } else {
              ce = tf.losses.softmaxCrossEntropy(onehot, logits);
            }
            // Batch Dice (MONAI `batch=True`, nnU-Net's batch_dice): one
            // Dice per class over the whole batch, so a class present in
            // any slice of the batch gets its full gradient; per-slice Dice
            // spends most of the term on classes absent from the slice.
            const dice = diceLoss(tf.softmax(logits), onehot, {
              includeBackground: false,
              reduction: "batch",
            });
            return ce.add(dice) as tf.Scalar;
          }),
        trainable,
        optimizer,
        lr,
      );
      return { loss, lr };
    },
  };
}
