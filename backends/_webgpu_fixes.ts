/**
 * Fixes of tfjs-backend-webgpu 4.22 kernels that give wrong answers, as the
 * patch table {@linkcode WEBGPU_FIX_PATCHES}, applied when the webgpu
 * backend loads (`webgpu.ts`).
 *
 * - `AddN` binds every input as a storage buffer of one shader; past the
 *   device's `maxStorageBuffersPerShaderStage` (8 by WebGPU's default, the
 *   output included) the extra inputs are dropped without an error: with 8
 *   inputs it returned the sum of the first 7. Here it adds at most
 *   {@linkcode ADDN_CHUNK} inputs per call and then the partial sums.
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
    let parts = args.inputs as unknown as tf.TensorInfo[];
    if (parts.length <= ADDN_CHUNK) return below(args);
    const backend = args.backend as unknown as DisposingBackend;
    // Partial sums made here (not the caller's inputs) are freed once used.
    let made = new Set<tf.TensorInfo>();
    while (parts.length > 1) {
      const next: tf.TensorInfo[] = [];
      const nowMade = new Set<tf.TensorInfo>();
      for (let i = 0; i < parts.length; i += ADDN_CHUNK) {
        const group = parts.slice(i, i + ADDN_CHUNK);
        if (group.length === 1) {
          next.push(group[0]!);
          if (made.has(group[0]!)) nowMade.add(group[0]!);
          continue;
        }
        const sum = below({
          ...args,
          inputs: group as unknown as tf.NamedTensorInfoMap,
        }) as tf.TensorInfo;
        next.push(sum);
        nowMade.add(sum);
        for (const g of group) if (made.has(g)) backend.disposeData(g.dataId);
      }
      parts = next;
      made = nowMade;
    }
    return parts[0]!;
  };
}

/** The fixes, as a patch table over the webgpu backend's kernels. */
export const WEBGPU_FIX_PATCHES: readonly KernelPatch[] = [
  { kernelName: "AddN", wrap: addN },
];
