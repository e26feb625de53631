/**
 * The backend registry (`cpu`, `wasm`, `webgpu`, each imported lazily) and
 * {@linkcode selectBackend}, which picks one with fallback and says why.
 * Importing it also registers the library's gradient and kernel fixes that
 * apply to every backend.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { cpuBackend } from "./cpu.ts";
import { registerLeanGradients } from "./_gradients.ts";
import { registerResizeGradKernels } from "./_resize_grad.ts";
import {
  type AdapterDescription,
  type Backend,
  BACKEND_NAMES,
  type BackendName,
  type BackendReport,
  type Purpose,
  type WasmAcceleration,
} from "./types.ts";

/**
 * Sets how the wasm backend runs its matrix products and convolutions:
 * `"onednn"` (convolutions and matrix products on oneDNN, Debian
 * `libdnnl2`, through Deno FFI, needs `--allow-ffi`; throws when it cannot
 * be opened), `"blas"` (a native BLAS through Deno FFI, needs
 * `--allow-ffi`; throws when none can be opened), `"xnnpack"` (its own
 * WebAssembly kernels) or `"auto"` (the default: oneDNN when available,
 * else BLAS when available). Applies at once when wasm is active, else at
 * its next activation. At wasm's first activation it also picks the build:
 * the threaded SIMD one (XNNPACK on one worker per CPU) when no native
 * library will run the convolutions (`"xnnpack"`, or `"auto"` with neither
 * found), else the single-threaded one; `AGCL_WASM_THREADS` overrides.
 *
 * @param mode `"auto"`, `"onednn"`, `"blas"` or `"xnnpack"`.
 * @returns What is in effect when wasm is active, else `undefined`.
 * @throws {RangeError} For an unknown mode.
 * @throws {Error} For `"onednn"` or `"blas"` when its library cannot be opened.
 */
export async function setWasmAcceleration(
  mode: WasmAcceleration | "auto",
): Promise<{ name: WasmAcceleration; detail: string } | undefined> {
  return (await import("./wasm.ts")).setWasmAcceleration(mode);
}

// The cpu backend prints a "use tfjs-node" banner on its first write; that
// advice does not apply to Deno, so mark the banner as already shown.
(tf.engine().findBackend("cpu") as { firstUse?: boolean } | null ?? {})
  .firstUse = false;

// A leaner batch-norm gradient for every backend (same mathematics).
registerLeanGradients();
// cpu's resize gradients (upstream's bilinear one swaps height and width of
// its result, both ignore half-pixel centres): see _resize_grad.ts.
registerResizeGradKernels("cpu");

const REGISTRY: Readonly<Record<BackendName, () => Promise<Backend>>> = Object
  .freeze({
    cpu: () => Promise.resolve(cpuBackend),
    wasm: async () => (await import("./wasm.ts")).wasmBackend,
    webgpu: async () => (await import("./webgpu.ts")).webgpuBackend,
  });

/** Options for {@linkcode selectBackend}. */
export interface SelectBackendOptions {
  /**
   * What the backend will run: `"train"` needs gradient kernels.
   * @default {"train"}
   */
  purpose?: Purpose;
  /**
   * When the named backend is unavailable, fall back to `"auto"` with a
   * warning on stderr instead of throwing.
   * @default {false}
   */
  fallback?: boolean;
  /** Where warnings go. @default {console.warn} */
  warn?: (message: string) => void;
}

/** Returns `true` when `name` is one of {@linkcode BACKEND_NAMES}. */
export function isBackendName(name: string): name is BackendName {
  return (BACKEND_NAMES as readonly string[]).includes(name);
}

function assertChoice(name: string): asserts name is BackendName | "auto" {
  if (name === "auto" || isBackendName(name)) return;
  throw new RangeError(
    `Unknown backend "${name}": expected one of "auto", ${
      BACKEND_NAMES.map((n) => `"${n}"`).join(", ")
    }`,
  );
}

/**
 * Returns the backend object registered under `name`, importing it lazily.
 *
 * @param name One of `"cpu"`, `"wasm"`, `"webgpu"`.
 * @throws {RangeError} For an unknown name.
 */
export function getBackend(name: BackendName): Promise<Backend> {
  assertChoice(name);
  return REGISTRY[name]();
}

/** Lists the backends that can run on this machine, in registry order. */
export async function availableBackends(): Promise<BackendName[]> {
  const out: BackendName[] = [];
  for (const name of BACKEND_NAMES) {
    if (await (await REGISTRY[name]()).isAvailable()) out.push(name);
  }
  return out;
}

/** What {@linkcode selectBackend} chose last in this process. */
let chosen: BackendReport | undefined;

