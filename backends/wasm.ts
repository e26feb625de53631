import * as tf from "@tensorflow/tfjs";
import type { Dnnl } from "./_dnnl.ts";
import { missingKernel } from "./_kernels.ts";
import { env } from "./_permissions.ts";
import type {
  AdapterDescription,
  Backend,
  Purpose,
  WasmAcceleration,
} from "./types.ts";

let loaded: Promise<unknown> | undefined;
let preference: WasmAcceleration | "auto" = "auto";
let current:
  | { name: WasmAcceleration; detail: string; hint?: string }
  | undefined;
/**
 * Which build the backend was initialised on, e.g. `"on 2 threads, threaded
 * SIMD build"` (fixed for the process).
 */
let build: { detail: string } | undefined;

/** What installing a system BLAS buys (README, "Backends"). */
const BLAS_GAIN =
  "a ResNet-18 training step runs about 5× faster on wasm with a system BLAS (889 ms against 4503 ms)";

/**
 * Why the BLAS is missing, turned into what to do about it, or `undefined`
 * when it was switched off on purpose (`AGCL_BLAS=off`, `"xnnpack"`).
 */
function blasHint(reason: string): string | undefined {
  if (/--allow-ffi/.test(reason)) {
    return `${BLAS_GAIN}: run with --allow-ffi (or -A)`;
  }
  if (/no BLAS library/.test(reason)) {
    return `${BLAS_GAIN}: install OpenBLAS (Debian/Ubuntu: apt install libopenblas0; macOS uses Accelerate, or brew install openblas) and run with --allow-ffi`;
  }
  return undefined;
}

/**
 * Whether the wasm module can be read: tfjs-backend-wasm reads its `.wasm`
 * file from Deno's npm cache, which needs read permission; without it the
 * module aborts after printing a page of emscripten errors.
 */
function canReadModule(): boolean {
  try {
    return Deno.permissions.querySync({ name: "read" }).state === "granted";
  } catch {
    return true; // no permission API (not Deno): let the load try
  }
}

/**
 * Imports the wasm backend package (which registers the backend and its
 * kernels), registers the training kernels it lacks upstream, layers the
 * fixes and fast paths over its own kernels, and routes the
 * resize-gradient calls its own kernels get wrong to ours. The BLAS layers,
 * when chosen, go on top at activation ({@linkcode setWasmAcceleration}).
 */
export function load(): Promise<unknown> {
  loaded ??= (async () => {
    await import("@tensorflow/tfjs-backend-wasm");
    const { applyPatches, registerMissing } = await import("./_patches.ts");
    const { WASM_FIX_PATCHES, WASM_TRAINING_KERNELS } = await import(
      "./_wasm_kernels.ts"
    );
    registerMissing(WASM_TRAINING_KERNELS);
    registerMissing((await import("./_adam.ts")).ADAM_UPDATE_KERNELS);
    applyPatches("wasm", WASM_FIX_PATCHES);
    (await import("./_resize_grad.ts")).registerResizeGradKernels("wasm");
    applyPatches("wasm", (await import("./_wasm_fast.ts")).WASM_FAST_PATCHES);
  })();
  return loaded;
}

/**
 * How many threads the threaded build should get, and why: `AGCL_WASM_THREADS`
 * when set (`off` or `1` keeps the single-threaded build), else 1 when a
 * native library will run the convolutions (its own threads do the work), else
 * every logical CPU.
 */
async function threadsWanted(): Promise<{ n: number; why?: string }> {
  const setting = env("AGCL_WASM_THREADS")?.toLowerCase();
  if (setting !== undefined && setting !== "") {
    const n = setting === "off" ? 1 : Number(setting);
    if (!Number.isInteger(n) || n < 1) {
      throw new RangeError(
        `Cannot start the wasm backend as 'AGCL_WASM_THREADS' must be a positive integer or "off": current value is "${setting}"`,
      );
    }
    return { n, why: "AGCL_WASM_THREADS" };
  }
  if (preference === "onednn" || preference === "blas") return { n: 1 };
  if (preference === "auto") {
    if ((await import("./_dnnl.ts")).openDnnl().dnnl) return { n: 1 };
    if ((await import("./_blas.ts")).openBlas().blas) return { n: 1 };
  }
  return { n: navigator.hardwareConcurrency ?? 1 };
}

/**
 * Initialises and activates the wasm backend. The first time, it picks the
 * build: the threaded SIMD one (XNNPACK on a pool of workers) when no native
 * library will run the convolutions and the machine has 2 or more CPUs, else,
 * or when that fails, the single-threaded SIMD one.
 */
