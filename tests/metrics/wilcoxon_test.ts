import assert from "node:assert/strict";
import { wilcoxonSignedRank } from "../../metrics/wilcoxon.ts";
import { Prng } from "../../random/prng.ts";
import { assertAlmostEquals } from "../_utils.ts";
import { SCIPY, scipy } from "./_scipy.ts";

Deno.test("wilcoxonSignedRank: hand-computed exact p-values", () => {
  // d = [1, 2, 3, -4, 5, 6.5, 7, -0.5]: W− = 5 + 1 = 6; P(W ≤ 6) = 14/256 for n = 8.
  const r = wilcoxonSignedRank([1, 2, 3, 4, 5, 6.5, 7, 8], [
    0,
    0,
    0,
    8,
    0,
    0,
    0,
    8.5,
  ]);
  assert.deepEqual([r.statistic, r.p, r.n, r.method], [
    6,
    28 / 256,
    8,
    "exact",
  ]);
  // All positive, n = 5: P(W ≤ 0) = 1/32, two-sided 1/16.
  assert.equal(wilcoxonSignedRank([1, 2, 3, 4, 5], [0, 0, 0, 0, 0]).p, 1 / 16);
  // Zeros are dropped; all-zero differences give p null.
  assert.equal(wilcoxonSignedRank([1, 2, 3], [1, 2, 3]).p, null);
  assert.equal(wilcoxonSignedRank([1, 2, 3, 9], [1, 2, 3, 0]).n, 1);
  assert.throws(() => wilcoxonSignedRank([1], [1, 2]), TypeError);
  assert.throws(() => wilcoxonSignedRank([NaN], [1]), /not finite/);
});

/** Brute force: two-sided p over all 2^n sign patterns of the tied ranks. */
function bruteForceP(d: number[]): number {
  const nz = d.filter((v) => v !== 0);
  const abs = nz.map(Math.abs);
  const ranks = abs.map((a) => {
    const below = abs.filter((b) => b < a).length;
    const equal = abs.filter((b) => b === a).length;
    return below + (equal + 1) / 2;
  });
  const wPlus = nz.reduce((s, v, i) => s + (v > 0 ? ranks[i]! : 0), 0);
  const total = ranks.reduce((a, b) => a + b, 0);
  const t = Math.min(wPlus, total - wPlus);
  let hits = 0;
  for (let mask = 0; mask < 2 ** nz.length; mask++) {
    let w = 0;
    for (let i = 0; i < nz.length; i++) if (mask & (1 << i)) w += ranks[i]!;
    if (w <= t + 1e-9) hits++;
  }
  return Math.min(1, (2 * hits) / 2 ** nz.length);
}

Deno.test("wilcoxonSignedRank: exact p with ties and zeros equals brute-force enumeration", () => {
  const prng = new Prng(4);
  for (let t = 0; t < 10; t++) {
    const n = 5 + prng.int(9);
    const x = Array.from({ length: n }, () => prng.int(5) / 4);
    const y = Array.from({ length: n }, () => prng.int(5) / 4);
    const r = wilcoxonSignedRank(x, y);
    const d = x.map((v, i) => v - y[i]!);
    if (r.n === 0) continue;
    assert.equal(r.method, "exact");
    assertAlmostEquals(r.p!, bruteForceP(d), 1e-12, `trial ${t}`);
  }
});

Deno.test({
  name:
    "wilcoxonSignedRank agrees with scipy.stats.wilcoxon (exact without ties, normal approximation with ties and zeros)",
  ignore: !SCIPY,
  fn: async () => {
    const prng = new Prng(9);
    const cases: { x: number[]; y: number[]; method: "auto" | "approx" }[] = [];
    for (let t = 0; t < 12; t++) {
      const n = [6, 10, 15, 25, 60, 120][t % 6]!;
      const shift = prng.uniform(-0.3, 0.6);
      // t < 6: continuous values (no ties), scipy's automatic choice;
      // t ≥ 6: rounded values with ties and zeros, as per-case Dice often
      // has, under the normal approximation with tie correction.
      const digits = t < 6 ? 12 : 1;
      const round = (v: number) => Math.round(v * 10 ** digits) / 10 ** digits;
      const x = Array.from({ length: n }, () => round(prng.uniform(0, 1)));
      const y = x.map((v) =>
        round(v - shift * prng.next() + prng.uniform(-0.2, 0.2))
      );
      cases.push({ x, y, method: t < 6 ? "auto" : "approx" });
    }
    const ref = await scipy(
      `
import json, sys
from scipy.stats import wilcoxon
out = []
for c in json.load(sys.stdin):
    r = wilcoxon(c["x"], c["y"], method=c["method"])
    out.append([float(r.statistic), float(r.pvalue)])
print(json.dumps(out))
`,
      cases,
    ) as [number, number][];
    cases.forEach((c, i) => {
      const r = wilcoxonSignedRank(c.x, c.y, { method: c.method });
      assert.equal(
        r.method,
        c.x.length <= 50 && c.method === "auto" ? "exact" : "approx",
      );
      assertAlmostEquals(r.statistic, ref[i]![0], 1e-9, `case ${i} statistic`);
      const p = ref[i]![1];
      assertAlmostEquals(
        r.p!,
        p,
        Math.max(1e-10, 1e-6 * p),
        `case ${i} (n ${c.x.length}, ${r.method}) p`,
      );
    });
  },
});
