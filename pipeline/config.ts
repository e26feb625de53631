/**
 * The pipeline's configuration: one JSON-able object, three presets, strict
 * validation (an unknown field lists the valid ones) and merging of partial
 * overrides over a preset.
 *
 * @module
 */

/** Pre-training methods of stage 2 (the paper's Table 1 rows). */
export const PRETRAIN_METHODS: readonly [
  "agcl",
  "supcon",
  "sscl",
  "ce",
  "none",
] = Object.freeze(["agcl", "supcon", "sscl", "ce", "none"] as const);

/** A stage-2 method: `agcl` (modal-target), `supcon`, `sscl` (NT-Xent), `ce`, `none`. */
export type PretrainMethod = (typeof PRETRAIN_METHODS)[number];

/** ResNet depths the encoder supports. */
export type Backbone = 18 | 34 | 50 | 101;

/** Learning-rate schedules: constant, or cosine decay to 0 over the stage. */
export type LrSchedule = "constant" | "cosine";

/**
 * A stage's epochs: a count, or `"auto"` = sized from the number of
 * training slices and targets (`BUDGET_RULE`, `sizeBudgets`), and recorded
 * in `config.json`.
 */
export type Epochs = number | "auto";

/** How image intensities are mapped to [0, 1]. */
export type IntensityMode = "auto" | "window" | "percentile" | "none";

/** Names of the CT windows in {@linkcode INTENSITY_WINDOWS}. */
export type WindowPreset = "abdomen" | "head" | "bone";

/**
 * Named CT windows `[min, max]` in Hounsfield units: `abdomen` is the
 * paper's −175..250 (the default), `head` the brain window (level 40,
 * width 80), `bone` the bone window (level 300, width 2000).
 */
export const INTENSITY_WINDOWS: Readonly<
  Record<WindowPreset, readonly [number, number]>
> = Object.freeze({
  abdomen: Object.freeze([-175, 250] as const),
  head: Object.freeze([0, 80] as const),
  bone: Object.freeze([-700, 1300] as const),
});

/** How intensities are mapped to [0, 1]; `RUN/config.json`'s `intensity`. */
export interface IntensityConfig {
  /**
   * `window` (CT: clip to {@linkcode IntensityConfig.window}, scale),
   * `percentile` (MRI: {@linkcode IntensityConfig.percentiles} to 0 and 1,
   * clipped), `none`, or `auto`: `window` when the first training image has
   * values below −100 HU, else `percentile`.
   * @default {"auto"}
   */
  mode: IntensityMode;
  /**
   * CT window `[min, max]` in HU, or a name from
   * {@linkcode INTENSITY_WINDOWS}.
   * @default {[-175, 250]}
   */
  window: [number, number] | WindowPreset;
  /** Percentiles `[lo, hi]` mapped to 0 and 1. @default {[1, 99]} */
  percentiles: [number, number];
}

/** The paper's intensity mapping: the abdominal window, 1st–99th percentiles. */
export const DEFAULT_INTENSITY: Readonly<IntensityConfig> = Object.freeze({
  mode: "auto",
  window: [-175, 250] as [number, number],
  percentiles: [1, 99] as [number, number],
});

/**
 * The CT window `[min, max]` of an intensity config, a preset name resolved.
 *
 * @example Usage
 * ```ts
 * import { intensityWindow } from "@agcl/agcl/pipeline";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(intensityWindow("head"), [0, 80]);
 * assert.deepEqual(intensityWindow([-1000, 1000]), [-1000, 1000]);
 * ```
 *
 * @param window `[min, max]` in HU or a preset name.
 * @returns `[min, max]` in HU.
 */
export function intensityWindow(
  window: IntensityConfig["window"],
): [number, number] {
  const w = typeof window === "string" ? INTENSITY_WINDOWS[window] : window;
  return [w[0], w[1]];
}

/** The encoder and decoder shared by the three stages. */
export interface ModelConfig {
  /** ResNet depth. */
  backbone: Backbone;
  /** Channel width multiplier (1 = torchvision). */
  widthMultiplier: number;
  /** `imagenet` (7×7/2 + max-pool, the supplement) or `cifar` (3×3/1, the authors' code). */
  stem: "imagenet" | "cifar";
  /** Encoder output stride: 4, 8, 16 or 32 with the ImageNet stem; 1, 2, 4 or 8 with the CIFAR stem. */
  outputStride: 1 | 2 | 4 | 8 | 16 | 32;
  /** ASPP branch channels (paper: 512). */
  asppChannels: number;
  /** ASPP atrous rates (paper: 6, 12, 18). */
  asppRates: number[];
  /** DeepLabv3+ low-level skip in the stage-3 decoder. */
  lowLevelSkip: boolean;
  /**
   * Where the skip's features come from: `"layer1"` (DeepLabv3+'s) or
   * `"stem"` (one conv deep, so the frozen encoder's deep features carry the
   * shapes and the skip only the edges).
   */
  lowLevelSource: "layer1" | "stem";
  /** Projection head hidden width; 0 = the encoder's feature width. */
  projectionHidden: number;
  /** Projection head output width (paper: 256). */
  projectionDim: number;
}