async function start(): Promise<boolean> {
  // (tf.findBackend would start an initialisation: read the registry.)
  if (!build && tf.engine().registry["wasm"]) {
    // Initialised outside this module (tf.setBackend("wasm")): report it.
    const { getThreadsCount } = await import("@tensorflow/tfjs-backend-wasm");
    const t = getThreadsCount();
    build = { detail: t > 1 ? `on ${t} threads` : "single-threaded" };
  }
  if (build) return await tf.setBackend("wasm");
  const { n, why } = await threadsWanted();
  let failed = "";
  if (n >= 2) {
    const { initThreaded, disableThreads } = await import(
      "./_wasm_threads.ts"
    );
    const r = await initThreaded(n);
    if (r.threads) {
      build = {
        detail: `on ${r.threads} threads, threaded SIMD build${
          why ? ` (${why})` : ""
        }`,
      };
      return true;
    }
    disableThreads();
    failed = `: the threaded build is unavailable: ${r.reason}`;
  }
  const ok = await tf.setBackend("wasm");
  if (ok) {
    build = {
      detail: `single-threaded${why && !failed ? ` (${why})` : failed}`,
    };
  }
  return ok;
}

/**
 * Sets how the wasm backend runs its matrix products and convolutions:
 * `"onednn"` (convolutions on oneDNN through FFI, matrix products on a BLAS
 * when one opens; throws when oneDNN cannot be opened), `"blas"` (a native
 * BLAS through FFI; throws when none can be opened), `"xnnpack"` (its own
 * kernels) or `"auto"` (oneDNN and BLAS, each when available). Applies at
 * once when wasm is the active backend, else at its next activation.
 */
export async function setWasmAcceleration(
  mode: WasmAcceleration | "auto",
): Promise<{ name: WasmAcceleration; detail: string } | undefined> {
  if (
    mode !== "auto" && mode !== "onednn" && mode !== "blas" &&
    mode !== "xnnpack"
  ) {
    throw new RangeError(
      `Cannot set the wasm acceleration as 'mode' must be "auto", "onednn", "blas" or "xnnpack": current value is "${mode}"`,
    );
  }
  const previous = preference;
  preference = mode;
  if (tf.getBackend() !== "wasm") return undefined;
  try {
    return await applyAcceleration();
  } catch (e) {
    preference = previous;
    throw e;
  }
}

async function applyAcceleration(): Promise<
  { name: WasmAcceleration; detail: string; hint?: string }
> {
  const k = await import("./_blas_kernels.ts");
  const d = await import("./_dnnl_kernels.ts");
  if (preference === "xnnpack") {
    d.uninstallDnnlKernels();
    k.uninstallBlasKernels();
    return current = {
      name: "xnnpack",
      detail: `XNNPACK kernels ${build?.detail ?? ""} (requested)`,
    };
  }
  let dnnl: { dnnl?: Dnnl; reason: string } | undefined;
  if (preference !== "blas") {
    dnnl = (await import("./_dnnl.ts")).openDnnl();
    if (!dnnl.dnnl && preference === "onednn") {
      throw new Error(`Cannot run wasm convolutions on oneDNN: ${dnnl.reason}`);
    }
  }
  if (dnnl?.dnnl) {
    // oneDNN's layers go above the BLAS kernels, whose matrix products run
    // on oneDNN's sgemm too: one OpenMP thread pool, no OpenBLAS threads
    // spinning beside it (OpenBLAS is not even opened).
    d.uninstallDnnlKernels();
    k.uninstallBlasKernels();
    k.installBlasKernels(dnnl.dnnl.blas);
    d.installDnnlKernels(dnnl.dnnl);
    return current = {
      name: "onednn",
      detail: `convolutions and matrix products via ${dnnl.reason}`,
    };
  }
  const { openBlas } = await import("./_blas.ts");
  const { blas, reason } = openBlas();
  if (!blas && preference === "blas") {
    throw new Error(`Cannot run wasm matrix products on BLAS: ${reason}`);
  }
  d.uninstallDnnlKernels();
  k.uninstallBlasKernels();
  if (!blas) {
    const hint = blasHint(reason);
    return current = {
      name: "xnnpack",
      detail: `XNNPACK kernels ${build?.detail ?? ""} (${reason}${
        dnnl ? `; ${dnnl.reason}` : ""
      })`,
      ...(hint ? { hint } : {}),
    };
  }
  k.installBlasKernels(blas);
  return current = {
    name: "blas",
    detail: `matrix products via ${reason}${dnnl ? ` (${dnnl.reason})` : ""}`,
  };
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
    if (!canReadModule()) {
      throw new Error(
        'Cannot activate backend "wasm": its WebAssembly module needs read permission: run with --allow-read (or -A)',
      );
    }
    await load();
    const ok = await start();
    if (!ok) {
      throw new Error(
        'Cannot activate backend "wasm": its WebAssembly module failed to load',
      );
    }
    await tf.ready();
    await applyAcceleration();
  },
  acceleration(): { name: string; detail: string; hint?: string } | undefined {
    return current;
  },
  adapter(): Promise<AdapterDescription | undefined> {
    return Promise.resolve(undefined);
  },
};
