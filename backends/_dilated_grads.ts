/**
 * Both gradients of a dilated convolution through the backend's own
 * gradient kernels, where those honour a `dilations` attribute.
 *
 * TensorFlow.js refuses the gradient of a dilated `conv2d`, and its cpu and
 * webgpu Conv2DBackpropInput / Conv2DBackpropFilter kernels compute as if
 * the rate were 1, so `models/atrous.ts` writes the gradient out per kernel
 * tap. The wasm backend's BLAS and oneDNN layers (`_blas_kernels.ts`,
 * `_dnnl_kernels.ts`) honour `dilations` in both kernels: one oneDNN
 * primitive, or one dilated im2col and one GEMM, in place of a matrix
 * product per tap. Installing those layers switches this route on for wasm
 * ({@linkcode routeDilatedGrads}); on every other backend, and on plain
 * wasm (XNNPACK), {@linkcode dilatedConvGrads} returns `undefined` and the
 * caller keeps its own formulation.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** Backends whose two convolution gradient kernels take the route. */
const routed = new Set<string>();

/**
 * Says whether `backend`'s Conv2DBackpropInput and Conv2DBackpropFilter
 * kernels honour `dilations` and should run dilated gradients.
 */
export function routeDilatedGrads(backend: string, on: boolean): void {
  if (on) routed.add(backend);
  else routed.delete(backend);
}

/** Whether the active backend takes the route ({@linkcode routeDilatedGrads}). */
export function dilatedGradsRouted(): boolean {
  return routed.has(tf.getBackend());
}

/**
 * `[dx, dFilter]` of a stride-1 'same' NHWC convolution of `x` with
 * `filter` at dilation `rate`, for the incoming gradient `dy`, from the
 * active backend's gradient kernels; `undefined` when that backend does not
 * take the route.
 *
 * @param dy `[batch, height, width, outChannels]`.
 * @param x `[batch, height, width, inChannels]`.
 * @param filter `[kh, kw, inChannels, outChannels]`, odd sizes.
 * @param rate The dilation rate.
 * @returns `dx` shaped as `x` and `dFilter` shaped as `filter`.
 */
export function dilatedConvGrads(
  { dy, x, filter }: { dy: tf.Tensor4D; x: tf.Tensor4D; filter: tf.Tensor4D },
  rate: number,
): [tf.Tensor4D, tf.Tensor4D] | undefined {
  if (!dilatedGradsRouted()) return undefined;
  const [kh, kw] = filter.shape;
  const common = {
    strides: 1,
    pad: "same",
    dataFormat: "NHWC",
    // Along a kernel axis of size 1 the rate changes nothing: 1 there keeps
    // a 1×1 kernel (a centre tap alone) the backends' ordinary 1×1 case.
    dilations: [kh > 1 ? rate : 1, kw > 1 ? rate : 1],
  };
  const engine = tf.engine();
  const dx = engine.runKernel("Conv2DBackpropInput", { dy, filter }, {
    ...common,
    inputShape: x.shape,
  }) as tf.Tensor4D;
  const dFilter = engine.runKernel("Conv2DBackpropFilter", { x, dy }, {
    ...common,
    filterShape: filter.shape,
  }) as tf.Tensor4D;
  return [dx, dFilter];
}
