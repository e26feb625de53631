import * as tf from "@tensorflow/tfjs";
import { missingKernel } from "./_kernels.ts";
import type { AdapterDescription, Backend, Purpose } from "./types.ts";

/** The pure-JavaScript backend: always present, slow, the fallback. */
export const cpuBackend: Backend = {
  name: "cpu",
  isAvailable(): Promise<boolean> {
    return Promise.resolve(true);
  },
  missingFor(purpose: Purpose): string | undefined {
    const k = missingKernel("cpu", purpose);
    return k && `the cpu backend lacks the ${k} kernel`;
  },
  async activate(): Promise<void> {
    await tf.setBackend("cpu");
    await tf.ready();
  },
  adapter(): Promise<AdapterDescription | undefined> {
    return Promise.resolve(undefined);
  },
};
