import * as tf from "@tensorflow/tfjs";
import { missingKernel } from "./_kernels.ts";
import type { AdapterDescription, Backend, Purpose } from "./types.ts";

let loaded: Promise<unknown> | undefined;

function load(): Promise<unknown> {
  // Importing the package registers the "wasm" backend and its kernels.
  loaded ??= import("@tensorflow/tfjs-backend-wasm");
  return loaded;
}

/** The WebAssembly backend (XNNPACK): fast CPU inference. */
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
