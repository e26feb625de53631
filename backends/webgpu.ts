import * as tf from "@tensorflow/tfjs";
import { missingKernel } from "./_kernels.ts";
import type { AdapterDescription, Backend, Purpose } from "./types.ts";

let loaded: Promise<unknown> | undefined;
let described: Promise<AdapterDescription | undefined> | undefined;

function load(): Promise<unknown> {
  // Importing the package registers the "webgpu" backend and its kernels;
  // its resize gradients are wrong for half-pixel centres and some aligned
  // corners, so ours take those calls (_resize_grad.ts).
  loaded ??= (async () => {
    await import("@tensorflow/tfjs-backend-webgpu");
    (await import("./_resize_grad.ts")).registerResizeGradKernels("webgpu");
  })();
  return loaded;
}

interface GpuLike {
  requestAdapter(
    options?: { powerPreference?: string },
  ): Promise<
    | null
    | {
      info?: {
        description?: string;
        vendor?: string;
        isFallbackAdapter?: boolean;
      };
      isFallbackAdapter?: boolean;
    }
  >;
}

function describe(): Promise<AdapterDescription | undefined> {
  described ??= (async () => {
    const gpu = (globalThis.navigator as { gpu?: GpuLike } | undefined)?.gpu;
    if (!gpu) return undefined;
    const adapter = await gpu.requestAdapter({
      powerPreference: "high-performance",
    });
    if (!adapter) return undefined;
    const info = adapter.info ?? {};
    return {
      description: info.description ?? "",
      vendor: info.vendor ?? "",
      isFallbackAdapter: Boolean(
        info.isFallbackAdapter ?? adapter.isFallbackAdapter,
      ),
    };
  })().catch(() => undefined);
  return described;
}

/** Deno's WebGPU: on the GPU when there is one, else a software adapter. */
export const webgpuBackend: Backend = {
  name: "webgpu",
  async isAvailable(): Promise<boolean> {
    return (await describe()) !== undefined;
  },
  missingFor(purpose: Purpose): string | undefined {
    const k = missingKernel("webgpu", purpose);
    return k && `the webgpu backend lacks the ${k} kernel`;
  },
  async activate(): Promise<void> {
    await load();
    const ok = await tf.setBackend("webgpu");
    if (!ok) {
      throw new Error(
        'Cannot activate backend "webgpu": no WebGPU adapter could be opened',
      );
    }
    await tf.ready();
  },
  adapter(): Promise<AdapterDescription | undefined> {
    return describe();
  },
};
