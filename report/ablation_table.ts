/**
 * The Table-1-like comparison of an ablation (per-target Dice, mean ± std
 * over cases, per backbone and method) and the paired Wilcoxon tests of the
 * reference method against each baseline.
 *
 * @module
 */
import type { MetricsSummary } from "../metrics/evaluate.ts";
import { wilcoxonSignedRank } from "../metrics/wilcoxon.ts";
import type { PairedTest } from "./ablation_report.ts";

/** One finished run of an ablation with its metrics. */
export interface AblationMetrics {
  /** Pre-training method. */
  method: string;
  /** Backbone label, e.g. "r18". */
  backbone: string;
  /** Its `metrics.json`. */
  metrics: MetricsSummary;
}

/** Mean, sample standard deviation (n − 1) and count of values. */
export interface Stat {
  /** Mean (`null` without values). */
  mean: number | null;
  /** Sample standard deviation (0 for one value, `null` without values). */
  std: number | null;
  /** Number of values. */
  n: number;
}

function stat(values: number[]): Stat {
  const n = values.length;
  if (n === 0) return { mean: null, std: null, n: 0 };
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const ss = values.reduce((a, b) => a + (b - mean) ** 2, 0);
  return { mean, std: n > 1 ? Math.sqrt(ss / (n - 1)) : 0, n };
}

/** Per-case mean Dice over targets (the "mean" column), in case order. */
function caseMeans(m: MetricsSummary): number[] {
  return m.cases.map((c) => {
    const v = Object.values(c.targets).map((t) => t.dice);
    return v.reduce((a, b) => a + b, 0) / Math.max(1, v.length);
  });
}

/** The ablation table in every format. */
export interface AblationTable {
  /** Target names (columns), then "mean". */
  targets: string[];
  /** Per run: Dice, HD95 and MSD statistics per target and for the per-case mean. */
  rows: {
    backbone: string;
    method: string;
    dice: Record<string, Stat>;
    hd95: Record<string, Stat>;
    msd: Record<string, Stat>;
  }[];
  /** Header and text cells ("0.912 ± 0.031") of the Dice table. */
  text: { header: string[]; rows: string[][] };
  /** Markdown (best mean per backbone and column in bold). */
  markdown: string;
  /** CSV, one line per backbone, method and target. */
  csv: string;
}

/**
 * Builds the Table-1-like table: per backbone and method, the Dice of each
 * target as mean ± std over cases, and the per-case mean over targets; HD95
 * and MSD statistics over the cases where they are defined go to the CSV
 * and JSON forms.
 *
 * @param runs Runs with their metrics.
 * @returns Statistics, text cells, markdown and CSV.
 * @throws {TypeError} When `runs` is empty.
 *
 * @example
 * ```ts
 * import { evaluateLabelMaps, summarizeMetrics } from "@agcl/agcl/metrics";
 * import { ablationTable } from "@agcl/agcl/report";
 * const m = summarizeMetrics([{ image: "a", metrics: evaluateLabelMaps([1, 0], [1, 0], { dims: [2, 1, 1], labels: { 1: "organ" } }) }]);
 * console.log(ablationTable([{ method: "agcl", backbone: "r18", metrics: m }]).text.rows[0]);
 * // ["r18", "agcl", "1.000 ± 0.000", "1.000 ± 0.000"]
 * ```
 */
