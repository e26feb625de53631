/**
 * Training-mode batch norm (+ residual) (+ ReLU) as one kernel, and its
 * gradient as another, on backends that register them.
 *
 * `models/_layers.ts` writes a training batch norm out of a dozen
 * element-wise ops and reductions forward and as many backward, each a pass
 * over the activation. The wasm backend's oneDNN layer (`_dnnl_kernels.ts`)
 * registers {@linkcode BATCH_NORM_TRAINING} and
 * {@linkcode BATCH_NORM_TRAINING_GRAD}: oneDNN's batch normalisation
 * primitives on the wasm heap, with the residual sum and the ReLU in one
 * more pass. On every other backend, and on wasm without oneDNN,
 * {@linkcode batchNormTrainingRouted} is false and the caller keeps its own
 * formulation.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** Kernel: `{x, gamma, beta, residual?}` → `[y, mean, variance]`. */
export const BATCH_NORM_TRAINING = "AgclBatchNormTraining";
/**
 * Kernel: `{dy, x, mean, variance, gamma, y?}` → `[dx, dGamma, dBeta]`,
 * then, with a ReLU, the gradient that reaches the ReLU's input (the
 * residual's).
 */
export const BATCH_NORM_TRAINING_GRAD = "AgclBatchNormTrainingGrad";

/** Attributes of both kernels. */
export interface BatchNormTrainingAttrs {
  /** Added to the variance before its square root. */
  epsilon: number;
  /** Whether a ReLU follows (the residual sum, if any, comes before it). */
  relu: boolean;
}

/**
 * Whether the active backend has both kernels and `x` suits them (float32
 * NHWC, not empty).
 */
export function batchNormTrainingRouted(x: tf.Tensor4D): boolean {
  const backend = tf.getBackend();
  return x.dtype === "float32" && x.size > 0 &&
    tf.getKernel(BATCH_NORM_TRAINING, backend) !== undefined &&
    tf.getKernel(BATCH_NORM_TRAINING_GRAD, backend) !== undefined;
}

/**
 * `y = relu?(γ·(x − mean)/√(variance + ε) + β + residual?)` with the
 * batch's per-channel mean and biased variance, on the active backend's
 * kernel ({@linkcode batchNormTrainingRouted} must hold).
 *
 * @returns `y` shaped as `x`, `mean` and `variance` `[channels]`.
 */
export function batchNormTraining(
  inputs: {
    x: tf.Tensor4D;
    gamma: tf.Tensor1D;
    beta: tf.Tensor1D;
    residual?: tf.Tensor4D;
  },
  attrs: BatchNormTrainingAttrs,
): { y: tf.Tensor4D; mean: tf.Tensor1D; variance: tf.Tensor1D } {
  const [y, mean, variance] = tf.engine().runKernel(
    BATCH_NORM_TRAINING,
    inputs as unknown as tf.NamedTensorMap,
    attrs as unknown as tf.NamedAttrMap,
  ) as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D];
  return { y, mean, variance };
}

/**
 * The gradients of {@linkcode batchNormTraining} for `dy`, from its input,
 * statistics and γ (and its output `y`, with a ReLU).
 *
 * @returns `dx`, `dGamma`, `dBeta`; with a ReLU also `dRelu`, the gradient
 * that reaches the ReLU's input (the residual's), else that is `dy`.
 */
export function batchNormTrainingGrad(
  inputs: {
    dy: tf.Tensor4D;
    x: tf.Tensor4D;
    mean: tf.Tensor1D;
    variance: tf.Tensor1D;
    gamma: tf.Tensor1D;
    y?: tf.Tensor4D;
  },
  attrs: BatchNormTrainingAttrs,
): {
  dx: tf.Tensor4D;
  dGamma: tf.Tensor1D;
  dBeta: tf.Tensor1D;
  dRelu?: tf.Tensor4D;
} {
  if (attrs.relu && !inputs.y) {
    throw new TypeError(
      "Cannot compute batchNormTrainingGrad with a ReLU but no output 'y'",
    );
  }
  const [dx, dGamma, dBeta, dRelu] = tf.engine().runKernel(
    BATCH_NORM_TRAINING_GRAD,
    inputs as unknown as tf.NamedTensorMap,
    attrs as unknown as tf.NamedAttrMap,
  ) as tf.Tensor[];
  return {
    dx: dx as tf.Tensor4D,
    dGamma: dGamma as tf.Tensor1D,
    dBeta: dBeta as tf.Tensor1D,
    ...(dRelu ? { dRelu: dRelu as tf.Tensor4D } : {}),
  };
}
