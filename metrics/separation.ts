/**
 * How well an embedding separates groups: leave-one-out k-nearest-neighbour
 * accuracy and the mean silhouette (Rousseeuw 1987), both in Euclidean
 * distance over row-major `[n, dim]` points. Used to probe what stage 2
 * taught the encoder (by target, by domain, by (domain, target)).
 *
 * @module
 */

/** Points of an embedding: row-major `[n, dim]` values. */
export interface Embedding {
  /** `n × dim` values, row-major. */
  data: Float32Array | Float64Array;
  /** Dimensions per point. */
  dim: number;
}

function checkPoints(
  fn: string,
  { data: points, dim }: Embedding,
  labels: ArrayLike<number | string>,
): number {
  if (!Number.isInteger(dim) || dim < 1) {
    throw new RangeError(
      `Cannot compute ${fn} as 'embedding.dim' must be a positive integer: current value is ${dim}`,
    );
  }
  if (points.length % dim !== 0 || points.length / dim !== labels.length) {
    throw new TypeError(
      `Cannot compute ${fn} as 'embedding.data' must hold labels.length × dim = ${labels.length} × ${dim} values: current length is ${points.length}`,
    );
  }
  return labels.length;
}

/** Squared Euclidean distances between all rows, `[n, n]`. */
function distances(
  points: Float32Array | Float64Array,
  n: number,
  dim: number,
): Float64Array {
  const d = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      let s = 0;
      for (let k = 0; k < dim; k++) {
        const v = points[i * dim + k]! - points[j * dim + k]!;
        s += v * v;
      }
      d[i * n + j] = s;
      d[j * n + i] = s;
    }
  }
  return d;
}

/**
 * Leave-one-out k-NN accuracy: each point is classified by the majority
 * label of its `k` nearest other points (ties go to the label of the
 * nearest point among the tied ones), and the share of points classified
 * correctly is returned. `null` for fewer than 2 points.
 *
 * @param embedding The points, row-major `[n, dim]`.
 * @param labels One label per point.
 * @param options `k` (@default {5}).
 * @returns Accuracy in [0, 1], or `null`.
 *
 * @example
 * ```ts
 * import { knnAccuracy } from "@agcl/agcl/metrics";
 * import assert from "node:assert/strict";
 *
 * const points = new Float32Array([0, 0, 0, 1, 10, 10, 10, 11]);
 * assert.equal(knnAccuracy({ data: points, dim: 2 }, ["a", "a", "b", "b"], { k: 1 }), 1);
 * ```
 */
export function knnAccuracy(
  embedding: Embedding,
  labels: ArrayLike<number | string>,
  options: { k?: number } = {},
): number | null {
  const n = checkPoints("knnAccuracy", embedding, labels);
  const { data: points, dim } = embedding;
  const { k = 5 } = options;
  if (!Number.isInteger(k) || k < 1) {
    throw new RangeError(
      `Cannot compute knnAccuracy as 'k' must be a positive integer: current value is ${k}`,
    );
  }
  if (n < 2) return null;
  const d = distances(points, n, dim);
  const kk = Math.min(k, n - 1);
  let correct = 0;
  const idx = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < n; i++) {
    const near = idx.filter((j) => j !== i)
      .sort((a, b) => d[i * n + a]! - d[i * n + b]! || a - b)
      .slice(0, kk);
    const votes = new Map<number | string, number>();
    for (const j of near) {
      votes.set(labels[j]!, (votes.get(labels[j]!) ?? 0) + 1);
    }
    const top = Math.max(...votes.values());
    // Ties: the nearest neighbour whose label has the top count decides.
    const winner = labels[near.find((j) => votes.get(labels[j]!) === top)!]!;
    if (winner === labels[i]) correct++;
  }
  return correct / n;
}

/**
 * Mean silhouette coefficient: for each point, `(b − a) / max(a, b)` with
 * `a` its mean distance to the other members of its group and `b` the
 * smallest mean distance to another group; points alone in their group
 * score 0 (as scikit-learn). In [−1, 1]; `null` when there are fewer than
 * 2 groups or as many groups as points.
 *
 * @param embedding The points, row-major `[n, dim]`.
 * @param labels One group label per point.
 * @returns The mean silhouette, or `null`.
 *
 * @example
 * ```ts
 * import { silhouetteScore } from "@agcl/agcl/metrics";
 * import assert from "node:assert/strict";
 *
 * const points = new Float32Array([0, 0, 0, 1, 10, 10, 10, 11]);
 * const s = silhouetteScore({ data: points, dim: 2 }, [0, 0, 1, 1])!;
 * assert.ok(s > 0.9 && s < 1);
 * ```
 */
export function silhouetteScore(
  embedding: Embedding,
  labels: ArrayLike<number | string>,
): number | null {
  const n = checkPoints("silhouetteScore", embedding, labels);
  const { data: points, dim } = embedding;
  const groups = new Map<number | string, number[]>();
  for (let i = 0; i < n; i++) {
    const g = groups.get(labels[i]!);
    if (g) g.push(i);
    else groups.set(labels[i]!, [i]);
  }
  if (groups.size < 2 || groups.size >= n) return null;
  const d = distances(points, n, dim);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const own = groups.get(labels[i]!)!;
    if (own.length === 1) continue;
    let a = 0;
    for (const j of own) a += j === i ? 0 : Math.sqrt(d[i * n + j]!);
    a /= own.length - 1;
    let b = Infinity;
    for (const [label, members] of groups) {
      if (label === labels[i]) continue;
      let m = 0;
      for (const j of members) m += Math.sqrt(d[i * n + j]!);
      b = Math.min(b, m / members.length);
    }
    const den = Math.max(a, b);
    sum += den > 0 ? (b - a) / den : 0;
  }
  return sum / n;
}
