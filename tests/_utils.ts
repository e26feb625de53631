/** Helpers shared by the tests: tolerances, leak checks, backend loops. */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  availableBackends,
  type BackendName,
  getBackend,
  selectBackend,
} from "../backends/mod.ts";

/**
 * Asserts `|actual - expected| <= tol` elementwise, printing the first
 * offending index, both values and the delta.
 */
export function assertAlmostEquals(
  actual: number | ArrayLike<number>,
  expected: number | ArrayLike<number>,
  tol = 1e-5,
  msg = "",
): void {
  const a = typeof actual === "number" ? [actual] : Array.from(actual);
  const e = typeof expected === "number" ? [expected] : Array.from(expected);
  assert.equal(a.length, e.length, `${msg} length ${a.length} != ${e.length}`);
  for (let i = 0; i < a.length; i++) {
    const delta = Math.abs(a[i]! - e[i]!);
    if (!(delta <= tol) && !(Number.isNaN(a[i]) && Number.isNaN(e[i]))) {
      throw new assert.AssertionError({
        message: `${msg} Expected actual[${i}]=${a[i]} to be close to ${
          e[i]
        }: delta ${delta} > tolerance ${tol}`,
        actual: a[i],
        expected: e[i],
      });
    }
  }
}

/** Runs `fn`, disposes its result, and asserts no tensor was left behind. */
export function assertNoLeak(fn: () => tf.TensorContainer): void {
  const before = tf.memory().numTensors;
  tf.dispose(fn());
  assert.equal(tf.memory().numTensors, before, "Tensors leaked");
}

/** Async version of {@linkcode assertNoLeak}. */
export async function assertNoLeakAsync(
  fn: () => Promise<tf.TensorContainer>,
): Promise<void> {
  const before = tf.memory().numTensors;
  tf.dispose(await fn());
  assert.equal(tf.memory().numTensors, before, "Tensors leaked");
}

/** Backends that can run on this machine (webgpu on the software adapter too). */
export const AVAILABLE: readonly BackendName[] = await availableBackends();

// Loading the backends registers their kernels (without activating them),
// including the training kernels backends/ adds to wasm, so what each
// backend lacks for training is known up front.
await (await import("../backends/wasm.ts")).load();
// The wasm backend opens oneDNN or a system BLAS through FFI (once per
// process) on its first activation; opening them here, outside any test,
// keeps Deno's resource sanitizer from counting the library against
// whichever test runs first.
(await import("../backends/_dnnl.ts")).openDnnl();
(await import("../backends/_blas.ts")).openBlas();
await import("@tensorflow/tfjs-backend-webgpu");

/** Available backends that have every kernel a training step needs. */
export const TRAINABLE: readonly BackendName[] = (
  await Promise.all(
    AVAILABLE.map(async (n) =>
      (await getBackend(n)).missingFor("train") ? undefined : n
    ),
  )
).filter((n): n is BackendName => n !== undefined);

/** Options for {@linkcode testOnBackends}. */
export interface BackendTestOptions {
  /** Backends to run on; defaults to all three. */
  backends?: readonly BackendName[];
  /** What the body needs: `"train"` skips backends lacking gradient kernels. */
  purpose?: "train" | "infer";
}

/**
 * Registers one `Deno.test` per backend, running `fn` with that backend active.
 * A backend absent from this machine is registered as ignored, so the report
 * shows what did not run.
 */
export function testOnBackends(
  name: string,
  fn: (backend: BackendName) => void | Promise<void>,
  options: BackendTestOptions = {},
): void {
  const { backends = ["cpu", "wasm", "webgpu"], purpose = "infer" } = options;
  for (const backend of backends) {
    Deno.test({
      name: `${name} [${backend}]`,
      ignore: !(purpose === "train" ? TRAINABLE : AVAILABLE).includes(backend),
      // WebGPU keeps device handles open for the process' lifetime.
      sanitizeResources: backend !== "webgpu",
      sanitizeOps: backend !== "webgpu",
      async fn() {
        const previous = tf.getBackend();
        await selectBackend(backend, { purpose });
        try {
          await fn(backend);
        } finally {
          if (previous && previous !== backend) await tf.setBackend(previous);
        }
      },
    });
  }
}

/** Tolerance for comparisons on `backend`: looser where float16 may be used. */
export function tolerance(backend: BackendName): number {
  return backend === "webgpu" ? 1e-3 : 1e-5;
}