/** Stage 1: coarse multi-class segmentation on whole slices. */
export interface CoarseConfig {
  /** Folder of coarse masks (`<case id>.nii[.gz]`) used instead of training stage 1. */
  masks: string | null;
  /** Epochs over all training slices, or `"auto"` (sized from the data). */
  epochs: Epochs;
  /** Slices per step. */
  batchSize: number;
  /** Adam learning rate. */
  lr: number;
  /**
   * Learning-rate schedule over the stage: `"constant"` or `"cosine"` (from
   * `lr` to 0). With a constant 3e-3 the coarse network's held-out Dice
   * depended on where the last steps threw it: on Task104 digits (seed 0's
   * initialisation) it ended at 0.18 on the cases with each digit, the same
   * network under a cosine schedule at 0.64.
   */
  schedule: LrSchedule;
  /**
   * Channel width multiplier of the coarse network. `tiny` uses 0.25 (16
   * to 128 channels through ResNet-18's stages): at 0.125 the network
   * under-fitted its own training slices (the brain atlas's deep grey at
   * Dice 0.76 after 60 visits).
   */
  widthMultiplier: number;
  /** ASPP channels of the coarse network (`tiny`: 32, scaled with the width). */
  asppChannels: number;
  /** DeepLabv3+ low-level skip in the coarse network (the paper's stage 1 is DeepLabv3+). */
  lowLevelSkip: boolean;
  /** Grow the coarse labels by this many pixels into background to form the attention. */
  dilate: number;
  /**
   * Attention of the training cases in stages 2 and 3, which must carry the
   * same kind of errors as the attention at inference, or stage 3 learns to
   * copy its attention channel:
   * - `"crossfit"`: out-of-fold stage-1 predictions: the training cases are
   *   split into `folds` folds (by domain where possible), a coarse network
   *   is trained on all folds but one and predicts the one left out. When a
   *   fold holds a domain that no other fold trains on, the run falls back
   *   to `"predicted"` with a warning (config.json records the choice);
   * - `"predicted"`: the final stage-1 network's own (in-sample) predictions,
   *   which are better than at inference;
   * - `"union"`: the prediction with the ground truth filled in where it
   *   predicted background (a target stage 1 misses still gets patches, but
   *   the truth always lies inside the attention: an explicit option only).
   */
  trainAttention: "crossfit" | "predicted" | "union";
  /** Folds of `trainAttention: "crossfit"`. */
  folds: number;
  /**
   * Left-right mirroring of training slices (probability 0.5):
   * `"horizontal"`, `"none"`, or `"auto"` = mirror when the data are 3D
   * volumes and no label name names a side (left/right), since anatomy is
   * then bilaterally symmetric and a mirrored slice is still correctly
   * labelled; 2D images (digits, photographs) and sided labels (kidney_left)
   * are not mirrored. The run records the resolved choice in `config.json`.
   */
  flip: "auto" | "none" | "horizontal";
  /**
   * Test-time flip of stage-1 prediction: `"flip"` averages the softmax of
   * each slice with that of its left-right mirror (mirrored back), `"none"`,
   * or `"auto"` = `"flip"` exactly when the resolved `flip` mirrors the
   * training slices (so never for sided labels or 2D images). It applies
   * wherever stage 1 predicts: the evaluation cases, the training cases'
   * attention (cross-fitted or not) and `deno task predict`. The run
   * records the resolved choice in `config.json` (`coarseTtaResolved`) and
   * `model/config.json` (`coarseTta`).
   */
  tta: "auto" | "none" | "flip";
  /**
   * Neighbouring slices on each side given to stage 1 as extra input
   * channels (2.5D): `1` stacks slices `z - 1, z, z + 1` (repeated at the
   * volume's ends), `0` is one slice. It widens only the coarse network's
   * first convolution; `deno task predict` stacks the same way.
   */
  context: number;
  /**
   * In-plane reduction of stage 1's slices: `2` trains and predicts on
   * slices with half the rows and columns (2×2 blocks averaged; labels by
   * majority) and resizes the class probabilities back to full size before
   * the argmax, so stage 1 is a coarse map at about a quarter of the cost
   * and stage 3 refines it at full resolution (the paper's split: a coarse
   * localiser, then per-target refinement). `1` keeps full resolution.
   */
  downsample: number;
  /** Random rotation of training slices, uniform in ±degrees (0 = off). */
  rotation: number;
  /** Random zoom range of training slices (`[1, 1]` = off). */
  scale: [number, number];
  /** Random shift of training slices, as a fraction of each side (0 = off). */
  translate: number;
  /**
   * Random elastic warp of training slices: a 4 × 4 grid of control points
   * each moved by up to this fraction of the slice's shorter side along
   * each axis, blended bilinearly in between (0 = off).
   */
  elastic: number;
  /**
   * Random intensity (scale, shift, gamma) or colour (RGB) jitter of
   * training slices: `true`, `false`, or `"auto"` = on unless the images are
   * mapped through a fixed HU window (CT intensities are calibrated, so
   * jitter only blurs the contrasts that tell organs apart; MRI and photo
   * intensities vary between scanners and cameras). The run records the
   * resolved choice in `config.json`.
   */
  jitter: "auto" | boolean;
  /**
   * Cross-entropy class weights: `"none"`, or `"inverse-sqrt"` = each class
   * weighted by 1/√(its share of training pixels), scaled so the average
   * pixel weighs 1 (the weighted mean divides by the summed weights, as
   * PyTorch's `CrossEntropyLoss(weight=…)`), so small organs are not
   * drowned by background and liver.
   */
  classWeights: "none" | "inverse-sqrt";
}

