/**
 * Optional native sgemm through Deno FFI: OpenBLAS on Linux, Accelerate on
 * macOS. Detected at runtime; absent library or permission → undefined.
 *
 * @module
 */
import { env, granted } from "./_permissions.ts";

/**
 * One row-major product C = op(A)·op(B) + β·C of packed matrices: op(A) is
 * [m, k], op(B) is [k, n], C is [m, n]; the views start at each matrix's
 * first element.
 */
export interface GemmOp {
  /** Whether A is stored transposed ([k, m]). @default {false} */
  transA?: boolean;
  /** Whether B is stored transposed ([n, k]). @default {false} */
  transB?: boolean;
  /** Rows of op(A) and C. */
  m: number;
  /** Columns of op(B) and C. */
  n: number;
  /** Columns of op(A), rows of op(B). */
  k: number;
  /** The left operand. */
  a: Float32Array;
  /** The right operand. */
  b: Float32Array;
  /** The result, accumulated into when `beta` is not 0. */
  c: Float32Array;
  /** Weight of C's previous contents. @default {0} */
  beta?: number;
}

/** A native single-precision BLAS, row-major. */
export interface Blas {
  /** Path of the loaded library. */
  readonly path: string;
  /** cblas_sgemm on packed matrices (leading dimensions from the shapes). */
  gemm(op: GemmOp): void;
  /** cblas_sgemv on a packed matrix, unit strides. */
  gemv(op: GemvOp): void;
}

/** One row-major y = α·op(A)·x + β·y with A packed as [m, n]. */
export interface GemvOp {
  /** Whether to multiply by Aᵀ (then x has m entries, y has n). @default {false} */
  transA?: boolean;
  /** Rows of A. */
  m: number;
  /** Columns of A. */
  n: number;
  /** Scale of the product. @default {1} */
  alpha?: number;
  /** The matrix. */
  a: Float32Array;
  /** The vector multiplied. */
  x: Float32Array;
  /** The result, accumulated into when `beta` is not 0. */
  y: Float32Array;
  /** Weight of y's previous contents. @default {0} */
  beta?: number;
}

/** Libraries tried in order (the first that opens and has cblas_sgemm wins). */
const CANDIDATES: readonly string[] = [
  "libopenblas.so.0",
  "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
  "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
  "/usr/lib64/libopenblas.so.0",
  "/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
  "/usr/local/opt/openblas/lib/libopenblas.dylib",
  "/System/Library/Frameworks/Accelerate.framework/Accelerate",
];

const SYMBOLS = {
  cblas_sgemm: {
    parameters: [
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "f32",
      "buffer",
      "i32",
      "buffer",
      "i32",
      "f32",
      "buffer",
      "i32",
    ],
    result: "void",
  },
  cblas_sgemv: {
    parameters: [
      "i32",
      "i32",
      "i32",
      "i32",
      "f32",
      "buffer",
      "i32",
      "buffer",
      "i32",
      "f32",
      "buffer",
      "i32",
    ],
    result: "void",
  },
} as const;

const ROW_MAJOR = 101;
const NO_TRANS = 111;
const TRANS = 112;

let cached: { blas?: Blas; reason: string } | undefined;

/**
 * Keeps the BLAS library mapped until the process ends (glibc's
 * `RTLD_NODELETE`). Each Deno worker (`deno test --parallel` runs one per
 * test module) opens the library and closes it when it ends; when the last
 * one closed it, OpenBLAS was unloaded under its own worker threads and the
 * process sometimes aborted at exit ("double free or corruption", exit
 * 134). Linux only; a failure here only leaves the old behaviour.
 */
function pinLibrary(path: string): void {
  if (Deno.build.os !== "linux") return;
  try {
    const libc = Deno.dlopen("libc.so.6", {
      dlopen: { parameters: ["buffer", "i32"], result: "pointer" },
    });
    const RTLD_LAZY = 0x1, RTLD_NODELETE = 0x1000;
    libc.symbols.dlopen(
      new TextEncoder().encode(path + "\0"),
      RTLD_LAZY | RTLD_NODELETE,
    );
    // The extra reference taken by dlopen is never released on purpose.
  } catch {
    // No libc.so.6 (e.g. musl): keep the default.
  }
}

/**
 * Opens a system BLAS once. `AGCL_BLAS=off` disables it; `AGCL_BLAS_LIB`
 * names a library to try first. Never prompts: without `--allow-ffi` it
 * reports why and returns no library.
 */
export function openBlas(): { blas?: Blas; reason: string } {
  if (cached) return cached;
  const setting = env("AGCL_BLAS")?.toLowerCase();
  if (setting === "off" || setting === "0" || setting === "false") {
    return cached = { reason: "BLAS disabled by AGCL_BLAS" };
  }
  if (typeof Deno === "undefined" || typeof Deno.dlopen !== "function") {
    return cached = { reason: "no FFI in this runtime" };
  }
  if (!granted("ffi")) {
    return cached = { reason: "no --allow-ffi permission for OpenBLAS" };
  }
  const first = env("AGCL_BLAS_LIB");
  const errors: string[] = [];
  for (const path of first ? [first, ...CANDIDATES] : CANDIDATES) {
    try {
      const lib = Deno.dlopen(path, SYMBOLS);
      pinLibrary(path);
      const f = lib.symbols.cblas_sgemm;
      const v = lib.symbols.cblas_sgemv;
      const blas: Blas = {
        path,
        gemm({ transA = false, transB = false, m, n, k, a, b, c, beta = 0 }) {
          f(
            ROW_MAJOR,
            transA ? TRANS : NO_TRANS,
            transB ? TRANS : NO_TRANS,
            m,
            n,
            k,
            1,
            a,
            transA ? m : k,
            b,
            transB ? k : n,
            beta,
            c,
            n,
          );
        },
        gemv({ transA = false, m, n, alpha = 1, a, x, y, beta = 0 }) {
          v(
            ROW_MAJOR,
            transA ? TRANS : NO_TRANS,
            m,
            n,
            alpha,
            a,
            n,
            x,
            1,
            beta,
            y,
            1,
          );
        },
      };
      return cached = { blas, reason: `cblas_sgemm from ${path}` };
    } catch (e) {
      errors.push(`${path}: ${e instanceof Error ? e.message : e}`);
    }
  }
  return cached = {
    reason: `no BLAS library with cblas_sgemm found (${errors.length} tried)`,
  };
}