async function report(
  backend: Backend,
  reason: string,
  purpose: Purpose,
): Promise<BackendReport> {
  const adapter: AdapterDescription | undefined = backend.name === "webgpu"
    ? await backend.adapter()
    : undefined;
  const acc = backend.acceleration?.();
  return chosen = {
    name: backend.name,
    reason,
    ...(adapter ? { adapter } : {}),
    ...(acc ? { acceleration: acc.name } : {}),
    ...(acc?.hint && purpose === "train" ? { hint: acc.hint } : {}),
  };
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function selectAuto(purpose: Purpose): Promise<BackendReport> {
  const notes: string[] = [];
  const gpu = await REGISTRY.webgpu();
  const adapter = await gpu.adapter();
  if (adapter && !adapter.isFallbackAdapter) {
    await gpu.activate();
    const missing = gpu.missingFor(purpose);
    if (!missing) {
      return report(
        gpu,
        `a hardware WebGPU adapter is present (${adapter.description})`,
        purpose,
      );
    }
    notes.push(missing);
  } else if (adapter) {
    notes.push(
      `the only WebGPU adapter is a software fallback (${adapter.description}), slower than the CPU backends`,
    );
  } else {
    notes.push("no WebGPU adapter is present");
  }
  // CPU backends, fastest first.
  for (const name of ["wasm", "cpu"] as const) {
    const b = await REGISTRY[name]();
    if (!(await b.isAvailable())) {
      notes.push(`${name} is not available`);
      continue;
    }
    try {
      await b.activate();
    } catch (e) {
      // e.g. wasm without --allow-read: say so, and use the next one.
      notes.push(messageOf(e));
      continue;
    }
    const missing = b.missingFor(purpose);
    if (missing) {
      notes.push(`${missing}, needed to ${purpose}`);
      continue;
    }
    const acc = b.acceleration?.();
    const lead = name === "wasm"
      ? `wasm (${acc?.detail ?? "XNNPACK kernels"}) is the fastest CPU backend`
      : "cpu is the always-present fallback";
    return report(
      b,
      `${lead} that can ${purpose}; ${notes.join("; ")}`,
      purpose,
    );
  }
  throw new Error(`Cannot select a backend to ${purpose}: ${notes.join("; ")}`);
}

/**
 * Activates a compute backend and reports which one and why.
 *
 * `"auto"` picks WebGPU when a hardware adapter exists, else the fastest CPU
 * backend that has every kernel `purpose` needs (`wasm`, whose missing
 * gradient kernels this library registers, else `cpu`).
 * A software WebGPU adapter is never picked by `"auto"`, but can be named.
 *
 * @param name `"auto"`, `"cpu"`, `"wasm"` or `"webgpu"`.
 * @param options Purpose and fallback policy.
 * @returns The active backend, the reason, and the adapter for WebGPU.
 * @throws {RangeError} For an unknown backend name.
 * @throws {Error} When the named backend is unavailable or cannot serve
 * `purpose` and `fallback` is not set; the message lists what is available.
 */
export async function selectBackend(
  name: string,
  options: SelectBackendOptions = {},
): Promise<BackendReport> {
  const { purpose = "train", fallback = false, warn = console.warn } = options;
  assertChoice(name);
  if (purpose !== "train" && purpose !== "infer") {
    throw new RangeError(
      `Cannot select a backend as 'purpose' must be "train" or "infer": current value is "${purpose}"`,
    );
  }
  if (name === "auto") return selectAuto(purpose);

  const backend = await REGISTRY[name]();
  let problem: string | undefined;
  if (!(await backend.isAvailable())) {
    problem = `backend "${name}" is not available on this machine`;
  } else {
    try {
      await backend.activate();
      problem = backend.missingFor(purpose);
    } catch (e) {
      problem = messageOf(e);
    }
  }
  if (!problem) return report(backend, `requested explicitly`, purpose);

  const available = await availableBackends();
  const message =
    `Cannot use backend "${name}" to ${purpose}: ${problem}; available: ${
      available.map((n) => `"${n}"`).join(", ")
    }`;
  if (!fallback) throw new Error(message);
  warn(`${message}; falling back to "auto"`);
  const picked = await selectAuto(purpose);
  return chosen = {
    ...picked,
    reason: `fallback from "${name}" (${problem}): ${picked.reason}`,
  };
}

/** Options for {@linkcode ensureBackend}. */
export interface EnsureBackendOptions {
  /**
   * Where the one line saying which backend was picked, and why, goes.
   * @default {console.error}
   */
  log?: (message: string) => void;
}

let pending: Promise<BackendReport | undefined> | undefined;

/**
 * Selects the `"auto"` backend for `purpose` when none was chosen yet, and
 * says which and why once (on stderr by default). Library entry points that
 * compute call it, so code that never calls {@linkcode selectBackend} runs on
 * the fastest backend rather than on TensorFlow.js' plain `cpu` default.
 *
 * A backend counts as chosen once {@linkcode selectBackend} (or this
 * function) has succeeded in this process, or when TensorFlow.js already
 * runs on a backend other than its `cpu` default (`tf.setBackend("wasm")`).
 * To run on plain `cpu`, call `selectBackend("cpu")`.
 *
 * @example Usage
 * ```ts
 * import { ensureBackend, selectBackend } from "@agcl/agcl/backends";
 * import assert from "node:assert/strict";
 *
 * await selectBackend("cpu", { purpose: "infer" });
 * // A backend was chosen: nothing changes and nothing is printed.
 * assert.equal(await ensureBackend("infer"), undefined);
 * ```
 *
 * @param purpose What will run: `"train"` needs gradient kernels.
 * @param options Where the line goes.
 * @returns What was selected now, or `undefined` when a backend had already
 * been chosen.
 * @throws {Error} When no backend can serve `purpose`.
 */
export function ensureBackend(
  purpose: Purpose,
  options: EnsureBackendOptions = {},
): Promise<BackendReport | undefined> {
  if (chosen) return Promise.resolve(undefined);
  const active = (tf.engine() as { backendName?: string | null }).backendName;
  if (active && active !== "cpu") return Promise.resolve(undefined);
  const { log = console.error } = options;
  pending ??= (async () => {
    try {
      const r = await selectAuto(purpose);
      log(
        `agcl: no backend was chosen, so "auto" selected ${r.name} (${r.reason}); call selectBackend() to choose`,
      );
      if (r.hint) log(`agcl: hint: ${r.hint}`);
      return r;
    } finally {
      pending = undefined;
    }
  })();
  return pending;
}
