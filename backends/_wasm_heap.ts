/** Access to the wasm backend's heap from kernels written in TypeScript. */
import type * as tf from "@tensorflow/tfjs";

/** The parts of tfjs-backend-wasm's `BackendWasm` these kernels use. */
export interface WasmBackendLike {
  wasm: {
    HEAPU8: Uint8Array;
    /** The shared memory of the threaded build (absent in the others). */
    wasmMemory?: WebAssembly.Memory;
  };
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  disposeData(dataId: object): boolean;
  /** Counts one more tensor on `dataId`'s memory (as `Reshape` does). */
  incRef(dataId: object): void;
}

/** Arguments tfjs passes to a kernel function. */
export interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

/**
 * The heap's current buffer. The threaded build's `HEAPU8` is refreshed only
 * when the main thread grows the memory, so a growth by a worker leaves it
 * short: its `wasmMemory` always has the whole heap.
 */
function heapBuffer(backend: WasmBackendLike): ArrayBufferLike {
  return backend.wasm.wasmMemory?.buffer ?? backend.wasm.HEAPU8.buffer;
}

/** A fresh byte view of the whole heap (views die when memory grows). */
export function heapU8(backend: WasmBackendLike): Uint8Array {
  return new Uint8Array(heapBuffer(backend));
}

/** A fresh float view of the whole heap (views die when memory grows). */
export function heapF32(backend: WasmBackendLike): Float32Array {
  return new Float32Array(heapBuffer(backend));
}

/** A fresh int32 view of the whole heap. */
export function heapI32(backend: WasmBackendLike): Int32Array {
  return new Int32Array(heapBuffer(backend));
}

/** Float offset of a tensor's data in the heap. */
export function offsetOf(backend: WasmBackendLike, t: tf.TensorInfo): number {
  const data = backend.dataIdMap.get(t.dataId);
  if (!data) {
    throw new Error(
      `Cannot find tensor data on the wasm heap: shape [${t.shape}] was disposed or lives on another backend`,
    );
  }
  return data.memoryOffset / 4;
}

/** Number of elements of a shape. */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Throws a TypeError unless `t` is float32. */
export function assertFloat32(kernel: string, t: tf.TensorInfo): void {
  if (t.dtype !== "float32") {
    throw new TypeError(
      `${kernel} on wasm expects float32 tensors: found ${t.dtype}`,
    );
  }
}

/** Throws a TypeError unless the data format is channels-last. */
export function assertNHWC(kernel: string, dataFormat: unknown): void {
  if (dataFormat !== undefined && dataFormat !== "NHWC") {
    throw new TypeError(
      `${kernel} on wasm expects dataFormat "NHWC": found "${dataFormat}"`,
    );
  }
}
