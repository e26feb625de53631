/**
 * DeepLab with the paper's ASPP head (supplement 6.1): a ResNet encoder,
 * then parallel branches (1×1 conv; 3×3 atrous convs at rates 6/12/18;
 * image pooling), each 512 channels with BN and ReLU, concatenated, a 1×1
 * conv to 512 (BN, ReLU), a 1×1 conv to the classes, and a bilinear
 * upsample to the input size. The DeepLabv3+ low-level skip is an option.
 */
import { positiveInt } from "../_checks.ts";
import * as tf from "@tensorflow/tfjs";
import { Prng } from "../random/prng.ts";
import { type ConvBn, convBn, disposeAll, ParamBuilder } from "./_layers.ts";
import type { ApplyOptions, Module } from "./module.ts";
import {
  createEncoder,
  type Encoder,
  type EncoderConfig,
  type EncoderOptions,
  type LowLevelSource,
} from "./resnet.ts";

/** Options for {@linkcode createDeepLab}. */
export interface DeepLabOptions extends EncoderOptions {
  /**
   * An existing (e.g. contrastively pre-trained) encoder to build on; the
   * encoder options, when given as well, must agree with its configuration.
   * The DeepLab shares its variables (as `backbone.*`) and its `dispose()`
   * disposes the encoder too.
   */
  encoder?: Encoder;
  /** Output classes (2 for the paper's binary per-target decoder). @default {2} */
  nClasses?: number;
  /** Dilation rates of the 3×3 ASPP branches. @default {[6, 12, 18]} */
  asppRates?: number[];
  /** Channels of every ASPP branch and of the projection. @default {512} */
  asppChannels?: number;
  /**
   * DeepLabv3+ decoder: `layer1`'s output projected to `lowLevelChannels`,
   * concatenated with the upsampled ASPP output, then a 3×3 conv (BN, ReLU).
   * @default {false}
   */
  lowLevelSkip?: boolean;
  /**
   * Where the skip's features come from: `"layer1"` (DeepLabv3+'s) or
   * `"stem"` (one conv deep: edges at the input's resolution with the CIFAR
   * stem, so shapes must come from the encoder's deep features).
   * @default {"layer1"}
   */
  lowLevelSource?: LowLevelSource;
  /** Width of the projected low-level features. @default {48} */
  lowLevelChannels?: number;
  /**
   * Bilinear upsampling with `align_corners=True`, as the authors' code;
   * `false` is PyTorch's default (half-pixel centres).
   * @default {true}
   */
  alignCorners?: boolean;
}

/** The resolved configuration of a {@linkcode DeepLab}. */
export interface DeepLabConfig {
  /** Room for fields added by callers that save the config. */
  [key: string]: unknown;
  /** The encoder's configuration. */
  encoder: EncoderConfig;
  /** Output classes. */
  nClasses: number;
  /** Dilation rates of the 3×3 ASPP branches. */
  asppRates: number[];
  /** Channels of the ASPP branches and projection. */
  asppChannels: number;
  /** Whether the DeepLabv3+ low-level skip is used. */
  lowLevelSkip: boolean;
  /** Where the skip's features come from. */
  lowLevelSource: LowLevelSource;
  /** Width of the projected low-level features. */
  lowLevelChannels: number;
  /** Bilinear upsampling with aligned corners. */
  alignCorners: boolean;
  /** Initialisation seed of the decoder. */
  seed: number;
}

/** Options for {@linkcode DeepLab.apply}. */
export interface DeepLabApplyOptions extends ApplyOptions {
  /**
   * Run the encoder in eval mode (running BN statistics, its `state`
   * untouched) and off the gradient tape (no gradient reaches the encoder or
   * the input, and none of its activations are kept), while the decoder
   * follows `training`: stage 3's frozen encoder. Optimise only
   * {@linkcode DeepLab.decoderVariables} then.
   * @default {false}
   */
  freezeEncoder?: boolean;
}

/** A DeepLab segmentation network; see {@linkcode createDeepLab}. */
export interface DeepLab extends Module {
  /** The resolved configuration. */
  readonly config: Readonly<DeepLabConfig>;
  /** The encoder (its variables appear here under `backbone.`). */
  readonly encoder: Encoder;
  /** The decoder's trainable variables (everything but the encoder). */
  decoderVariables(): tf.Variable[];
  /**
   * Runs the network.
   *
   * @param x `[batch, height, width, inChannels]`, float32, NHWC.
   * @param options `training` and `freezeEncoder`.
   * @returns Logits `[batch, height, width, nClasses]` at the input size.
   * @throws {TypeError} If `x` is not `[batch, height, width, inChannels]` float32.
   */
  apply(x: tf.Tensor4D, options?: DeepLabApplyOptions): tf.Tensor4D;
}

const ENCODER_KEYS = [
  "depth",
  "inChannels",
  "stem",
  "outputStride",
  "widthMultiplier",
] as const;

