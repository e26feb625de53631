/**
 * Paired Wilcoxon signed-rank test (two-sided), as used for the stars of the
 * paper's Fig. 4. Conventions follow `scipy.stats.wilcoxon` defaults
 * (zero_method="wilcox": zero differences are dropped; statistic =
 * min(W+, W−); no continuity correction; the automatic choice of method of
 * scipy ≥ 1.15 — Debian's scipy 1.10 instead drops to the normal
 * approximation whenever a difference is zero):
 * the exact null distribution over the 2^n sign patterns of the
 * (average-tie) ranks for up to 50 pairs without ties or zeros and up to 13
 * pairs with them, the normal approximation with tie correction otherwise.
 *
 * @module
 */

/** Options for {@linkcode wilcoxonSignedRank}. */
export interface WilcoxonOptions {
  /** "exact", "approx", or "auto" (as scipy: exact for ≤ 50 pairs, ≤ 13 with ties or zeros). @default {"auto"} */
  method?: "auto" | "exact" | "approx";
}

/** Result of {@linkcode wilcoxonSignedRank}. */
export interface WilcoxonResult {
  /** min(W+, W−) over the non-zero differences. */
  statistic: number;
  /** Two-sided p-value; `null` when every difference is zero. */
  p: number | null;
  /** Number of non-zero differences. */
  n: number;
  /** Method used. */
  method: "exact" | "approx";
  /** Sum of ranks of positive differences (x > y). */
  wPlus: number;
}

/** Complementary error function (Numerical Recipes erfcc, relative error < 1.2e-7). */
function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r = t *
    Math.exp(
      -z * z - 1.26551223 +
        t * (1.00002368 +
            t * (0.37409196 +
                t * (0.09678418 +
                    t * (-0.18628806 +
                        t * (0.27886807 +
                            t *
                              (-1.13520398 +
                                t *
                                  (1.48851587 +
                                    t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/** Standard normal survival function P(Z > z). */
function normalSf(z: number): number {
  return 0.5 * erfc(z / Math.SQRT2);
}

/** Average ranks (1-based) of `values`, and the sizes of tie groups. */
function averageRanks(values: number[]): { ranks: number[]; ties: number[] } {
  const order = values.map((v, i) => [v, i] as const).sort((a, b) =>
    a[0] - b[0]
  );
  const ranks = new Array<number>(values.length);
  const ties: number[] = [];
  let i = 0;
  while (i < order.length) {
    let j = i;
    while (j + 1 < order.length && order[j + 1]![0] === order[i]![0]) j++;
    const r = (i + j + 2) / 2;
    for (let k = i; k <= j; k++) ranks[order[k]![1]] = r;
    if (j > i) ties.push(j - i + 1);
    i = j + 1;
  }
  return { ranks, ties };
}

/**
 * Two-sided paired Wilcoxon signed-rank test of `x` against `y`.
 *
 * @param x First sample (e.g. per-case Dice of AGCL).
 * @param y Paired second sample, same length (e.g. a baseline).
 * @param options Exact, normal approximation, or automatic.
 * @returns Statistic, p-value, n, method.
 * @throws {TypeError} When the lengths differ or a value is not finite.
 *
 * @example
 * ```ts
 * import { wilcoxonSignedRank } from "@agcl/agcl/metrics";
 * import assert from "node:assert/strict";
 * const r = wilcoxonSignedRank([1, 2, 3, 4, 5, 6.5, 7, 8], [0, 0, 0, 8, 0, 0, 0, 8.5]);
 * assert.equal(r.statistic, 6);
 * assert.equal(r.p, 0.109375);
 * ```
 */
export function wilcoxonSignedRank(
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  options: WilcoxonOptions = {},
): WilcoxonResult {
  const { method = "auto" } = options;
  if (x.length !== y.length) {
    throw new TypeError(
      `Cannot compute wilcoxonSignedRank as 'x' has ${x.length} values and 'y' has ${y.length}`,
    );
  }
  const d: number[] = [];
  for (let i = 0; i < x.length; i++) {
    const v = x[i]! - y[i]!;
    if (!Number.isFinite(v)) {
      throw new TypeError(
        `Cannot compute wilcoxonSignedRank as the values at index ${i} are not finite: x ${
          x[i]
        }, y ${y[i]}`,
      );
    }
    if (v !== 0) d.push(v);
  }
  const n = d.length;
  if (n === 0) {
    return {
      statistic: 0,
      p: null,
      n: 0,
      method: method === "approx" ? "approx" : "exact",
      wPlus: 0,
    };
  }
  const { ranks, ties } = averageRanks(d.map(Math.abs));
  let wPlus = 0, wMinus = 0;
  d.forEach((v, i) => (v > 0 ? (wPlus += ranks[i]!) : (wMinus += ranks[i]!)));
  const statistic = Math.min(wPlus, wMinus);
  // scipy's "auto": exact without ties or zeros up to 50 pairs; with ties or
  // zeros, exact enumeration only up to 13 pairs (2^13 sign patterns).
  const tiedOrZero = ties.length > 0 || n < x.length;
  const use = method !== "auto"
    ? method
    : x.length <= (tiedOrZero ? 13 : 50)
    ? "exact"
    : "approx";
  if (use === "exact") {
    // Null distribution of W+ over the 2^n sign patterns of these ranks;
    // doubled ranks are integers even with ties (x.5).
    const r2 = ranks.map((r) => Math.round(2 * r));
    const total = r2.reduce((a, b) => a + b, 0);
    let counts = new Float64Array(total + 1);
    counts[0] = 1;
    let reach = 0;
    for (const r of r2) {
      const next = counts.slice();
      for (let s = 0; s <= reach; s++) {
        if (counts[s]! > 0) next[s + r]! += counts[s]!;
      }
      counts = next;
      reach += r;
    }
    const limit = Math.round(2 * statistic);
    let tail = 0;
    for (let s = 0; s <= limit; s++) tail += counts[s]!;
    const p = Math.min(1, (2 * tail) / 2 ** n);
    return { statistic, p, n, method: "exact", wPlus };
  }
  const mean = (n * (n + 1)) / 4;
  let variance = (n * (n + 1) * (2 * n + 1)) / 24;
  for (const t of ties) variance -= (t * t * t - t) / 48;
  if (!(variance > 0)) return { statistic, p: 1, n, method: "approx", wPlus };
  const z = (statistic - mean) / Math.sqrt(variance);
  return {
    statistic,
    p: Math.min(1, 2 * normalSf(Math.abs(z))),
    n,
    method: "approx",
    wPlus,
  };
}
