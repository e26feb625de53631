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

/** `x` forward, no gradient backward (tfjs has no `stop_gradient` op). */
const stopGradient: (x: tf.Tensor) => tf.Tensor = tf.customGrad(
  (x, _save) => ({
    value: tf.clone(x as tf.Tensor),
    gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
  }),
);

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
  const eye = tf.eye(n); // [n, n]
  const offDiag = tf.sub(1, eye); // [n, n]
  const positives = tf.mul(tf.tile(pairWeights, [views, views]), offDiag); // [n, n]

  // Scaling z (not the n × n product) by 1/T saves an n² op each way.
  const logits = tf.matMul(tf.div(z, temperature), z, false, true); // [n, n]
  // For stability subtract each row's largest *off-diagonal* logit (not the
  // diagonal, as SupContrast does): the denominator then holds a term
  // exp(0) = 1, so its log stays finite even at T = 1e-3, where every other
  // term can underflow. The shift cancels in log p, so it carries no gradient.
  const rowMax = stopGradient(
    tf.max(tf.sub(logits, tf.mul(eye, 2 / temperature + 1)), 1, true),
  ); // [n, 1]
  // Zero the diagonal before exp: its shifted logit can be as large as
  // 2/T, whose exp overflows. Its exp is then exactly 1, taken off below.
  const shifted = tf.mul(tf.sub(logits, rowMax), offDiag); // [n, n]
  const denominator = tf.sub(tf.sum(tf.exp(shifted), 1), 1); // [n]
  // denominator >= 1 whenever n >= 2; the floor only covers n = 1, which has
  // no other view at all (and so no positive).
  const logDenominator = tf.log(tf.maximum(denominator, 1)); // [n]

  const weight = tf.sum(positives, 1); // [n]
  // Σⱼ wᵢⱼ log pᵢⱼ = Σⱼ wᵢⱼ shiftedᵢⱼ − wᵢ log denominatorᵢ
  const weightedLogProb = tf.sub(
    tf.sum(tf.mul(positives, shifted), 1),
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
