/** The compute backends the library knows, in one frozen table. */
export const BACKEND_NAMES: readonly ["cpu", "wasm", "webgpu"] = Object.freeze(
  ["cpu", "wasm", "webgpu"] as const,
);

/** Name of a compute backend: `"cpu"`, `"wasm"` or `"webgpu"`. */
export type BackendName = (typeof BACKEND_NAMES)[number];

/** What the backend will be used for: training needs gradient kernels. */
export type Purpose = "train" | "infer";

/** Description of the WebGPU adapter a backend runs on. */
export interface AdapterDescription {
  /** Adapter description string, e.g. `"llvmpipe (LLVM 15.0.6, 256 bits)"`. */
  description: string;
  /** Vendor id or name as the adapter reports it. */
  vendor: string;
  /** `true` for a software (fallback) adapter such as llvmpipe. */
  isFallbackAdapter: boolean;
}

/**
 * How the wasm backend runs its matrix products and convolutions:
 * `"onednn"` runs convolutions (forward and both gradients) on oneDNN
 * (Debian `libdnnl2` via Deno FFI) and matrix products on a native BLAS
 * when there is one; `"blas"` runs both through a native BLAS
 * (OpenBLAS/Accelerate `cblas_sgemm` via Deno FFI); `"xnnpack"` uses the
 * backend's own WebAssembly kernels.
 */
export type WasmAcceleration = "onednn" | "blas" | "xnnpack";

/** A compute backend that can be probed and activated. */
export interface Backend {
  /** The backend's name, as tfjs registers it. */
  readonly name: BackendName;
  /** Whether the backend can run here (e.g. a WebGPU adapter exists). */
  isAvailable(): Promise<boolean>;
  /**
   * Why the backend cannot serve `purpose`, or `undefined` when it can.
   * Checked after {@linkcode Backend.activate}, because kernels register then.
   */
  missingFor(purpose: Purpose): string | undefined;
  /** Registers the tfjs backend (lazily importing it) and makes it current. */
  activate(): Promise<void>;
  /** The adapter the backend runs on, for GPU backends. */
  adapter(): Promise<AdapterDescription | undefined>;
  /**
   * What accelerates the backend now (e.g. `"blas"` for wasm with a native
   * BLAS) and a short description, when anything does; `hint` says what
   * would make it faster (e.g. `--allow-ffi` for the BLAS).
   */
  acceleration?(): { name: string; detail: string; hint?: string } | undefined;
}

/** What {@linkcode selectBackend} chose, and why. */
export interface BackendReport {
  /** The backend that is now active. */
  name: BackendName;
  /** One sentence saying why this backend was chosen. */
  reason: string;
  /** The adapter, for WebGPU. */
  adapter?: AdapterDescription;
  /** What accelerates the backend, e.g. `"blas"` for wasm with OpenBLAS. */
  acceleration?: string;
  /**
   * What would make training faster, when something would, e.g. running
   * with `--allow-ffi` so wasm can use a system BLAS. Only for `"train"`.
   */
  hint?: string;
}
