/**
 * A leaner gradient for FusedBatchNorm (tf.batchNorm), registered in place
 * of tfjs's for every backend. Same mathematics; upstream's computes each
 * of the five input gradients separately (thirteen full-size element-wise
 * passes and a Tile of the per-channel scale to the whole activation), this
 * one shares the two per-channel reductions and needs three full-size
 * passes. Batch norm dominates the element-wise work of a ResNet step.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

let registered = false;

/** Registers the lean FusedBatchNorm gradient (idempotent). */
export function registerLeanGradients(): void {
  if (registered) return;
  registered = true;
  const original = tf.getGradient("FusedBatchNorm");
  if (!original) return;
  tf.registerGradient({
    kernelName: "FusedBatchNorm",
    inputsToSave: ["x", "mean", "variance", "scale"],
    gradFunc: (dy, saved, attrs) => {
      const [x, mean, variance, scale] = saved as (tf.Tensor | undefined)[];
      if (
        !x || !mean || !variance || mean.rank !== 1 || variance.rank !== 1 ||
        (scale && scale.rank !== 1) || Array.isArray(dy)
      ) {
        return original.gradFunc(dy, saved, attrs);
      }
      const eps = (attrs as { varianceEpsilon: number }).varianceEpsilon;
      const axes = [...Array(x.rank - 1).keys()];
      const rstd = tf.rsqrt(tf.add(variance, eps)); // [C]
      const g = scale ? tf.mul(scale, rstd) : rstd; // [C]
      const dyT = dy as tf.Tensor;
      // Shared by several input gradients, so computed here, once (each
      // gradient closure runs in its own scope, which would dispose a
      // memoised value after its first use).
      const sumDy = tf.sum(dyT, axes);
      const sumDyXmm = tf.sum(tf.mul(dyT, tf.sub(x, mean)), axes);
      return {
        x: () => tf.mul(dyT, g),
        mean: () => tf.neg(tf.mul(sumDy, g)),
        // d/dvar of γ(x-μ)(var+ε)^-½ = -½ γ (x-μ) (var+ε)^-3/2
        variance: () =>
          tf.mul(sumDyXmm, tf.mul(tf.mul(g, tf.square(rstd)), -0.5)),
        scale: () => tf.mul(sumDyXmm, rstd),
        offset: () => sumDy,
      };
    },
  });
}
