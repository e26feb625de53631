import * as tf from "@tensorflow/tfjs";
import { samePairs, weightedContrastive } from "./_contrastive.ts";
import {
  assertFeatures,
  assertInRange,
  assertPositive,
  describe,
  type IntegerLabels,
  toLabelTensor,
} from "./_validate.ts";
import type { SupConLossOptions } from "./sup_con.ts";

/** The modal-target label of each sample. */
export interface ModalTargetLabels {
  /** Modality (e.g. CT phase) index of each sample, `[batch]`. */
  domain: IntegerLabels;
  /** Target (organ or class) id of each sample, `[batch]`. */
  target: IntegerLabels;
}

/** Options for {@linkcode modalTargetLoss}. */
export interface ModalTargetLossOptions extends SupConLossOptions {
  /**
   * Weight, in [0, 1], of a "partial positive" (same domain, different
   * target) in an anchor's numerator relative to a full positive (same
   * domain and target). Each anchor's loss becomes the weighted mean
   * −Σⱼ wⱼ log pⱼ / Σⱼ wⱼ over full and partial positives; the denominator
   * of p is unchanged. 0 reproduces Eq. 3 exactly.
   * @default {0}
   */
  partialPositiveWeight?: number;
}

/**
 * Modal-target contrastive loss (Eq. 3 of Lee et al.): a view's positives
 * are the other views whose samples share both its domain (modality) and its
 * target; all other views are in the denominator only. Equal to
 * {@linkcode supConLoss} on the composite labels (domain, target). With
 * `partialPositiveWeight` > 0, views of the same domain but another target
 * also pull, with that weight.
 *
 * `features` are L2-normalised inside the function (a zero vector stays
 * zero). Anchors with no positive are left out of the mean; when none has
 * one the loss is 0 with a zero gradient.
 *
 * @example Two domains, one target
 * ```ts
 * import assert from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { modalTargetLoss } from "@agcl/agcl/losses";
 *
 * const f = tf.tensor3d([[[1, 0], [1, 0]], [[0, 1], [0, 1]]]); // [2, 2, 2]
 * const loss = modalTargetLoss(f, { domain: [0, 1], target: [3, 3] }, {
 *   temperature: 1,
 * });
 * // Different domains: only the twin view is a positive, as NT-Xent.
 * const [value] = await loss.data();
 * assert.ok(Math.abs(value! - (Math.log(Math.E + 2) - 1)) < 1e-6);
 * tf.dispose([f, loss]);
 * ```
 *
 * @param features Embeddings `[batch, views, dim]`, float32.
 * @param labels `domain` and `target` ids, each `[batch]`.
 * @param options Temperature, base temperature, partial-positive weight.
 * @returns The mean loss over anchors with a positive, a scalar.
 * @throws {TypeError} If `features` is not a rank-3 float32 tensor with no
 *   empty axis, `labels` is not an object, or `domain` / `target` has the
 *   wrong type, rank, dtype or length.
 * @throws {RangeError} If an id is not an integer, a temperature is not a
 *   finite number > 0, or `partialPositiveWeight` is outside [0, 1].
 */
export function modalTargetLoss(
  features: tf.Tensor3D,
  labels: ModalTargetLabels,
  options: ModalTargetLossOptions = {},
): tf.Scalar {
  const fn = "modalTargetLoss";
  const { temperature = 0.1, partialPositiveWeight = 0 } = options;
  const { baseTemperature = temperature } = options;
  assertFeatures(features, 3, "[batch, views, dim]", "features", fn);
  if (typeof labels !== "object" || labels === null) {
    throw new TypeError(
      `Cannot compute ${fn} as 'labels' must be an object { domain, target }: current value is ${
        describe(labels)
      }`,
    );
  }
  assertPositive(temperature, "temperature", fn);
  assertPositive(baseTemperature, "baseTemperature", fn);
  assertInRange(partialPositiveWeight, 0, 1, "partialPositiveWeight", fn);
  return tf.tidy(() => {
    const batch = features.shape[0];
    const domain = toLabelTensor(labels.domain, batch, "labels.domain", fn);
    const target = toLabelTensor(labels.target, batch, "labels.target", fn);
    const sameDomain = samePairs(domain); // [batch, batch]
    const sameTarget = samePairs(target); // [batch, batch]
    // Full positives weigh 1, partial positives (same domain, other target)
    // weigh partialPositiveWeight.
    const weights = tf.mul(
      sameDomain,
      tf.add(
        sameTarget,
        tf.mul(tf.sub(1, sameTarget), partialPositiveWeight),
      ),
    ) as tf.Tensor2D; // [batch, batch]
    return weightedContrastive(
      features,
      weights,
      temperature,
      baseTemperature,
    );
  });
}
