/**
 * ResNet-18/34/50/101 encoders (He et al. 2016, torchvision's v1.5 layout:
 * the stride sits on the 3×3 convolution) as functions of named variables.
 */
import { positiveInt } from "../_checks.ts";
import * as tf from "@tensorflow/tfjs";
import { Prng } from "../random/prng.ts";
import {
  assertImage,
  type ConvBn,
  convBn,
  disposeAll,
  ParamBuilder,
} from "./_layers.ts";
import type { ApplyOptions, Module } from "./module.ts";

/** Network depths and their blocks per stage (torchvision's counts). */
const LAYERS: Readonly<
  Record<ResNetDepth, readonly [number, number, number, number]>
> = {
  18: [2, 2, 2, 2],
  34: [3, 4, 6, 3],
  50: [3, 4, 6, 3],
  101: [3, 4, 23, 3],
};

/** Supported ResNet depths: basic blocks for 18/34, bottlenecks for 50/101. */
export type ResNetDepth = 18 | 34 | 50 | 101;

/** The stem: `"imagenet"` (7×7 stride 2 + max-pool) or `"cifar"` (3×3 stride 1, no pool). */
export type ResNetStem = "imagenet" | "cifar";

/** Options for {@linkcode createEncoder}. */
export interface EncoderOptions {
  /** Depth. @default {50} */
  depth?: ResNetDepth;
  /** Input channels: image channels plus one attention channel (2 for CT, 4 for RGB). @default {3} */
  inChannels?: number;
  /**
   * `"imagenet"`: 7×7 stride-2 conv + 3×3 stride-2 max-pool, as the paper's
   * supplement describes; `"cifar"`: 3×3 stride-1 conv, no max-pool, as the
   * authors' code uses.
   * @default {"imagenet"}
   */
  stem?: ResNetStem;
  /**
   * Ratio of input to feature-map size. The stages' strides are replaced by
   * dilation from the last stage backwards (torchvision's
   * `replace_stride_with_dilation`) until the ratio is reached: 32, 16, 8 or 4
   * with the ImageNet stem, 8, 4, 2 or 1 with the CIFAR stem (1: no stage
   * strides, every feature map at the input's size).
   * @default {32 for "imagenet", 8 for "cifar"}
   */
  outputStride?: number;
  /** Multiplies every width (64, 128, 256, 512 and the stem) for small presets. @default {1} */
  widthMultiplier?: number;
  /** Seed for the He-normal initialisation. @default {0} */
  seed?: number;
  /** Generator to draw the initial weights from (overrides `seed`). */
  prng?: Prng;
}

/** The resolved configuration of an {@linkcode Encoder}. */
export interface EncoderConfig {
  /** Room for fields added by callers that save the config. */
  [key: string]: unknown;
  /** Depth: 18, 34, 50 or 101. */
  depth: ResNetDepth;
  /** Input channels. */
  inChannels: number;
  /** Stem kind. */
  stem: ResNetStem;
  /** Ratio of input to feature-map size. */
  outputStride: number;
  /** Width multiplier. */
  widthMultiplier: number;
  /** Initialisation seed. */
  seed: number;
}

/**
 * Where DeepLabv3+ low-level features are taken: `"layer1"`'s output (the
 * usual choice, stride 4 with the ImageNet stem) or the stem's (`conv1`, BN,
 * ReLU: one 3×3 conv at stride 1 with the CIFAR stem, so its features are
 * local edges, not shapes).
 */
export type LowLevelSource = "layer1" | "stem";

/** Options for {@linkcode Encoder.apply}. */
export interface EncoderApplyOptions extends ApplyOptions {
  /**
   * Also return low-level features: `true` or `"layer1"` for `layer1`'s
   * output (DeepLabv3+'s), `"stem"` for the stem's.
   * @default {false}
   */
  lowLevel?: boolean | LowLevelSource;
}

/** What {@linkcode Encoder.apply} returns. */
export interface EncoderOutput {
  /** Makes the output a `tf.TensorContainer`, so `tf.dispose` takes it whole. */
  [key: string]: tf.Tensor | undefined;
  /** Final feature map `[batch, height/outputStride, width/outputStride, featureChannels]`. */
  features: tf.Tensor4D;
  /** Global average of `features`: `[batch, featureChannels]`. */
  pooled: tf.Tensor2D;
  /**
   * The low-level features asked for: `layer1`'s output
   * `[batch, h1, w1, lowLevelChannels]` or the stem's
   * `[batch, h0, w0, stemChannels]`.
   */
  lowLevel?: tf.Tensor4D;
}

