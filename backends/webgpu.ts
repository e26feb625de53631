import * as tf from "@tensorflow/tfjs";
import { missingKernel } from "./_kernels.ts";
import type { AdapterDescription, Backend, Purpose } from "./types.ts";
import { openBlas } from "./_blas.ts";

let loaded: Promise<unknown> | undefined;
let described: Promise<AdapterDescription | undefined> | undefined;

/**
 * Loads the native BLAS (when allowed) before WebGPU first loads its drivers.
 * On Linux without a GPU, Deno's WebGPU runs on Mesa through libglvnd's EGL,
 * whose exit-time destructor frees every thread's EGL state while Deno's
 * test-module threads may still be exiting; one that exits after it frees its
 * own state a second time (glibc "corrupted size vs. prev_size in fastbins"
 * or "double free or corruption", exit 134, after every test passed). With
 * EGL loaded first, glibc ran OpenBLAS's destructor (waking and joining its
 * thread pool, unmapping its buffers) after EGL's, which held the process in
 * that window; with OpenBLAS loaded first it runs before EGL's (checked with
 * `LD_DEBUG=files` in tests/backends/exit_order_test.ts).
 */
function nativeOrder(): void {
  openBlas();
}

function load(): Promise<unknown> {
  nativeOrder();
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
    nativeOrder();
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
