/**
 * Heads on the encoder's pooled vector: the stage-2 projection head
 * (contrastive pre-training) and a classification head (cross-entropy
 * pre-training).
 */
import { positiveInt } from "../_checks.ts";
import * as tf from "@tensorflow/tfjs";
import { l2Normalize } from "../losses/_contrastive.ts";
import { Prng } from "../random/prng.ts";
import { dense, disposeAll, ParamBuilder } from "./_layers.ts";
import type { ApplyOptions, Module } from "./module.ts";

/** A head mapping `[batch, inFeatures]` to `[batch, outFeatures]`. */
export interface Head extends Module {
  /** Width of the input vector. */
  readonly inFeatures: number;
  /** Width of the output vector. */
  readonly outFeatures: number;
  /**
   * Runs the head (it has no batch norm, so `training` changes nothing).
   *
   * @param x `[batch, inFeatures]`.
   * @returns `[batch, outFeatures]`.
   * @throws {TypeError} If `x` is not `[batch, inFeatures]`.
   */
  apply(x: tf.Tensor2D, options?: ApplyOptions): tf.Tensor2D;
}

/** Options for {@linkcode createProjectionHead}. */
export interface ProjectionHeadOptions {
  /** Width of the encoder's pooled vector (2048 for R50). */
  inFeatures: number;
  /** Hidden width. @default {inFeatures} */
  hidden?: number;
  /** Output (embedding) width. @default {256} */
  outFeatures?: number;
  /** Seed for PyTorch's default `Linear` initialisation. @default {0} */
  seed?: number;
  /** Generator to draw the initial weights from (overrides `seed`). */
  prng?: Prng;
}

/** Options for {@linkcode createClassificationHead}. */
export interface ClassificationHeadOptions {
  /** Width of the encoder's pooled vector. */
  inFeatures: number;
  /** Number of classes. */
  nClasses: number;
  /** Seed for PyTorch's default `Linear` initialisation. @default {0} */
  seed?: number;
  /** Generator to draw the initial weights from (overrides `seed`). */
  prng?: Prng;
}

function assertVector(x: tf.Tensor, width: number, fn: string): void {
  if (x.rank !== 2 || x.shape[1] !== width) {
    throw new TypeError(
      `Cannot apply ${fn} as 'x' must be [batch, ${width}]: current shape is [${x.shape}]`,
    );
  }
}

/**
 * Creates the projection head of the paper's stage 2: Linear → ReLU →
 * Linear, then L2 normalisation (2048 → 2048 → 256 for R50). Parameters are
 * named as SupContrast's `head` (`head.0.weight`, `head.0.bias`,
 * `head.2.weight`, `head.2.bias`); dense weights are `[in, out]` here and
 * `[out, in]` in checkpoints.
 *
 * @example Unit-length embeddings
 * ```ts
 * import { createProjectionHead } from "@agcl/agcl/models";
 * import * as tf from "@tensorflow/tfjs";
 * import assert from "node:assert/strict";
 *
 * const head = createProjectionHead({ inFeatures: 16, outFeatures: 4, seed: 3 });
 * const z = head.apply(tf.ones([2, 16]));
 * const norms = await tf.norm(z, 2, 1).data();
 * assert.ok(Math.abs(norms[0]! - 1) < 1e-5);
 * z.dispose();
 * head.dispose();
 * ```
 *
 * @param options Widths and seed.
 * @returns The head; `apply` maps `[batch, inFeatures]` to unit vectors `[batch, outFeatures]`.
 * @throws {RangeError} If a width is not a positive integer.
 */
export function createProjectionHead(options: ProjectionHeadOptions): Head {
  const { inFeatures, hidden = inFeatures, outFeatures = 256, seed = 0 } =
    options;
  const fn = "createProjectionHead";
  positiveInt(inFeatures, "inFeatures", fn);
  positiveInt(hidden, "hidden", fn);
  positiveInt(outFeatures, "outFeatures", fn);
  const b = new ParamBuilder(options.prng ?? new Prng(seed));
  const l1 = b.dense("head.0", inFeatures, hidden);
  const l2 = b.dense("head.2", hidden, outFeatures);
  const { params, state } = b;
  return {
    params,
    state,
    config: { kind: "projection", inFeatures, hidden, outFeatures, seed },
    inFeatures,
    outFeatures,
    trainableVariables: () => Object.values(params),
    dispose: () => disposeAll(params, state),
    apply(x: tf.Tensor2D): tf.Tensor2D {
      assertVector(x, inFeatures, "projection head");
      return tf.tidy(() => {
        const z = dense(dense(x, l1, true), l2);
        // F.normalize, in the form whose gradient at z = 0 is finite.
        return l2Normalize(z);
      });
    },
  };
}

/**
 * Creates a linear classification head (`fc.weight`, `fc.bias`, as
 * torchvision's ResNet), for cross-entropy pre-training. Its output is
 * logits.
 *
 * @example Logits for 3 classes
 * ```ts
 * import { createClassificationHead } from "@agcl/agcl/models";
 * import * as tf from "@tensorflow/tfjs";
 * import assert from "node:assert/strict";
 *
 * const head = createClassificationHead({ inFeatures: 8, nClasses: 3 });
 * const logits = head.apply(tf.ones([2, 8]));
 * assert.deepEqual(logits.shape, [2, 3]);
 * logits.dispose();
 * head.dispose();
 * ```
 *
 * @param options Input width, number of classes, seed.
 * @returns The head; `apply` maps `[batch, inFeatures]` to logits `[batch, nClasses]`.
 * @throws {RangeError} If a width is not a positive integer.
 */
export function createClassificationHead(
  options: ClassificationHeadOptions,
): Head {
  const { inFeatures, nClasses, seed = 0 } = options;
  const fn = "createClassificationHead";
  positiveInt(inFeatures, "inFeatures", fn);
  positiveInt(nClasses, "nClasses", fn);
  const b = new ParamBuilder(options.prng ?? new Prng(seed));
  const fc = b.dense("fc", inFeatures, nClasses);
  const { params, state } = b;
  return {
    params,
    state,
    config: { kind: "classification", inFeatures, nClasses, seed },
    inFeatures,
    outFeatures: nClasses,
    trainableVariables: () => Object.values(params),
    dispose: () => disposeAll(params, state),
    apply(x: tf.Tensor2D): tf.Tensor2D {
      assertVector(x, inFeatures, "classification head");
      return tf.tidy(() => dense(x, fc));
    },
  };
}
