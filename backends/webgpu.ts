import * as tf from "@tensorflow/tfjs";
import { missingKernel } from "./_kernels.ts";
import type { AdapterDescription, Backend, Purpose } from "./types.ts";
import { openBlas } from "./_blas.ts";
import { vulkanInstalled } from "./_vulkan.ts";

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
  preferVulkan();
}

/**
 * On Linux, Deno's WebGPU (wgpu) opens every graphics API it finds, so even
 * when it runs on Vulkan it loads libglvnd's EGL, and with it the exit race
 * above (with the BLAS loaded first, a four-module stress run still aborted
 * in about 2% of runs; with EGL loaded before the BLAS, 11 of 30 runs
 * aborted on EGL and 0 of 30 on Vulkan). When the user has not chosen
 * (`DENO_WEBGPU_BACKEND` unset) and a Vulkan loader and driver are
 * installed, this asks for Vulkan alone before WebGPU's first use, so EGL
 * is never loaded. Mesa's device-select layer is switched off with it
 * (`NODEVICE_SELECT=1`): it only orders devices, and without a Wayland
 * session it prints "XDG_RUNTIME_DIR is invalid" on every start. Deno reads
 * both when it creates its WebGPU instance, and keeps that instance, so
 * this must run before the first `requestAdapter`. Without permission to
 * read and set the environment and to read files it does nothing.
 */
function preferVulkan(): void {
  try {
    // Asking for a permission not granted would prompt: only look.
    const granted = (d: Deno.PermissionDescriptor) =>
      Deno.permissions.querySync(d).state === "granted";
    if (Deno.build.os !== "linux") return;
    if (!granted({ name: "env" }) || !granted({ name: "read" })) return;
    if (Deno.env.get("DENO_WEBGPU_BACKEND") !== undefined) return;
    if (!vulkanInstalled()) return;
    Deno.env.set("DENO_WEBGPU_BACKEND", "vulkan");
    if (Deno.env.get("NODEVICE_SELECT") === undefined) {
      Deno.env.set("NODEVICE_SELECT", "1");
    }
  } catch {
    // no --allow-env or --allow-read: leave WebGPU's choice alone
  }
}

function load(): Promise<unknown> {
  nativeOrder();
  // Importing the package registers the "webgpu" backend and its kernels;
  // its resize gradients are wrong for half-pixel centres and some aligned
  // corners, so ours take those calls (_resize_grad.ts), and its AddN drops
  // inputs past the device's buffer limit (_webgpu_fixes.ts).
  loaded ??= (async () => {
    await import("@tensorflow/tfjs-backend-webgpu");
    (await import("./_resize_grad.ts")).registerResizeGradKernels("webgpu");
    const { applyPatches } = await import("./_patches.ts");
    applyPatches(
      "webgpu",
      (await import("./_webgpu_fixes.ts")).WEBGPU_FIX_PATCHES,
    );
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