/** Stage 2: contrastive (or other) pre-training of the encoder. */
export interface PretrainConfig {
  /** The method. */
  method: PretrainMethod;
  /** Epochs, or `"auto"` (sized from the data). */
  epochs: Epochs;
  /** Steps per epoch (0 = one pass over the patch index). */
  stepsPerEpoch: number;
  /** Patches per step (each gives `views` views). */
  batchSize: number;
  /** SGD learning rate. */
  lr: number;
  /** SGD momentum. */
  momentum: number;
  /** L2 weight decay. */
  weightDecay: number;
  /** Learning-rate schedule. */
  schedule: LrSchedule;
  /** Contrastive temperature (0.1 for CT, 0.07 for natural images). */
  temperature: number;
  /** Patch centres per target per slice. */
  perTarget: number;
  /**
   * Balance the stream: each sample first draws a group (a target, a
   * domain, or a (domain, target) pair) uniformly, so rare ones are seen as
   * often as common ones.
   */
  balance: "none" | "target" | "domain" | "domain-target";
  /**
   * Consecutive samples drawn from one group (with `balance` on): 2 or more
   * gives every anchor of a supervised contrastive batch a positive besides
   * its own twin view.
   */
  groupSize: number;
  /**
   * Random resized crop of the pairwise augmentation, as `[low, high]`
   * fractions of the patch area (the authors': 0.3–0.7 of 128-pixel patches).
   */
  cropScale: [number, number];
  /**
   * Random horizontal flip of the views: `"horizontal"`, `"none"`, or
   * `"auto"` = the rule of `coarse.flip` (mirror only 3D volumes whose label
   * names name no side). A mirrored view of `kidney_left` looks like
   * `kidney_right`, and a mirrored digit is no digit: such a flip is not a
   * label-preserving augmentation, and for `ce`, `supcon` and `agcl` it
   * makes two targets' views indistinguishable. The run records the
   * resolved choice in `config.json`.
   */
  flip: "auto" | "none" | "horizontal";
  /**
   * Intensity (CT/MRI) or colour (RGB) jitter of the views: `true`,
   * `false`, or `"auto"` = on unless the images come through a fixed HU
   * window (calibrated CT intensities are what tells organs apart, as for
   * `coarse.jitter`).
   */
  jitter: "auto" | boolean;
  /**
   * Batches of BN calibration for `method: "none"`: the untrained encoder's
   * running statistics are estimated on training patches (no weight
   * changes), so the baseline is not run with the initial mean 0, variance 1.
   */
  calibrationBatches: number;
}

/** Stage 3: frozen encoder, decoder trained with Dice. */
export interface SegmentConfig {
  /** Epochs, or `"auto"` (sized from the data). */
  epochs: Epochs;
  /** Steps per epoch (0 = one pass over the patch index). */
  stepsPerEpoch: number;
  /** Patches per step. */
  batchSize: number;
  /** Adam learning rate. */
  lr: number;
  /**
   * Learning-rate schedule: `"constant"` (the authors') or `"cosine"` (from
   * `lr` to 0 over the stage, so the decoder that is kept is not wherever a
   * constant rate's last step threw it: on the 12-case phantom a constant
   * 3e-3 left the held-out Dice swinging ±0.03 from epoch to epoch).
   */
  schedule: "constant" | "cosine";
  /** Patch centres per target per slice. */
  perTarget: number;
  /**
   * The loss: `"dice"` (soft Dice per patch, averaged: the authors'),
   * `"batch-dice"` (one soft Dice over the whole batch, so patches whose
   * truth is empty, from attention false positives, do not each cost 1),
   * `"target-dice"` (batch Dice within each target of the batch, averaged
   * over its targets, so a small organ weighs as much as the liver) or
   * `"dice-ce"` (batch Dice plus pixel cross-entropy).
   */
  loss: "dice" | "batch-dice" | "target-dice" | "dice-ce";
  /**
   * The decoder's output: `"binary"` (background and foreground, the same
   * two classes for every target, which is told only by the attention
   * channel) or `"targets"` (background and one class per target, softmax
   * over all, as the paper's last 1×1 convolution with "the total number
   * of the semantic target classes"): a patch's foreground is its own
   * target's class, so the decoder must also tell which target the
   * attention points at, from the frozen encoder's features.
   */
  head: "binary" | "targets";
}