export function ablationTable(runs: AblationMetrics[]): AblationTable {
  if (runs.length === 0) {
    throw new TypeError("Cannot compute ablationTable as 'runs' is empty");
  }
  const targets = [
    ...new Set(runs.flatMap((r) => Object.keys(r.metrics.targets))),
  ];
  const rows = runs.map((r) => {
    const dice: Record<string, Stat> = {};
    const hd95: Record<string, Stat> = {};
    const msd: Record<string, Stat> = {};
    for (const t of targets) {
      const per = r.metrics.cases.map((c) => c.targets[t]).filter((v) =>
        v !== undefined
      );
      dice[t] = stat(per.map((v) => v.dice));
      hd95[t] = stat(per.flatMap((v) => (v.hd95 === null ? [] : [v.hd95])));
      msd[t] = stat(per.flatMap((v) => (v.msd === null ? [] : [v.msd])));
    }
    dice.mean = stat(caseMeans(r.metrics));
    const means = (k: "hd95" | "msd") =>
      r.metrics.cases.flatMap((c) => {
        const v = Object.values(c.targets).flatMap((
          t,
        ) => (t[k] === null ? [] : [t[k]!]));
        return v.length ? [v.reduce((a, b) => a + b, 0) / v.length] : [];
      });
    hd95.mean = stat(means("hd95"));
    msd.mean = stat(means("msd"));
    return { backbone: r.backbone, method: r.method, dice, hd95, msd };
  });
  const columns = [...targets, "mean"];
  const cell = (s: Stat) =>
    s.mean === null ? "–" : `${s.mean.toFixed(3)} ± ${(s.std ?? 0).toFixed(3)}`;
  const text = {
    header: ["backbone", "method", ...columns],
    rows: rows.map((
      r,
    ) => [r.backbone, r.method, ...columns.map((c) => cell(r.dice[c]!))]),
  };
  // Markdown with the best mean per backbone and column in bold.
  const best = new Map<string, number>();
  for (const r of rows) {
    for (const c of columns) {
      const m = r.dice[c]!.mean;
      const k = `${r.backbone}\u0000${c}`;
      if (m !== null && m > (best.get(k) ?? -Infinity)) best.set(k, m);
    }
  }
  const md = [
    `| ${text.header.join(" | ")} |`,
    `| ${text.header.map((_, i) => (i < 2 ? "---" : "---:")).join(" | ")} |`,
    ...rows.map((r, i) =>
      `| ${
        text.rows[i]!.map((v, j) => {
          if (j < 2) return v;
          const c = columns[j - 2]!;
          return r.dice[c]!.mean !== null &&
              r.dice[c]!.mean === best.get(`${r.backbone}\u0000${c}`)
            ? `**${v}**`
            : v;
        }).join(" | ")
      } |`
    ),
  ].join("\n") + "\n";
  const num = (v: number | null) => (v === null ? "" : String(v));
  const csv = [
    "backbone,method,target,dice_mean,dice_std,n,hd95_mean,hd95_std,hd95_n,msd_mean,msd_std,msd_n",
    ...rows.flatMap((r) =>
      columns.map((c) => {
        const d = r.dice[c]!, h = r.hd95[c]!, s = r.msd[c]!;
        return [
          r.backbone,
          r.method,
          c,
          num(d.mean),
          num(d.std),
          d.n,
          num(h.mean),
          num(h.std),
          h.n,
          num(s.mean),
          num(s.std),
          s.n,
        ].map((v) => (/[",\n]/.test(String(v))
          ? `"${String(v).replace(/"/g, '""')}"`
          : v)
        ).join(",");
      })
    ),
  ].join("\n") + "\n";
  return { targets: columns, rows, text, markdown: md, csv };
}

/**
 * Paired two-sided Wilcoxon signed-rank tests of per-case Dice: the
 * `reference` method against every other method of the same backbone, per
 * target and for the per-case mean over targets ("mean"). Cases are paired
 * by their `image`.
 *
 * @param runs Runs with their metrics.
 * @param options The reference method.
 * @returns One test per backbone, baseline and target.
 *
 * @example
 * ```ts
 * import { pairedTests } from "@agcl/agcl/report";
 * console.log(pairedTests([], { reference: "agcl" })); // []
 * ```
 */
export function pairedTests(
  runs: AblationMetrics[],
  options: { reference?: string } = {},
): PairedTest[] {
  const { reference = "agcl" } = options;
  const out: PairedTest[] = [];
  for (const ref of runs.filter((r) => r.method === reference)) {
    const refCases = new Map(ref.metrics.cases.map((c, i) => [c.image, i]));
    const refMeans = caseMeans(ref.metrics);
    for (
      const base of runs.filter((r) =>
        r.backbone === ref.backbone && r.method !== reference
      )
    ) {
      const pairs = base.metrics.cases
        .map((c, j) => [refCases.get(c.image), j] as const)
        .filter((p): p is readonly [number, number] => p[0] !== undefined);
      const baseMeans = caseMeans(base.metrics);
      const targets = [...Object.keys(ref.metrics.targets), "mean"];
      for (const t of targets) {
        const x: number[] = [], y: number[] = [];
        for (const [i, j] of pairs) {
          if (t === "mean") {
            x.push(refMeans[i]!);
            y.push(baseMeans[j]!);
            continue;
          }
          const a = ref.metrics.cases[i]!.targets[t],
            b = base.metrics.cases[j]!.targets[t];
          if (a && b) {
            x.push(a.dice);
            y.push(b.dice);
          }
        }
        const r = wilcoxonSignedRank(x, y);
        out.push({
          backbone: ref.backbone,
          target: t,
          method: base.method,
          reference,
          p: r.p,
          n: r.n,
        });
      }
    }
  }
  return out;
}
