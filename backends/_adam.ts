/**
 * One kernel for an Adam update of one variable, where the backend has it
 * ({@linkcode adamUpdateRouted}; wasm): the update is about twelve
 * element-wise ops per variable, so a `tiny` network's 86 small variables
 * cost ~1000 kernel calls a step, most of them overhead. The wasm kernel
 * does the same float32 arithmetic in the same order in one pass, rounding
 * after every operation as each op would, so its result is bit for bit the
 * ops' (a run may resume on either).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  heapF32,
  type KernelArgs,
  offsetOf,
  sizeOf,
  type WasmBackendLike,
} from "./_wasm_heap.ts";

/** The kernel's name. */
export const ADAM_UPDATE = "AgclAdamUpdate";

/** Above this many elements a variable's update stays with the ops (vectorised, memory-bound). */
export const ADAM_UPDATE_MAX_SIZE = 65536;

/** The update's constants (PyTorch's Adam, bias corrections precomputed). */
export interface AdamUpdateAttrs {
  /** Learning rate. */
  lr: number;
  /** Decay of the first moment. */
  beta1: number;
  /** Decay of the second moment. */
  beta2: number;
  /** Added to the denominator. */
  epsilon: number;
  /** `1 − beta1^t`. */
  c1: number;
  /** `1 − beta2^t`. */
  c2: number;
}

/**
 * Whether `w`'s update can run as {@linkcode adamUpdate} on the active
 * backend: the kernel is registered there and `w` is a float32 variable of
 * at most {@linkcode ADAM_UPDATE_MAX_SIZE} elements.
 */
export function adamUpdateRouted(w: tf.Tensor): boolean {
  return w.dtype === "float32" && w.size <= ADAM_UPDATE_MAX_SIZE &&
    tf.getKernel(ADAM_UPDATE, tf.getBackend()) !== undefined;
}

/**
 * `[w', m', v']` of one Adam step:
 * `m' = β1·m + (1 − β1)·g`, `v' = β2·v + (1 − β2)·g²`,
 * `w' = w − lr · (m'/c1) / (√(v'/c2) + ε)`.
 */
export function adamUpdate(
  inputs: { w: tf.Tensor; m: tf.Tensor; v: tf.Tensor; g: tf.Tensor },
  attrs: AdamUpdateAttrs,
): [tf.Tensor, tf.Tensor, tf.Tensor] {
  return tf.engine().runKernel(
    ADAM_UPDATE,
    inputs as unknown as tf.NamedTensorMap,
    attrs as unknown as tf.NamedAttrMap,
  ) as unknown as [tf.Tensor, tf.Tensor, tf.Tensor];
}

function adamUpdateWasm(args: KernelArgs): tf.TensorInfo[] {
  const { w, m, v, g } = args.inputs as Record<string, tf.TensorInfo>;
  const a = args.attrs as unknown as AdamUpdateAttrs;
  const n = sizeOf(w!.shape);
  for (const [name, t] of [["m", m], ["v", v], ["g", g]] as const) {
    if (t!.dtype !== "float32" || sizeOf(t!.shape) !== n) {
      throw new TypeError(
        `${ADAM_UPDATE} needs float32 '${name}' of ${n} elements as 'w': current ${
          t!.dtype
        } [${t!.shape}]`,
      );
    }
  }
  const backend = args.backend as unknown as WasmBackendLike;
  const wOut = backend.makeOutput([...w!.shape], "float32");
  const mOut = backend.makeOutput([...w!.shape], "float32");
  const vOut = backend.makeOutput([...w!.shape], "float32");
  const h = heapF32(backend);
  const [wi, mi, vi, gi] = [w, m, v, g].map((t) => offsetOf(backend, t!));
  const [wo, mo, vo] = [wOut, mOut, vOut].map((t) => offsetOf(backend, t));
  // The scalars as float32, as the ops' scalar tensors hold them.
  const f = Math.fround;
  const b1 = f(a.beta1), nb1 = f(1 - a.beta1);
  const b2 = f(a.beta2), nb2 = f(1 - a.beta2);
  const c1 = f(a.c1), c2 = f(a.c2), eps = f(a.epsilon), lr = f(a.lr);
  for (let i = 0; i < n; i++) {
    const gv = h[gi! + i]!;
    const m1 = f(f(h[mi! + i]! * b1) + f(gv * nb1));
    const v1 = f(f(h[vi! + i]! * b2) + f(f(gv * gv) * nb2));
    const den = f(f(Math.sqrt(f(v1 / c2))) + eps);
    const step = f(f(m1 / c1) / den);
    h[wo! + i] = f(h[wi! + i]! - f(step * lr));
    h[mo! + i] = m1;
    h[vo! + i] = v1;
  }
  return [wOut, mOut, vOut];
}

/** The kernel's configs, registered when the backend loads. */
export const ADAM_UPDATE_KERNELS: readonly tf.KernelConfig[] = [
  {
    kernelName: ADAM_UPDATE,
    backendName: "wasm",
    kernelFunc: adamUpdateWasm as unknown as tf.KernelFunc,
  },
];