/** Volume inference. */
export interface InferenceConfig {
  /** Sliding-window overlap in [0, 1). */
  overlap: number;
  /** Tiles per forward pass. */
  batchSize: number;
  /** Blending: MONAI's `gaussian` or `constant`. */
  mode: "gaussian" | "constant";
  /** Gaussian sigma as a fraction of the patch size (MONAI: 0.125). */
  sigmaScale: number;
  /**
   * Pixels beyond a target's attention that tiling covers and fusion may
   * label, so that stage 3 can add what stage 1 missed (0 = only inside).
   */
  margin: number;
}

/** The run's wall-clock budget. */
export interface BudgetConfig {
  /**
   * Minutes the whole run should take (`null` = no limit): the `"auto"`
   * stages are scaled to fit, using step times measured at the start of
   * the run (`deno task train --minutes N`).
   */
  minutes: number | null;
  /**
   * With `minutes`: also scale the `"auto"` stages above their data-sized
   * budget when the minutes allow (else they are only ever shortened).
   */
  fill: boolean;
}

/** Everything a run needs; saved as `RUN/config.json`. */
export interface PipelineConfig {
  /** A `dataset.json` or a PASCAL VOC folder; `null` = the embedded phantom. */
  data: string | null;
  /** The embedded phantom's size, used when `data` is `null`. */
  phantom: { cases: number; size: [number, number, number] };
  /** Seed for everything random. */
  seed: number;
  /** Fraction of training held out for evaluation when the dataset has no validation list. */
  validationFraction: number;
  /**
   * Intensity mapping: mode, CT window and percentiles (see
   * {@linkcode IntensityConfig}). A bare mode (`"window"`) is accepted by
   * {@linkcode mergeConfig} as `{ mode: "window" }`.
   */
  intensity: IntensityConfig;
  /** Patch size (square) for stages 2, 3 and inference. */
  patchSize: number;
  /** Views per patch in stage 2. */
  views: number;
  /** Model shape. */
  model: ModelConfig;
  /** Stage 1. */
  coarse: CoarseConfig;
  /** Stage 2. */
  pretrain: PretrainConfig;
  /** Stage 3. */
  segment: SegmentConfig;
  /** Inference. */
  inference: InferenceConfig;
  /** Wall-clock budget. */
  budget: BudgetConfig;
}

/** A partial config: any subset of fields, nested objects partial too. */
export interface PartialConfig {
  /** See {@linkcode PipelineConfig.data}. */
  data?: string | null;
  /** See {@linkcode PipelineConfig.phantom}. */
  phantom?: Partial<PipelineConfig["phantom"]>;
  /** See {@linkcode PipelineConfig.seed}. */
  seed?: number;
  /** See {@linkcode PipelineConfig.validationFraction}. */
  validationFraction?: number;
  /** See {@linkcode PipelineConfig.intensity}; a bare mode is accepted. */
  intensity?: IntensityMode | Partial<IntensityConfig>;
  /** See {@linkcode PipelineConfig.patchSize}. */
  patchSize?: number;
  /** See {@linkcode PipelineConfig.views}. */
  views?: number;
  /** See {@linkcode PipelineConfig.model}. */
  model?: Partial<ModelConfig>;
  /** See {@linkcode PipelineConfig.coarse}. */
  coarse?: Partial<CoarseConfig>;
  /** See {@linkcode PipelineConfig.pretrain}. */
  pretrain?: Partial<PretrainConfig>;
  /** See {@linkcode PipelineConfig.segment}. */
  segment?: Partial<SegmentConfig>;
  /** See {@linkcode PipelineConfig.inference}. */
  inference?: Partial<InferenceConfig>;
  /** See {@linkcode PipelineConfig.budget}. */
  budget?: Partial<BudgetConfig>;
}

