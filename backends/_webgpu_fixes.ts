/**
 * Fixes of tfjs-backend-webgpu 4.22 kernels that give wrong answers, as the
 * patch table {@linkcode WEBGPU_FIX_PATCHES}, applied when the webgpu
 * backend loads (`webgpu.ts`).
 *
 * - `AddN` binds every input as a storage buffer of one shader; past the
 *   device's `maxStorageBuffersPerShaderStage` (8 by WebGPU's default, the
 *   output included) the extra inputs are dropped without an error: with 8
 *   inputs it returned the sum of the first 7. Here it keeps a running sum,
 *   each call adding at most {@linkcode ADDN_CHUNK} tensors.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import type { KernelPatch } from "./_patches.ts";

/** Inputs per AddN call: within any WebGPU device's storage-buffer limit. */
export const ADDN_CHUNK = 4;

interface DisposingBackend {
  disposeData(dataId: object, force?: boolean): boolean;
}

function addN(below: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const parts = args.inputs as unknown as tf.TensorInfo[];
    if (parts.length <= ADDN_CHUNK) return below(args);
    const backend = args.backend as unknown as DisposingBackend;
    const add = (group: tf.TensorInfo[]) =>
      below({
        ...args,
        inputs: group as unknown as tf.NamedTensorInfoMap,
      }) as tf.TensorInfo;
    // A running sum: each call adds the sum so far to the next inputs, and
    // the sum so far (made here, not the caller's) is freed once used.
    let sum = add(parts.slice(0, ADDN_CHUNK));
    for (let i = ADDN_CHUNK; i < parts.length; i += ADDN_CHUNK - 1) {
      const next = add([sum, ...parts.slice(i, i + ADDN_CHUNK - 1)]);
      backend.disposeData(sum.dataId);
      sum = next;
    }
    return sum;
  };
}

/** The fixes, as a patch table over the webgpu backend's kernels. */
export const WEBGPU_FIX_PATCHES: readonly KernelPatch[] = [
  { kernelName: "AddN", wrap: addN },
];