/**
 * Runs `encoder` in eval mode off the gradient tape (PyTorch's
 * `torch.no_grad()`): a custom gradient whose forward ops are not recorded
 * and whose gradient is zero, so a frozen-encoder step keeps none of the
 * encoder's activations for a backward pass it will never take.
 */
function frozenEncoder(
  encoder: Encoder,
  x: tf.Tensor4D,
  lowLevel: false | LowLevelSource,
): { features: tf.Tensor4D; lowLevel?: tf.Tensor4D } {
  // A custom gradient has one output: both maps travel flattened in one.
  let shapes: [number, number, number, number][] = [];
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const xi = args[0] as tf.Tensor4D;
    const out = encoder.apply(xi, { training: false, lowLevel });
    const maps = out.lowLevel ? [out.features, out.lowLevel] : [out.features];
    shapes = maps.map((m) => m.shape);
    return {
      value: maps.length === 1
        ? maps[0]!
        : tf.concat(maps.map((m) => m.reshape([-1]))),
      gradFunc: () => tf.zerosLike(xi),
    };
  });
  const value = op(x);
  if (shapes.length === 1) return { features: value as tf.Tensor4D };
  const sizes = shapes.map((s) => s.reduce((a, b) => a * b, 1));
  const [f, l] = tf.split(value, sizes);
  return {
    features: f!.reshape(shapes[0]!) as tf.Tensor4D,
    lowLevel: l!.reshape(shapes[1]!) as tf.Tensor4D,
  };
}

/**
 * Creates a DeepLab network with the paper's ASPP head. Parameters are
 * named as torchvision's `deeplabv3_resnet50`: the encoder under
 * `backbone.`, the ASPP under `classifier.0.` (`convs.0.0.weight`,
 * `convs.1.1.running_mean`, …, the pooling branch `convs.<n>.1.weight`,
 * `project.0.weight`), and the final 1×1 conv `classifier.1.{weight,bias}`.
 * With the low-level skip: `decoder.low.{0,1}.*` and `decoder.fuse.{0,1}.*`.
 *
 * @example The paper's head on a narrow encoder
 * ```ts
 * import { createDeepLab } from "@agcl/agcl/models";
 * import * as tf from "@tensorflow/tfjs";
 * import assert from "node:assert/strict";
 *
 * const net = createDeepLab({ depth: 18, inChannels: 2, stem: "cifar", widthMultiplier: 0.125, asppChannels: 16 });
 * const x = tf.zeros([1, 32, 32, 2]) as tf.Tensor4D;
 * const logits = net.apply(x);
 * assert.deepEqual(logits.shape, [1, 32, 32, 2]);
 * tf.dispose([x, logits]);
 * net.dispose();
 * ```
 *
 * @param options Encoder options (or an `encoder`), classes, ASPP rates and width, skip, seed.
 * @returns The network.
 * @throws {RangeError} If an option is out of range or disagrees with `encoder`.
 */