const TINY: PipelineConfig = {
  data: null,
  phantom: { cases: 8, size: [128, 128, 12] },
  seed: 0,
  validationFraction: 0.34,
  intensity: structuredClone(DEFAULT_INTENSITY) as IntensityConfig,
  patchSize: 32,
  views: 2,
  model: {
    backbone: 18,
    widthMultiplier: 0.125,
    stem: "cifar",
    outputStride: 8,
    asppChannels: 16,
    asppRates: [2, 4, 6],
    lowLevelSkip: true,
    lowLevelSource: "stem",
    projectionHidden: 0,
    projectionDim: 32,
  },
  coarse: {
    masks: null,
    epochs: "auto",
    batchSize: 4,
    lr: 3e-3,
    schedule: "cosine",
    widthMultiplier: 0.25,
    asppChannels: 32,
    lowLevelSkip: true,
    dilate: 1,
    trainAttention: "crossfit",
    folds: 2,
    flip: "auto",
    tta: "auto",
    context: 0,
    downsample: 1,
    rotation: 10,
    scale: [0.9, 1.1],
    translate: 0.05,
    elastic: 0,
    jitter: "auto",
    classWeights: "inverse-sqrt",
  },
  pretrain: {
    method: "agcl",
    epochs: "auto",
    stepsPerEpoch: 100,
    batchSize: 8,
    lr: 0.01,
    momentum: 0.9,
    weightDecay: 1e-4,
    schedule: "cosine",
    temperature: 0.1,
    perTarget: 4,
    balance: "domain-target",
    groupSize: 2,
    cropScale: [0.3, 0.7],
    flip: "auto",
    jitter: "auto",
    calibrationBatches: 50,
  },
  segment: {
    epochs: "auto",
    stepsPerEpoch: 50,
    batchSize: 8,
    lr: 3e-3,
    schedule: "cosine",
    perTarget: 4,
    loss: "target-dice",
    head: "binary",
  },
  inference: {
    overlap: 0.25,
    batchSize: 16,
    mode: "gaussian",
    sigmaScale: 0.125,
    margin: 4,
  },
  budget: { minutes: null, fill: false },
};

function paper(backbone: 50 | 101): PipelineConfig {
  return {
    ...structuredClone(TINY),
    phantom: { cases: 20, size: [256, 256, 48] },
    patchSize: 128,
    model: {
      backbone,
      widthMultiplier: 1,
      stem: "imagenet",
      outputStride: 8,
      asppChannels: 512,
      asppRates: [6, 12, 18],
      lowLevelSkip: false,
      lowLevelSource: "layer1",
      projectionHidden: 0,
      projectionDim: 256,
    },
    coarse: {
      masks: null,
      epochs: 23,
      batchSize: 4,
      lr: 1e-4,
      schedule: "constant",
      widthMultiplier: 1,
      asppChannels: 256,
      lowLevelSkip: true,
      dilate: 4,
      trainAttention: "crossfit",
      folds: 2,
      flip: "auto",
      tta: "auto",
      context: 0,
      downsample: 1,
      rotation: 10,
      scale: [0.9, 1.1],
      translate: 0.05,
      elastic: 0,
      jitter: "auto",
      classWeights: "none",
    },
    pretrain: {
      method: "agcl",
      epochs: 5,
      stepsPerEpoch: 0,
      batchSize: 4,
      lr: 5e-4,
      momentum: 0.9,
      weightDecay: 1e-4,
      schedule: "cosine",
      temperature: 0.1,
      perTarget: 30,
      balance: "domain-target",
      groupSize: 2,
      cropScale: [0.3, 0.7],
      flip: "auto",
      jitter: "auto",
      calibrationBatches: 50,
    },
    segment: {
      epochs: 10,
      stepsPerEpoch: 0,
      batchSize: 4,
      lr: 1e-4,
      schedule: "constant",
      perTarget: 30,
      loss: "dice",
      head: "targets",
    },
    inference: {
      overlap: 0.25,
      batchSize: 8,
      mode: "gaussian",
      sigmaScale: 0.125,
      margin: 8,
    },
  };
}

/**
 * The presets: `tiny` (a CPU demo on an 8-case 128×128×12 phantom, 2
 * cases held out: ResNet-18 at width 1/8 with the CIFAR stem, 32×32
 * patches, a coarse DeepLabv3+ with class-weighted cross-entropy, batch
 * Dice and slice augmentation, cross-fitted (2-fold) training attention
 * grown by 1 pixel, pre-training on batches balanced by (domain, target)
 * in pairs, target-Dice decoder training with the low-level skip, fusion
 * up to 4 pixels beyond the attention; every stage's epochs `"auto"`,
 * sized from the data: on the phantom 60 coarse epochs under a cosine lr,
 * 400 pre-training steps and 1000 decoder steps; about 7 minutes on 2
 * idle cores with oneDNN),
 * `paper-r50` and `paper-r101` (the paper's
 * settings: ImageNet stem, output stride 8, ASPP 512 at rates 6/12/18,
 * 128×128 patches, 30 per target per slice, batch 4, SGD 5e-4 with momentum
 * 0.9 and weight decay 1e-4 for 5 epochs, T = 0.1, Adam 1e-4 for 10 decoder
 * epochs of a skip-free decoder with a class per target, coarse model 23
 * epochs).
 */
export const PRESETS: Readonly<Record<PresetName, PipelineConfig>> = Object
  .freeze({
    tiny: TINY,
    "paper-r50": paper(50),
    "paper-r101": paper(101),
  });

/** Names of {@linkcode PRESETS}. */
export type PresetName = "tiny" | "paper-r50" | "paper-r101";