/** A ResNet encoder; see {@linkcode createEncoder}. */
export interface Encoder extends Module {
  /** The resolved configuration. */
  readonly config: Readonly<EncoderConfig>;
  /** Channels of `features` and `pooled` (2048 for R50/R101, 512 for R18/R34). */
  readonly featureChannels: number;
  /** Channels of `layer1`'s output (256 for R50, 64 for R18). */
  readonly lowLevelChannels: number;
  /** Channels of the stem's output (64 at width 1). */
  readonly stemChannels: number;
  /**
   * Runs the encoder.
   *
   * @param x `[batch, height, width, inChannels]`, float32, NHWC.
   * @param options `training` (batch statistics, updates `state`) and `lowLevel`.
   * @returns The feature map and its global average (and `layer1`'s output).
   * @throws {TypeError} If `x` is not `[batch, height, width, inChannels]` float32.
   */
  apply(x: tf.Tensor4D, options?: EncoderApplyOptions): EncoderOutput;
}

interface Block {
  units: ConvBn[]; // conv1/bn1, conv2/bn2 (, conv3/bn3)
  downsample?: ConvBn;
}

function resolveOptions(options: EncoderOptions): EncoderConfig {
  const {
    depth = 50,
    inChannels = 3,
    stem = "imagenet",
    widthMultiplier = 1,
    seed = 0,
  } = options;
  const fn = "createEncoder";
  if (!(depth in LAYERS)) {
    throw new RangeError(
      `Cannot ${fn} as 'depth' must be 18, 34, 50 or 101: current value is ${depth}`,
    );
  }
  positiveInt(inChannels, "inChannels", fn);
  if (stem !== "imagenet" && stem !== "cifar") {
    throw new RangeError(
      `Cannot ${fn} as 'stem' must be "imagenet" or "cifar": current value is "${stem}"`,
    );
  }
  const natural = stem === "imagenet" ? 32 : 8;
  const outputStride = options.outputStride ?? natural;
  const allowed = [natural, natural / 2, natural / 4, natural / 8];
  if (!allowed.includes(outputStride)) {
    throw new RangeError(
      `Cannot ${fn} as 'outputStride' must be ${
        allowed.join(", ")
      } with the "${stem}" stem: current value is ${outputStride}`,
    );
  }
  if (!(widthMultiplier > 0) || !Number.isFinite(widthMultiplier)) {
    throw new RangeError(
      `Cannot ${fn} as 'widthMultiplier' must be > 0: current value is ${widthMultiplier}`,
    );
  }
  if (!Number.isFinite(seed)) {
    throw new RangeError(
      `Cannot ${fn} as 'seed' must be a finite number: current value is ${seed}`,
    );
  }
  return { depth, inChannels, stem, outputStride, widthMultiplier, seed };
}

/** Width of a stage scaled by the multiplier (at least 1). */
function scaled(base: number, m: number): number {
  return Math.max(1, Math.round(base * m));
}

/**
 * Creates a ResNet encoder with He-normal convolutions and BN initialised
 * as torchvision does (γ = 1, β = 0), with torchvision's parameter names
 * (`conv1.weight`, `bn1.running_mean`, `layer1.0.conv1.weight`,
 * `layer2.0.downsample.0.weight`, …) and no `fc`. Stage strides replaced by
 * dilation follow torchvision's `replace_stride_with_dilation` (the first
 * block of a dilated stage keeps the previous dilation); unlike torchvision,
 * basic blocks (18/34) may be dilated too.
 *
 * @example A narrow ResNet-18 on a 2-channel (CT + attention) patch
 * ```ts
 * import { createEncoder } from "@agcl/agcl/models";
 * import * as tf from "@tensorflow/tfjs";
 * import assert from "node:assert/strict";
 *
 * const encoder = createEncoder({ depth: 18, inChannels: 2, stem: "cifar", widthMultiplier: 0.125, seed: 1 });
 * const x = tf.zeros([2, 32, 32, 2]) as tf.Tensor4D;
 * const { features, pooled } = encoder.apply(x, { training: false });
 * assert.deepEqual(features.shape, [2, 4, 4, 64]);
 * assert.deepEqual(pooled.shape, [2, encoder.featureChannels]);
 * tf.dispose([x, features, pooled]);
 * encoder.dispose();
 * ```
 *
 * @param options Depth, input channels, stem, output stride, width, seed.
 * @returns The encoder.
 * @throws {RangeError} If an option is out of range.
 */
