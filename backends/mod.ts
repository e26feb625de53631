/**
 * Compute backends: one small interface, a registry of `cpu`, `wasm` and
 * `webgpu` (each imported lazily), and {@linkcode selectBackend}, which picks
 * one with fallback and says why. No code outside this folder asks which
 * backend is active.
 *
 * @example Pick the best backend for training
 * ```ts
 * import { selectBackend } from "@agcl/agcl/backends";
 * import assert from "node:assert/strict";
 *
 * const report = await selectBackend("cpu", { purpose: "train" });
 * assert.deepEqual(report, { name: "cpu", reason: "requested explicitly" });
 * ```
 *
 * @module
 */
export * from "./types.ts";
export * from "./registry.ts";
