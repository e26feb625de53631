import * as tf from "@tensorflow/tfjs";
import type { Purpose } from "./types.ts";

/**
 * Kernels a full training step of the library's models touches that some
 * backends lack upstream. Inference kernels are present on every backend.
 */
const TRAINING_KERNELS: readonly string[] = [
  "Conv2DBackpropFilter",
  "Conv2DBackpropInput",
  "MaxPoolGrad",
  "ResizeBilinearGrad",
  "AvgPoolGrad",
];

/** Returns the first kernel `backend` lacks for `purpose`, if any. */
export function missingKernel(
  backend: string,
  purpose: Purpose,
): string | undefined {
  if (purpose === "infer") return undefined;
  return TRAINING_KERNELS.find((k) => tf.getKernel(k, backend) === undefined);
}
