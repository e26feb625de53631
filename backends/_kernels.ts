import * as tf from "@tensorflow/tfjs";
import type { Purpose } from "./types.ts";

/**
 * Gradient kernels a training step of the library's models touches, audited
 * with tf.grads over conv (strided, fused bias+relu), max/avg pooling,
 * bilinear resize, batch norm, depthwise conv, space-to-batch, gather and
 * matrix products on the wasm backend. Inference kernels are present on
 * every backend.
 */
const TRAINING_KERNELS: readonly string[] = [
  "Conv2DBackpropFilter",
  "Conv2DBackpropInput",
  "MaxPoolGrad",
  "ResizeBilinearGrad",
  "AvgPoolGrad",
  "DepthwiseConv2dNativeBackpropInput",
  "DepthwiseConv2dNativeBackpropFilter",
  "UnsortedSegmentSum",
];

/** Returns the first kernel `backend` lacks for `purpose`, if any. */
export function missingKernel(
  backend: string,
  purpose: Purpose,
): string | undefined {
  if (purpose === "infer") return undefined;
  return TRAINING_KERNELS.find((k) => tf.getKernel(k, backend) === undefined);
}
