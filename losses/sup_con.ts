import * as tf from "@tensorflow/tfjs";
import { samePairs, weightedContrastive } from "./_contrastive.ts";
import {
  assertFeatures,
  assertPositive,
  type IntegerLabels,
  toLabelTensor,
} from "./_validate.ts";

export type { IntegerLabels } from "./_validate.ts";

/** Options for {@linkcode supConLoss} and {@linkcode ntXentLoss}. */
export interface SupConLossOptions {
  /**
   * Softmax temperature T: logits are z·zᵀ / T.
   * @default {0.1}
   */
  temperature?: number;
  /**
   * The loss is multiplied by `temperature / baseTemperature`, as
   * SupContrast's `base_temperature` (0.07 there): a pure rescaling.
   * @default {temperature} (no rescaling)
   */
  baseTemperature?: number;
}

/**
 * Supervised contrastive loss (Khosla et al. 2020, "L_out"; Eq. 3 of Lee et
 * al. with class ids as the positive sets): each view is an anchor, its
 * positives are the other views of the same class, and its loss is
 * −mean over positives of log( exp(zᵢ·zₚ/T) / Σ_{k≠i} exp(zᵢ·z_k/T) ).
 *
 * `features` are L2-normalised inside the function; a zero vector stays zero
 * (its norm is floored at 1e-12, as `torch.nn.functional.normalize`), so it
 * gives finite values rather than an error; the gradient reaching such a
 * vector is then scaled by 1e12, as in PyTorch, so keep features away from
 * zero (a projection head's output is). Views are stacked view-major,
 * self-contrast is excluded from numerator and denominator, anchors with no
 * positive are left out of the mean, and when no anchor has a positive the
 * loss is 0 with a zero gradient.
 *
 * @example Two samples of one class, two views each
 * ```ts
 * import assert from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { supConLoss } from "@agcl/agcl/losses";
 *
 * const f = tf.tensor3d([[[1, 0], [1, 0]], [[0, 1], [0, 1]]]); // [2, 2, 2]
 * const loss = supConLoss(f, [0, 1], { temperature: 1 });
 * const [value] = await loss.data();
 * assert.ok(Math.abs(value! - (Math.log(Math.E + 2) - 1)) < 1e-6);
 * tf.dispose([f, loss]);
 * ```
 *
 * @param features Embeddings `[batch, views, dim]`, float32.
 * @param labels Class ids `[batch]`: `number[]`, `Int32Array` or an int32 `tf.Tensor1D`.
 * @param options Temperature and base temperature.
 * @returns The mean loss over anchors with a positive, a scalar.
 * @throws {TypeError} If `features` is not a rank-3 float32 tensor with no
 *   empty axis, or `labels` has the wrong type, rank, dtype or length.
 * @throws {RangeError} If a label is not an integer, or a temperature is not
 *   a finite number > 0.
 */
export function supConLoss(
  features: tf.Tensor3D,
  labels: IntegerLabels,
  options: SupConLossOptions = {},
): tf.Scalar {
  const fn = "supConLoss";
  const { temperature = 0.1 } = options;
  const { baseTemperature = temperature } = options;
  assertFeatures(features, 3, "[batch, views, dim]", "features", fn);
  assertPositive(temperature, "temperature", fn);
  assertPositive(baseTemperature, "baseTemperature", fn);
  return tf.tidy(() => {
    const ids = toLabelTensor(labels, features.shape[0], "labels", fn);
    return weightedContrastive(
      features,
      samePairs(ids), // [batch, batch]
      temperature,
      baseTemperature,
    );
  });
}
