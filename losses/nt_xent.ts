import * as tf from "@tensorflow/tfjs";
import { weightedContrastive } from "./_contrastive.ts";
import { assertFeatures, assertPositive } from "./_validate.ts";
import type { SupConLossOptions } from "./sup_con.ts";

/** Options for {@linkcode ntXentLoss}: the same as for `supConLoss`. */
export type NtXentLossOptions = SupConLossOptions;

/**
 * NT-Xent (SimCLR, Chen et al. 2020), the paper's self-supervised
 * contrastive loss (SSCL, Eq. 2 of Lee et al.): each view's only positives
 * are the other views of its own sample; every other view in the batch is a
 * negative. Equal to {@linkcode supConLoss} with labels `0…batch−1`.
 *
 * `features` are L2-normalised inside the function (a zero vector stays
 * zero). The paper uses two views; more views give each anchor several
 * positives, and a single view has none, so the loss is then 0 with a zero
 * gradient.
 *
 * @example Two samples, two views each
 * ```ts
 * import assert from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { ntXentLoss } from "@agcl/agcl/losses";
 *
 * const f = tf.tensor3d([[[1, 0], [1, 0]], [[0, 1], [0, 1]]]); // [2, 2, 2]
 * const loss = ntXentLoss(f, { temperature: 1 });
 * const [value] = await loss.data();
 * assert.ok(Math.abs(value! - (Math.log(Math.E + 2) - 1)) < 1e-6);
 * tf.dispose([f, loss]);
 * ```
 *
 * @param features Embeddings `[batch, views, dim]` (views = 2 in the paper), float32.
 * @param options Temperature and base temperature.
 * @returns The mean loss over all anchors, a scalar.
 * @throws {TypeError} If `features` is not a rank-3 float32 tensor with no empty axis.
 * @throws {RangeError} If a temperature is not a finite number > 0.
 */
export function ntXentLoss(
  features: tf.Tensor3D,
  options: NtXentLossOptions = {},
): tf.Scalar {
  const fn = "ntXentLoss";
  const { temperature = 0.1 } = options;
  const { baseTemperature = temperature } = options;
  assertFeatures(features, 3, "[batch, views, dim]", "features", fn);
  assertPositive(temperature, "temperature", fn);
  assertPositive(baseTemperature, "baseTemperature", fn);
  return tf.tidy(() =>
    weightedContrastive(
      features,
      tf.eye(features.shape[0]) as tf.Tensor2D, // [batch, batch]
      temperature,
      baseTemperature,
    )
  );
}