export function createDeepLab(options: DeepLabOptions = {}): DeepLab {
  const {
    nClasses = 2,
    asppRates = [6, 12, 18],
    asppChannels = 512,
    lowLevelSkip = false,
    lowLevelSource = "layer1",
    lowLevelChannels = 48,
    alignCorners = true,
    seed = 0,
  } = options;
  positiveInt(nClasses, "nClasses", "createDeepLab");
  positiveInt(asppChannels, "asppChannels", "createDeepLab");
  positiveInt(lowLevelChannels, "lowLevelChannels", "createDeepLab");
  if (lowLevelSource !== "layer1" && lowLevelSource !== "stem") {
    throw new RangeError(
      `Cannot createDeepLab as 'lowLevelSource' must be "layer1" or "stem": current value is "${lowLevelSource}"`,
    );
  }
  if (
    !Array.isArray(asppRates) ||
    !asppRates.every((r) => Number.isInteger(r) && r >= 1)
  ) {
    throw new RangeError(
      `Cannot createDeepLab as 'asppRates' must be positive integers: current value is [${asppRates}]`,
    );
  }
  const prng = options.prng ?? new Prng(seed);
  // Separate streams, so the decoder's initialisation does not depend on
  // whether the encoder was created here or handed in.
  const encoderPrng = new Prng(prng.nextUint32());
  const decoderPrng = new Prng(prng.nextUint32());
  let encoder: Encoder;
  if (options.encoder) {
    encoder = options.encoder;
    for (const k of ENCODER_KEYS) {
      if (options[k] !== undefined && options[k] !== encoder.config[k]) {
        throw new RangeError(
          `Cannot createDeepLab as '${k}' is ${
            options[k]
          } but the given encoder has ${k} ${encoder.config[k]}`,
        );
      }
    }
  } else {
    const { depth, inChannels, stem, outputStride, widthMultiplier } = options;
    encoder = createEncoder({
      ...(depth !== undefined ? { depth } : {}),
      ...(inChannels !== undefined ? { inChannels } : {}),
      ...(stem !== undefined ? { stem } : {}),
      ...(outputStride !== undefined ? { outputStride } : {}),
      ...(widthMultiplier !== undefined ? { widthMultiplier } : {}),
      seed,
      prng: encoderPrng,
    });
  }

  const b = new ParamBuilder(decoderPrng);
  const cin = encoder.featureChannels;
  const ch = asppChannels;
  const a = "classifier.0";
  const branches: ConvBn[] = [
    b.convBn(`${a}.convs.0.0`, `${a}.convs.0.1`, { k: 1, cin, cout: ch }),
  ];
  asppRates.forEach((rate, i) => {
    branches.push(
      b.convBn(`${a}.convs.${i + 1}.0`, `${a}.convs.${i + 1}.1`, {
        k: 3,
        cin,
        cout: ch,
        dilation: rate,
      }),
    );
  });
  const nPool = asppRates.length + 1;
  const pool = b.convBn(`${a}.convs.${nPool}.1`, `${a}.convs.${nPool}.2`, {
    k: 1,
    cin,
    cout: ch,
  });
  const project = b.convBn(`${a}.project.0`, `${a}.project.1`, {
    k: 1,
    cin: ch * (asppRates.length + 2),
    cout: ch,
  });
  let low: ConvBn | undefined;
  let fuse: ConvBn | undefined;
  if (lowLevelSkip) {
    low = b.convBn("decoder.low.0", "decoder.low.1", {
      k: 1,
      cin: lowLevelSource === "stem"
        ? encoder.stemChannels
        : encoder.lowLevelChannels,
      cout: lowLevelChannels,
    });
    fuse = b.convBn("decoder.fuse.0", "decoder.fuse.1", {
      k: 3,
      cin: ch + lowLevelChannels,
      cout: ch,
    });
  }
  const finalWeight = b.convWeight("classifier.1", 1, ch, nClasses);
  const finalBias = b.convBias("classifier.1", ch, nClasses);

  const decoderParams = b.params;
  const params: Record<string, tf.Variable> = {};
  const state: Record<string, tf.Variable> = {};
  for (const [k, v] of Object.entries(encoder.params)) {
    params[`backbone.${k}`] = v;
  }
  Object.assign(params, decoderParams);
  for (const [k, v] of Object.entries(encoder.state)) {
    state[`backbone.${k}`] = v;
  }
  Object.assign(state, b.state);
  const config: DeepLabConfig = {
    encoder: { ...encoder.config },
    nClasses,
    asppRates: [...asppRates],
    asppChannels,
    lowLevelSkip,
    lowLevelSource,
    lowLevelChannels,
    alignCorners,
    seed,
  };

  return {
    params,
    state,
    config,
    encoder,
    trainableVariables: () => Object.values(params),
    decoderVariables: () => Object.values(decoderParams),
    dispose() {
      encoder.dispose();
      disposeAll(decoderParams, b.state);
    },
    apply(x: tf.Tensor4D, options: DeepLabApplyOptions = {}): tf.Tensor4D {
      const { training = false, freezeEncoder = false } = options;
      return tf.tidy(() => {
        const lowLevel = lowLevelSkip && lowLevelSource;
        const enc = freezeEncoder
          ? frozenEncoder(encoder, x, lowLevel)
          : encoder.apply(x, { training, lowLevel });
        const f = enc.features;
        const [, h, w] = f.shape;
        const outs = branches.map((u) =>
          convBn(f, u, { training, relu: true })
        );
        // Image pooling: global average → 1×1 conv/BN/ReLU → broadcast back.
        const pooled = convBn(tf.mean(f, [1, 2], true) as tf.Tensor4D, pool, {
          training,
          relu: true,
        });
        outs.push(tf.tile(pooled, [1, h, w, 1]));
        let y = convBn(tf.concat(outs, 3), project, { training, relu: true });
        if (low && fuse && enc.lowLevel) {
          const l = convBn(enc.lowLevel, low, { training, relu: true });
          const up = tf.image.resizeBilinear(
            y,
            [l.shape[1], l.shape[2]],
            alignCorners,
            !alignCorners,
          );
          y = convBn(tf.concat([up, l], 3), fuse, { training, relu: true });
        }
        const logits = tf.fused.conv2d({
          x: y,
          filter: finalWeight as tf.Tensor4D,
          strides: 1,
          pad: "valid",
          bias: finalBias,
        });
        const [, H, W] = x.shape;
        if (logits.shape[1] === H && logits.shape[2] === W) return logits;
        // `alignCorners: false` is PyTorch's `align_corners=False`: half-pixel
        // centres, not TensorFlow's legacy corner mapping.
        return tf.image.resizeBilinear(
          logits,
          [H, W],
          alignCorners,
          !alignCorners,
        );
      });
    },
  };
}
