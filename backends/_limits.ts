/**
 * The size limits of the kernels in this folder, in one place.
 *
 * @module
 */

/**
 * Tunables; tests shrink `chunkFloats` to exercise the chunked paths and
 * `dnnlMinWork` to send tiny convolutions to oneDNN.
 */
export const limits: { chunkFloats: number; dnnlMinWork: number } = {
  /** Largest patch matrix (floats) built at once; bigger ones are chunked. */
  chunkFloats: 1 << 22,
  /**
   * Convolutions of fewer multiply-adds stay on the kernels below oneDNN's
   * (the FFI call and the weight reorder cost more than they save).
   */
  dnnlMinWork: 1 << 14,
};

/**
 * Products (multiply-adds) and reductions (elements) smaller than this stay
 * on the wasm backend's own kernels: the FFI call costs more than it saves.
 */
export const MIN_BLAS_WORK = 1 << 14;

/**
 * How many patch rows of `K` floats fit in one chunk of
 * {@linkcode limits}`.chunkFloats` (at least 1, at most the `P` rows there are).
 */
export function chunkRows(K: number, P: number): number {
  return Math.max(1, Math.min(P, Math.floor(limits.chunkFloats / K)));
}
