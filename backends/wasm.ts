import * as tf from "@tensorflow/tfjs";
import { missingKernel } from "./_kernels.ts";
import type { AdapterDescription, Backend, Purpose } from "./types.ts";

let loaded: Promise<unknown> | undefined;

/**
 * Imports the wasm backend package (which registers the backend and its
 * kernels) and registers the training kernels it lacks upstream.
 */
export function load(): Promise<unknown> {
  loaded ??= (async () => {
    await import("@tensorflow/tfjs-backend-wasm");
    const { registerWasmTrainingKernels } = await import(
      "./_wasm_kernels.ts"
    );
    registerWasmTrainingKernels();
  })();
  return loaded;
}

/** The WebAssembly backend (XNNPACK), with the training kernels it lacks upstream. */
export const wasmBackend: Backend = {
  name: "wasm",
  isAvailable(): Promise<boolean> {
    return Promise.resolve(typeof WebAssembly === "object");
  },
  missingFor(purpose: Purpose): string | undefined {
    const k = missingKernel("wasm", purpose);
    return k && `the wasm backend lacks the ${k} kernel`;
  },
  async activate(): Promise<void> {
    await load();
    const ok = await tf.setBackend("wasm");
    if (!ok) {
      throw new Error(
        'Cannot activate backend "wasm": its WebAssembly module failed to load',
      );
    }
    await tf.ready();
  },
  adapter(): Promise<AdapterDescription | undefined> {
    return Promise.resolve(undefined);
  },
};