/** Returns `true` when `name` is a preset name. */
export function isPresetName(name: string): name is PresetName {
  return name === "tiny" || name === "paper-r50" || name === "paper-r101";
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function fail(where: string, msg: string): never {
  throw new RangeError(`Invalid config field '${where}': ${msg}`);
}

function checkKeys(
  value: Record<string, unknown>,
  template: Record<string, unknown>,
  prefix: string,
): void {
  const valid = Object.keys(template);
  for (const key of Object.keys(value)) {
    if (!valid.includes(key)) {
      const where = prefix ? `${prefix}.${key}` : key;
      throw new RangeError(
        `Unknown config field '${where}': valid fields${
          prefix ? ` of '${prefix}'` : ""
        } are ${valid.map((k) => `'${k}'`).join(", ")}`,
      );
    }
  }
}

/**
 * Merges a partial config over `base` (a preset), field by field, refusing
 * unknown fields and values of the wrong type. The result is validated.
 *
 * @param base The config to start from (not modified).
 * @param override Fields to replace; nested objects merge, arrays replace.
 * @returns A new, validated config.
 * @throws {RangeError} For an unknown field (the message lists the valid
 * ones) or a value of the wrong type or range.
 *
 * @example Override one field of a preset
 * ```ts
 * import { mergeConfig, PRESETS } from "@agcl/agcl/pipeline";
 * import assert from "node:assert/strict";
 *
 * const config = mergeConfig(PRESETS.tiny, { pretrain: { method: "supcon" } });
 * assert.equal(config.pretrain.method, "supcon");
 * assert.equal(config.patchSize, PRESETS.tiny.patchSize);
 * ```
 */
export function mergeConfig(
  base: PipelineConfig,
  override: unknown,
): PipelineConfig {
  if (!isObject(override)) {
    throw new RangeError(
      `Cannot merge config as the override must be an object: current value is ${
        JSON.stringify(override)
      }`,
    );
  }
  const merged = mergeInto(
    structuredClone(base) as unknown as Record<string, unknown>,
    override,
    "",
  );
  validateConfig(merged);
  return merged as unknown as PipelineConfig;
}

function mergeInto(
  target: Record<string, unknown>,
  override: Record<string, unknown>,
  prefix: string,
): Record<string, unknown> {
  checkKeys(override, target, prefix);
  for (const [key, raw] of Object.entries(override)) {
    const where = prefix ? `${prefix}.${key}` : key;
    const current = target[key];
    // A bare mode, as configs before `intensity.window` wrote it.
    const value = where === "intensity" && typeof raw === "string"
      ? { mode: raw }
      : raw;
    if (isObject(current) && key !== "phantom") {
      if (!isObject(value)) fail(where, "expected an object");
      target[key] = mergeInto(current, value, where);
    } else if (isObject(current)) {
      if (!isObject(value)) fail(where, "expected an object");
      checkKeys(value, current, where);
      target[key] = { ...current, ...value };
    } else {
      target[key] = value;
    }
  }
  return target;
}

function num(
  v: unknown,
  where: string,
  opts: { int?: boolean; min?: number; max?: number; minExclusive?: boolean },
): void {
  if (typeof v !== "number" || !Number.isFinite(v)) {
    fail(
      where,
      `expected a finite number: current value is ${JSON.stringify(v)}`,
    );
  }
  if (opts.int && !Number.isInteger(v)) {
    fail(where, `expected an integer: current value is ${v}`);
  }
  if (opts.min !== undefined) {
    if (opts.minExclusive ? !(v > opts.min) : !(v >= opts.min)) {
      fail(
        where,
        `expected ${
          opts.minExclusive ? ">" : ">="
        } ${opts.min}: current value is ${v}`,
      );
    }
  }
  if (opts.max !== undefined && !(v <= opts.max)) {
    fail(where, `expected <= ${opts.max}: current value is ${v}`);
  }
}

function epochs(v: unknown, where: string): void {
  if (v === "auto") return;
  if (typeof v === "string") {
    fail(where, `expected an integer >= 0 or "auto": current value is "${v}"`);
  }
  num(v, where, { int: true, min: 0 });
}

function oneOf(v: unknown, where: string, choices: readonly unknown[]): void {
  if (!choices.includes(v)) {
    fail(
      where,
      `expected one of ${
        choices.map((c) => JSON.stringify(c)).join(", ")
      }: current value is ${JSON.stringify(v)}`,
    );
  }
}

function validateIntensity(c: IntensityConfig): void {
  oneOf(c.mode, "intensity.mode", ["auto", "window", "percentile", "none"]);
  const names = Object.keys(INTENSITY_WINDOWS);
  const w = c.window as unknown;
  if (typeof w === "string") {
    oneOf(w, "intensity.window", names);
  } else if (
    !Array.isArray(w) || w.length !== 2 ||
    !w.every((v) => typeof v === "number" && Number.isFinite(v)) ||
    !(w[0] < w[1])
  ) {
    fail(
      "intensity.window",
      `expected [min, max] in HU with min < max, or one of ${
        names.map((n) => `"${n}"`).join(", ")
      }: current value is ${JSON.stringify(w)}`,
    );
  }
  const p = c.percentiles as unknown;
  if (
    !Array.isArray(p) || p.length !== 2 ||
    !p.every((v) => typeof v === "number" && Number.isFinite(v)) ||
    !(p[0] >= 0 && p[0] < p[1] && p[1] <= 100)
  ) {
    fail(
      "intensity.percentiles",
      `expected [lo, hi] with 0 <= lo < hi <= 100: current value is ${
        JSON.stringify(p)
      }`,
    );
  }
}

/**
 * Checks every field of a full config: no unknown or missing field, each of
 * the right type and range.
 *
 * @param config The config to check.
 * @throws {RangeError} Naming the first bad field, with the valid fields or values.
 */
export function validateConfig(
  config: unknown,
): asserts config is PipelineConfig {
  if (!isObject(config)) fail("(root)", "expected an object");
  const t = TINY as unknown as Record<string, unknown>;
  checkKeys(config, t, "");
  for (const key of Object.keys(t)) {
    if (!(key in config)) fail(key, "missing");
    const sub = t[key];
    if (isObject(sub)) {
      const value = config[key];
      if (!isObject(value)) fail(key, "expected an object");
      checkKeys(value, sub, key);
      for (const k of Object.keys(sub)) {
        if (!(k in value)) fail(`${key}.${k}`, "missing");
      }
    }
  }
  const c = config as unknown as PipelineConfig;
  if (c.data !== null && typeof c.data !== "string") {
    fail("data", "expected a path or null");
  }
  num(c.phantom.cases, "phantom.cases", { int: true, min: 2 });
  if (!Array.isArray(c.phantom.size) || c.phantom.size.length !== 3) {
    fail("phantom.size", "expected [nx, ny, nz]");
  }
  c.phantom.size.forEach((s, i) =>
    num(s, `phantom.size[${i}]`, { int: true, min: 8 })
  );
  num(c.seed, "seed", { int: true, min: 0 });
  num(c.validationFraction, "validationFraction", { min: 0, max: 0.9 });
  validateIntensity(c.intensity);
  num(c.patchSize, "patchSize", { int: true, min: 8 });
  num(c.views, "views", { int: true, min: 1, max: 8 });
  oneOf(c.model.backbone, "model.backbone", [18, 34, 50, 101]);
  num(c.model.widthMultiplier, "model.widthMultiplier", {
    min: 0,
    minExclusive: true,
    max: 4,
  });
  oneOf(c.model.stem, "model.stem", ["imagenet", "cifar"]);
  const strides = c.model.stem === "cifar" ? [1, 2, 4, 8] : [4, 8, 16, 32];
  if (!strides.includes(c.model.outputStride)) {
    fail(
      "model.outputStride",
      `expected one of ${
        strides.join(", ")
      } with the ${c.model.stem} stem: current value is ${
        JSON.stringify(c.model.outputStride)
      }`,
    );
  }
  num(c.model.asppChannels, "model.asppChannels", { int: true, min: 1 });
  if (!Array.isArray(c.model.asppRates) || c.model.asppRates.length === 0) {
    fail("model.asppRates", "expected a non-empty array of positive integers");
  }
  c.model.asppRates.forEach((r, i) =>
    num(r, `model.asppRates[${i}]`, { int: true, min: 1 })
  );
  if (typeof c.model.lowLevelSkip !== "boolean") {
    fail("model.lowLevelSkip", "expected a boolean");
  }
  if (
    c.model.lowLevelSource !== "layer1" && c.model.lowLevelSource !== "stem"
  ) {
    fail("model.lowLevelSource", 'expected "layer1" or "stem"');
  }
  num(c.model.projectionHidden, "model.projectionHidden", {
    int: true,
    min: 0,
  });
  num(c.model.projectionDim, "model.projectionDim", { int: true, min: 1 });
  if (c.coarse.masks !== null && typeof c.coarse.masks !== "string") {
    fail("coarse.masks", "expected a folder path or null");
  }
  epochs(c.coarse.epochs, "coarse.epochs");
  num(c.coarse.batchSize, "coarse.batchSize", { int: true, min: 1 });
  num(c.coarse.lr, "coarse.lr", { min: 0, minExclusive: true });
  num(c.coarse.widthMultiplier, "coarse.widthMultiplier", {
    min: 0,
    minExclusive: true,
    max: 4,
  });
  num(c.coarse.asppChannels, "coarse.asppChannels", { int: true, min: 1 });
  if (typeof c.coarse.lowLevelSkip !== "boolean") {
    fail("coarse.lowLevelSkip", "expected a boolean");
  }
  num(c.coarse.dilate, "coarse.dilate", { int: true, min: 0 });
  oneOf(c.coarse.trainAttention, "coarse.trainAttention", [
    "crossfit",
    "predicted",
    "union",
  ]);
  num(c.coarse.folds, "coarse.folds", { int: true, min: 2, max: 10 });
  oneOf(c.coarse.schedule, "coarse.schedule", ["constant", "cosine"]);
  oneOf(c.coarse.flip, "coarse.flip", ["auto", "none", "horizontal"]);
  oneOf(c.coarse.tta, "coarse.tta", ["auto", "none", "flip"]);
  num(c.coarse.context, "coarse.context", { int: true, min: 0, max: 4 });
  num(c.coarse.downsample, "coarse.downsample", { int: true, min: 1, max: 8 });
  num(c.coarse.rotation, "coarse.rotation", { min: 0, max: 180 });
  if (
    !Array.isArray(c.coarse.scale) || c.coarse.scale.length !== 2 ||
    c.coarse.scale.some((v) => typeof v !== "number" || !(v > 0)) ||
    !(c.coarse.scale[0] <= c.coarse.scale[1])
  ) {
    fail(
      "coarse.scale",
      `expected [low, high] with 0 < low <= high: current value is ${
        JSON.stringify(c.coarse.scale)
      }`,
    );
  }
  num(c.coarse.translate, "coarse.translate", { min: 0, max: 0.5 });
  num(c.coarse.elastic, "coarse.elastic", { min: 0, max: 0.5 });
  oneOf(c.coarse.jitter, "coarse.jitter", ["auto", true, false]);
  oneOf(c.coarse.classWeights, "coarse.classWeights", [
    "none",
    "inverse-sqrt",
  ]);
  oneOf(c.pretrain.method, "pretrain.method", PRETRAIN_METHODS);
  epochs(c.pretrain.epochs, "pretrain.epochs");
  num(c.pretrain.stepsPerEpoch, "pretrain.stepsPerEpoch", {
    int: true,
    min: 0,
  });
  num(c.pretrain.batchSize, "pretrain.batchSize", { int: true, min: 2 });
  num(c.pretrain.lr, "pretrain.lr", { min: 0, minExclusive: true });
  num(c.pretrain.momentum, "pretrain.momentum", { min: 0, max: 0.999 });
  num(c.pretrain.weightDecay, "pretrain.weightDecay", { min: 0 });
  oneOf(c.pretrain.schedule, "pretrain.schedule", ["constant", "cosine"]);
  num(c.pretrain.temperature, "pretrain.temperature", {
    min: 0,
    minExclusive: true,
  });
  num(c.pretrain.perTarget, "pretrain.perTarget", { int: true, min: 1 });
  oneOf(c.pretrain.balance, "pretrain.balance", [
    "none",
    "target",
    "domain",
    "domain-target",
  ]);
  num(c.pretrain.groupSize, "pretrain.groupSize", { int: true, min: 1 });
  if (
    !Array.isArray(c.pretrain.cropScale) || c.pretrain.cropScale.length !== 2 ||
    c.pretrain.cropScale.some((v) =>
      typeof v !== "number" || !(v > 0 && v <= 1)
    ) ||
    !(c.pretrain.cropScale[0] <= c.pretrain.cropScale[1])
  ) {
    fail(
      "pretrain.cropScale",
      `expected [low, high] with 0 < low <= high <= 1: current value is ${
        JSON.stringify(c.pretrain.cropScale)
      }`,
    );
  }
  oneOf(c.pretrain.flip, "pretrain.flip", ["auto", "none", "horizontal"]);
  oneOf(c.pretrain.jitter, "pretrain.jitter", ["auto", true, false]);
  num(c.pretrain.calibrationBatches, "pretrain.calibrationBatches", {
    int: true,
    min: 0,
  });
  epochs(c.segment.epochs, "segment.epochs");
  num(c.segment.stepsPerEpoch, "segment.stepsPerEpoch", { int: true, min: 0 });
  num(c.segment.batchSize, "segment.batchSize", { int: true, min: 1 });
  num(c.segment.lr, "segment.lr", { min: 0, minExclusive: true });
  oneOf(c.segment.schedule, "segment.schedule", ["constant", "cosine"]);
  oneOf(c.segment.head, "segment.head", ["binary", "targets"]);
  num(c.segment.perTarget, "segment.perTarget", { int: true, min: 1 });
  oneOf(c.segment.loss, "segment.loss", [
    "dice",
    "batch-dice",
    "target-dice",
    "dice-ce",
  ]);
  num(c.inference.overlap, "inference.overlap", { min: 0, max: 0.95 });
  num(c.inference.batchSize, "inference.batchSize", { int: true, min: 1 });
  oneOf(c.inference.mode, "inference.mode", ["gaussian", "constant"]);
  num(c.inference.sigmaScale, "inference.sigmaScale", {
    min: 0,
    minExclusive: true,
  });
  num(c.inference.margin, "inference.margin", { int: true, min: 0 });
  if (c.budget.minutes !== null) {
    num(c.budget.minutes, "budget.minutes", { min: 0, minExclusive: true });
  }
  if (typeof c.budget.fill !== "boolean") {
    fail("budget.fill", "expected a boolean");
  }
}
