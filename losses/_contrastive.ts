/**
 * The computation shared by the contrastive losses (SupCon "L_out", NT-Xent,
 * modal-target): a weighted mean, over each anchor's positives, of the
 * log-probability of picking that positive among all other views.
 */
import * as tf from "@tensorflow/tfjs";

/**
 * Norm floor of the L2 normalisation, as `torch.nn.functional.normalize`:
 * a zero feature vector stays zero (similarity 0 to everything) instead of
 * dividing by zero.
 */
export const NORM_EPS = 1e-12;

/**
 * zzᵀ / T `[n, n]` from `z` `[n, dim]`, with the Gram matrix's own
 * gradient (dG + dGᵀ)·z / T: one matrix product backward instead of the
 * two a general `matMul` needs.
 */
function gramOverT(z: tf.Tensor2D, temperature: number): tf.Tensor2D {
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const scaled = tf.div(x as tf.Tensor2D, temperature); // [n, dim]
    save([scaled]);
    return {
      value: tf.matMul(scaled, x as tf.Tensor2D, false, true),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.matMul(tf.add(dy, tf.transpose(dy)), saved[0]!),
    };
  });
  return f(z) as tf.Tensor2D;
}

/**
 * log Σ_{k≠i} exp(logits(i, k)) per row `[n]`: the contrastive denominator,
 * with the diagonal (self-contrast) left out, computed stably, with the
 * softmax over k ≠ i as its gradient.
 *
 * For stability it subtracts each row's largest *off-diagonal* logit (not
 * the diagonal, as SupContrast does): the sum then holds a term exp(0) = 1,
 * so its log stays finite even at T = 1e-3, where every other term can
 * underflow. Its own backward also keeps the shift (and its max) off the
 * gradient tape.
 */
function offDiagonalLogSumExp(
  logits: tf.Tensor2D,
  eye: tf.Tensor2D,
  temperature: number,
): tf.Tensor1D {
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const l = x as tf.Tensor2D;
    const offDiag = tf.sub(1, eye); // [n, n]
    // |logits| <= 1/T, so pushing the diagonal down by 2/T + 1 keeps it
    // out of the max.
    const rowMax = tf.max(tf.sub(l, tf.mul(eye, 2 / temperature + 1)), 1, true); // [n, 1]
    // Zero the diagonal before exp: its shifted logit can reach 2/T, whose
    // exp overflows. Its exp is then exactly 1, taken off the sum below.
    const shifted = tf.mul(tf.sub(l, rowMax), offDiag); // [n, n]
    const sum = tf.sub(tf.sum(tf.exp(shifted), 1, true), 1); // [n, 1]
    // sum >= 1 whenever n >= 2; the floor only covers n = 1, a lone view
    // with no other term at all (and so no positive).
    const logSum = tf.log(tf.maximum(sum, 1)); // [n, 1]
    save([shifted, logSum, offDiag]);
    return {
      value: tf.reshape(tf.add(rowMax, logSum), [-1]), // [n]
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sh, ls, od] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
        const softmax = tf.mul(tf.exp(tf.sub(sh, ls)), od); // [n, n]
        return tf.mul(softmax, tf.expandDims(dy, 1));
      },
    };
  });
  return f(logits) as tf.Tensor1D;
}

/**
 * 1 where `ids[i] == ids[j]`, else 0: `[batch, batch]` float32. Both sides
 * are tiled to full size first: wasm's broadcasting `Equal` is ~50× slower.
 */
export function samePairs(ids: tf.Tensor1D): tf.Tensor2D {
  const b = ids.shape[0];
  const rows = tf.tile(tf.reshape(ids, [b, 1]), [1, b]); // [b, b]
  const cols = tf.tile(tf.reshape(ids, [1, b]), [b, 1]); // [b, b]
  return tf.cast(tf.equal(rows, cols), "float32") as tf.Tensor2D;
}

/** Rows of `x` scaled to unit L2 norm, with the norm floored at {@linkcode NORM_EPS}. */
export function l2Normalize(x: tf.Tensor2D): tf.Tensor2D {
  // rsqrt(max(Σx², eps²)) instead of x / max(‖x‖, eps): the gradient of
  // sqrt at 0 is 0/0, which would turn a zero vector's gradient into NaN.
  const sumSq = tf.sum(tf.square(x), 1, true);
  return tf.mul(x, tf.rsqrt(tf.maximum(sumSq, NORM_EPS * NORM_EPS)));
}

/**
 * Contrastive loss of `features` `[batch, views, dim]` given `pairWeights`
 * `[batch, batch]`: the weight of sample j as a positive for an anchor of
 * sample i (1 for a positive, 0 for a negative; every view of a sample
 * shares its sample's weights). Self-contrast is excluded here. Must run
 * inside `tf.tidy`.
 */
export function weightedContrastive(
  features: tf.Tensor3D,
  pairWeights: tf.Tensor2D,
  temperature: number,
  baseTemperature: number,
): tf.Scalar {
  const [batch, views, dim] = features.shape;
  const n = batch * views;
  // View-major stacking, as SupContrast's torch.cat(torch.unbind(f, 1)):
  // row view*batch + sample.
  const z = l2Normalize(
    tf.reshape(tf.transpose(features, [1, 0, 2]), [n, dim]),
  ); // [n, dim]
  const eye = tf.eye(n) as tf.Tensor2D; // [n, n]
  const positives = tf.mul(
    tf.tile(pairWeights, [views, views]),
    tf.sub(1, eye),
  ); // [n, n], self-contrast excluded

  const logits = gramOverT(z, temperature); // [n, n]
  const logDenominator = offDiagonalLogSumExp(logits, eye, temperature); // [n]
  const weight = tf.sum(positives, 1); // [n]
  // Σⱼ wᵢⱼ log pᵢⱼ = Σⱼ wᵢⱼ logitsᵢⱼ − wᵢ log Σ_{k≠i} exp(logitsᵢₖ)
  const weightedLogProb = tf.sub(
    tf.sum(tf.mul(positives, logits), 1),
    tf.mul(weight, logDenominator),
  ); // [n]
  const hasPositive = tf.cast(tf.greater(weight, 0), "float32"); // [n]
  // Anchors without a positive divide by 1 (not 0) and are masked out below.
  const anchorLoss = tf.neg(
    tf.div(weightedLogProb, tf.add(weight, tf.sub(1, hasPositive))),
  ); // [n]
  const anchors = tf.maximum(tf.sum(hasPositive), 1);
  return tf.mul(
    tf.div(tf.sum(tf.mul(anchorLoss, hasPositive)), anchors),
    temperature / baseTemperature,
  ) as tf.Scalar;
}