export function createEncoder(options: EncoderOptions = {}): Encoder {
  const config = resolveOptions(options);
  const { depth, inChannels, stem, outputStride, widthMultiplier: m } = config;
  const prng = options.prng ?? new Prng(config.seed);
  const b = new ParamBuilder(prng);
  const bottleneck = depth >= 50;
  const expansion = bottleneck ? 4 : 1;

  const stemWidth = scaled(64, m);
  const stemUnit = b.convBn("conv1", "bn1", {
    k: stem === "imagenet" ? 7 : 3,
    cin: inChannels,
    cout: stemWidth,
    stride: stem === "imagenet" ? 2 : 1,
  });
  // Stages dilated instead of strided, counted from the last.
  const natural = stem === "imagenet" ? 32 : 8;
  const nDilated = Math.round(Math.log2(natural / outputStride));
  const stages: Block[][] = [];
  let inplanes = stemWidth;
  let dilation = 1;
  for (let s = 0; s < 4; s++) {
    const planes = scaled(64 * 2 ** s, m);
    let stride = s === 0 ? 1 : 2;
    const previousDilation = dilation;
    if (s > 0 && s >= 4 - nDilated) {
      dilation *= stride;
      stride = 1;
    }
    const blocks: Block[] = [];
    for (let i = 0; i < LAYERS[depth][s]!; i++) {
      const p = `layer${s + 1}.${i}`;
      const st = i === 0 ? stride : 1;
      const d = i === 0 ? previousDilation : dilation;
      const units: ConvBn[] = [];
      if (bottleneck) {
        units.push(
          b.convBn(`${p}.conv1`, `${p}.bn1`, {
            k: 1,
            cin: inplanes,
            cout: planes,
          }),
        );
        units.push(
          b.convBn(`${p}.conv2`, `${p}.bn2`, {
            k: 3,
            cin: planes,
            cout: planes,
            stride: st,
            dilation: d,
          }),
        );
        units.push(
          b.convBn(`${p}.conv3`, `${p}.bn3`, {
            k: 1,
            cin: planes,
            cout: planes * expansion,
          }),
        );
      } else {
        units.push(
          b.convBn(`${p}.conv1`, `${p}.bn1`, {
            k: 3,
            cin: inplanes,
            cout: planes,
            stride: st,
            dilation: d,
          }),
        );
        units.push(
          b.convBn(`${p}.conv2`, `${p}.bn2`, {
            k: 3,
            cin: planes,
            cout: planes,
            dilation: d,
          }),
        );
      }
      const block: Block = { units };
      if (i === 0 && (st !== 1 || inplanes !== planes * expansion)) {
        block.downsample = b.convBn(`${p}.downsample.0`, `${p}.downsample.1`, {
          k: 1,
          cin: inplanes,
          cout: planes * expansion,
          stride: st,
        });
      }
      blocks.push(block);
      inplanes = planes * expansion;
    }
    stages.push(blocks);
  }
  const featureChannels = inplanes;
  const lowLevelChannels = scaled(64, m) * expansion;
  const { params, state } = b;

  function runBlock(
    x: tf.Tensor4D,
    block: Block,
    training: boolean,
  ): tf.Tensor4D {
    const identity = block.downsample
      ? convBn(x, block.downsample, { training, relu: false })
      : x;
    const last = block.units.length - 1;
    let y = x;
    block.units.forEach((u, i) => {
      // The last unit adds the shortcut before its ReLU, inside one op.
      y = convBn(
        y,
        u,
        i < last
          ? { training, relu: true }
          : { training, relu: true, residual: identity },
      );
    });
    return y;
  }

  return {
    params,
    state,
    config,
    featureChannels,
    lowLevelChannels,
    stemChannels: stemWidth,
    trainableVariables: () => Object.values(params),
    dispose: () => disposeAll(params, state),
    apply(x: tf.Tensor4D, options: EncoderApplyOptions = {}): EncoderOutput {
      const { training = false, lowLevel = false } = options;
      assertImage(x, inChannels, "encoder");
      return tf.tidy(() => {
        let y = convBn(x, stemUnit, { training, relu: true });
        // PyTorch pads 1 on every side (tfjs 'same' would pad only the end).
        if (stem === "imagenet") y = tf.maxPool(y, 3, 2, 1);
        let low: tf.Tensor4D | undefined;
        if (lowLevel === "stem") low = y;
        stages.forEach((blocks, s) => {
          for (const block of blocks) y = runBlock(y, block, training);
          if (s === 0 && lowLevel !== "stem") low = y;
        });
        const pooled = tf.mean(y, [1, 2]) as tf.Tensor2D;
        return lowLevel
          ? { features: y, pooled, lowLevel: low! }
          : { features: y, pooled };
      });
    },
  };
}
