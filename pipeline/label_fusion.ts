/**
 * Label fusion: per-target probability maps → one multi-organ label map.
 *
 * @module
 */
import { newLabelMap } from "./_arrays.ts";

/** One target's input to {@linkcode fuseLabels}. */
export interface TargetProbability {
  /** The label value written for this target (> 0). */
  label: number;
  /** Foreground probability per voxel, in [0, 1]. */
  prob: Float32Array;
  /** The target's attention: voxels where it may be predicted (non-zero = inside). */
  attention: ArrayLike<number>;
}

/** Options for {@linkcode fuseLabels}. */
export interface FuseLabelsOptions {
  /** A target is a candidate where its probability is strictly greater. @default {0.5} */
  threshold?: number;
}

/**
 * Fuses per-target probabilities into one label map: each voxel takes the
 * label of the target with the highest probability among those with
 * `p > threshold` inside their own attention, and background (0) where no
 * target qualifies.
 *
 * Tie rule: when two candidates have exactly the same probability, the
 * target listed first in `targets` wins (the pipeline lists targets in
 * ascending label order, so the lower label wins).
 *
 * @param targets Per-target maps, all of the same length (voxel count).
 * @param options Threshold.
 * @returns `Uint8Array` when every label is ≤ 255, else `Int16Array`.
 * @throws {TypeError} When the maps differ in length.
 * @throws {RangeError} For a label that is not a positive integer ≤ 32767,
 * or a threshold outside [0, 1).
 *
 * @example Two targets competing for one voxel
 * ```ts
 * import { fuseLabels } from "@agcl/agcl/pipeline";
 * import assert from "node:assert/strict";
 *
 * const fused = fuseLabels([
 *   { label: 1, prob: new Float32Array([0.9, 0.6, 0.2]), attention: [1, 1, 1] },
 *   { label: 2, prob: new Float32Array([0.7, 0.8, 0.9]), attention: [1, 1, 0] },
 * ]);
 * assert.deepEqual(Array.from(fused), [1, 2, 0]);
 * ```
 */
export function fuseLabels(
  targets: TargetProbability[],
  options: FuseLabelsOptions = {},
): Uint8Array | Int16Array {
  const { threshold = 0.5 } = options;
  if (!(threshold >= 0 && threshold < 1)) {
    throw new RangeError(
      `Cannot fuse labels as 'threshold' must be in [0, 1): current value is ${threshold}`,
    );
  }
  const n = targets[0]?.prob.length ?? 0;
  let maxLabel = 0;
  for (const [i, t] of targets.entries()) {
    if (!Number.isInteger(t.label) || t.label <= 0 || t.label > 32767) {
      throw new RangeError(
        `Cannot fuse labels as 'targets[${i}].label' must be an integer in [1, 32767]: current value is ${t.label}`,
      );
    }
    if (t.prob.length !== n || t.attention.length !== n) {
      throw new TypeError(
        `Cannot fuse labels as 'targets[${i}]' must have ${n} voxels: prob has ${t.prob.length}, attention has ${t.attention.length}`,
      );
    }
    maxLabel = Math.max(maxLabel, t.label);
  }
  const out = newLabelMap(n, maxLabel);
  const best = new Float32Array(n).fill(threshold);
  for (const t of targets) {
    const { prob, attention, label } = t;
    for (let v = 0; v < n; v++) {
      // Strictly greater: the first listed target keeps a tie.
      if (attention[v] !== 0 && prob[v]! > best[v]!) {
        best[v] = prob[v]!;
        out[v] = label;
      }
    }
  }
  return out;
}
