/**
 * 2-D embedding of projection vectors with UMAP (umap-js), seeded through
 * {@linkcode Prng} so the same seed gives the same map.
 *
 * @module
 */
import { UMAP } from "umap-js";
import { Prng } from "../random/prng.ts";

/** Options for {@linkcode embed2d}. */
export interface Embed2dOptions {
  /** Seed of the generator UMAP draws from. @default {0} */
  seed?: number;
  /** Neighbours per point (capped at n − 1). @default {15} */
  nNeighbors?: number;
  /** Minimum distance between embedded points. @default {0.1} */
  minDist?: number;
}

/**
 * Embeds vectors in 2-D with UMAP (McInnes et al. 2018), deterministically
 * for a given seed.
 *
 * @param vectors `[n, d]` vectors, all the same length, n ≥ 3.
 * @param options Seed and UMAP parameters.
 * @returns `[n, 2]` coordinates.
 * @throws {TypeError} When there are fewer than 3 vectors or their lengths differ.
 *
 * @example
 * ```ts
 * import { embed2d } from "@agcl/agcl/report";
 * import assert from "node:assert/strict";
 * const xy = embed2d([[0, 0], [0, 1], [5, 5], [5, 6]], { seed: 1 });
 * assert.equal(xy.length, 4);
 * assert.equal(xy[0]!.length, 2);
 * ```
 */
export function embed2d(
  vectors: number[][],
  options: Embed2dOptions = {},
): number[][] {
  const { seed = 0, nNeighbors = 15, minDist = 0.1 } = options;
  if (vectors.length < 3) {
    throw new TypeError(
      `Cannot compute embed2d as 'vectors' needs at least 3 rows: found ${vectors.length}`,
    );
  }
  const d = vectors[0]!.length;
  const bad = vectors.findIndex((v) => v.length !== d);
  if (bad >= 0) {
    throw new TypeError(
      `Cannot compute embed2d as every vector must have length ${d}: row ${bad} has ${
        vectors[bad]!.length
      }`,
    );
  }
  const prng = new Prng(seed);
  const umap = new UMAP({
    nComponents: 2,
    nNeighbors: Math.max(2, Math.min(nNeighbors, vectors.length - 1)),
    minDist,
    random: () => prng.next(),
  });
  return umap.fit(vectors);
}
