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

/**
 * The key that pairs a case across runs: its file name. Runs of one
 * ablation may read the same case from different folders (each phantom run
 * writes its own copy), so the full path would pair nothing.
 */
function caseKey(image: string): string {
  return image.slice(image.replace(/\\/g, "/").lastIndexOf("/") + 1);
}

/** One CSV field, quoted when it holds a quote, comma or newline. */
function csvCell(v: string | number): string {
  const t = String(v);
  return /[",\n]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t;
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
  /** Per run: Dice, HD95 and ASSD statistics per target and for the per-case mean. */
  rows: {
    backbone: string;
    method: string;
    dice: Record<string, Stat>;
    hd95: Record<string, Stat>;
    assd: Record<string, Stat>;
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
 * and ASSD statistics over the cases where they are defined go to the CSV
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
 * import assert from "node:assert/strict";
 *
 * const m = summarizeMetrics([{ image: "a", metrics: evaluateLabelMaps([1, 0], [1, 0], { dims: [2, 1, 1], labels: { 1: "organ" } }) }]);
 * assert.deepEqual(
 *   ablationTable([{ method: "agcl", backbone: "r18", metrics: m }]).text.rows[0],
 *   ["r18", "agcl", "1.000 ± 0.000", "1.000 ± 0.000"],
 * );
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
    const assd: Record<string, Stat> = {};
    for (const t of targets) {
      const per = r.metrics.cases.map((c) => c.targets[t]).filter((v) =>
        v !== undefined
      );
      dice[t] = stat(per.map((v) => v.dice));
      hd95[t] = stat(per.flatMap((v) => (v.hd95 === null ? [] : [v.hd95])));
      assd[t] = stat(per.flatMap((v) => (v.assd === null ? [] : [v.assd])));
    }
    dice.mean = stat(caseMeans(r.metrics));
    const means = (k: "hd95" | "assd") =>
      r.metrics.cases.flatMap((c) => {
        const v = Object.values(c.targets).flatMap((
          t,
        ) => (t[k] === null ? [] : [t[k]!]));
        return v.length ? [v.reduce((a, b) => a + b, 0) / v.length] : [];
      });
    hd95.mean = stat(means("hd95"));
    assd.mean = stat(means("assd"));
    return { backbone: r.backbone, method: r.method, dice, hd95, assd };
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
    "backbone,method,target,dice_mean,dice_std,n,hd95_mean,hd95_std,hd95_n,assd_mean,assd_std,assd_n",
    ...rows.flatMap((r) =>
      columns.map((c) => {
        const d = r.dice[c]!, h = r.hd95[c]!, s = r.assd[c]!;
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
        ].map(csvCell).join(",");
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
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(pairedTests([], { reference: "agcl" }), []);
 * ```
 */
export function pairedTests(
  runs: AblationMetrics[],
  options: { reference?: string } = {},
): PairedTest[] {
  const { reference = "agcl" } = options;
  const out: PairedTest[] = [];
  for (const ref of runs.filter((r) => r.method === reference)) {
    const refCases = new Map(
      ref.metrics.cases.map((c, i) => [caseKey(c.image), i]),
    );
    const refMeans = caseMeans(ref.metrics);
    for (
      const base of runs.filter((r) =>
        r.backbone === ref.backbone && r.method !== reference
      )
    ) {
      const pairs = base.metrics.cases
        .map((c, j) => [refCases.get(caseKey(c.image)), j] as const)
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

/** One finished run of a repeated ablation, with its seed. */
export interface SeededRun extends AblationMetrics {
  /** The run's seed. */
  seed: number;
}

/** One row of {@linkcode seedTable}: a method over seeds. */
export interface SeedRow {
  /** Backbone label. */
  backbone: string;
  /** Method. */
  method: string;
  /** Seeds the row averages. */
  seeds: number[];
  /** Per target (and "mean"): mean and std over seeds of each seed's mean Dice. */
  dice: Record<string, Stat>;
  /** The same over the cases whose truth contains the target (`dicePresent`). */
  dicePresent: Record<string, Stat>;
  /** Mean Dice minus that of `none` (same backbone), over seeds. */
  gain: number | null;
  /** Paired Wilcoxon test of the reference against this method over (seed, case, target) pairs. */
  test: { p: number | null; n: number } | null;
  /** Stage-1 mean Dice over seeds (the coarse map, from the run's evidence). */
  stage1: Stat;
  /** Stage-2 probes over seeds: encoder 5-NN accuracy and silhouette. */
  probe: {
    knnTarget: Stat;
    knnDomain: Stat;
    knnDomainTarget: Stat;
    silhouetteTarget: Stat;
    inputKnnTarget: Stat;
  };
  /**
   * Final stage-2 loss, its chance level and its floor (a perfect
   * encoder's loss), means over seeds.
   */
  loss: { final: Stat; chance: Stat; floor: Stat };
}

/** The evidence a run's `metrics.json` carries under `stages` (as read). */
interface StageEvidence {
  stage1?: { mean?: { dice?: number | null } };
  stage2?: {
    health?: {
      finalLoss?: number | null;
      chance?: number | null;
      floor?: number | null;
    };
    probe?: {
      input?: { knn?: { target?: number | null } };
      encoder?: {
        knn?: {
          target?: number | null;
          domain?: number | null;
          domainTarget?: number | null;
        };
        silhouette?: { target?: number | null };
      };
    } | null;
  };
}

const nums = (v: (number | null | undefined)[]) =>
  stat(v.filter((x): x is number => typeof x === "number"));

/**
 * The paper's Table 1 over repeated seeds: one row per backbone and
 * method, with each target's Dice as mean ± std over seeds (of each seed's
 * mean over cases), the gain of the mean over `none`, a paired Wilcoxon
 * signed-rank test of `reference` against the method over every (seed,
 * case, target) pair, and the evidence columns: stage-1 Dice, the frozen
 * encoder's 5-NN accuracy by target and by (domain, target), and the final
 * stage-2 loss against its chance level.
 *
 * @param runs Runs with their seeds and `metrics.json`.
 * @param options The reference method. @default {{ reference: "agcl" }}
 * @returns Rows and the markdown table.
 * @throws {TypeError} When `runs` is empty.
 */
export function seedTable(
  runs: SeededRun[],
  options: { reference?: string } = {},
): {
  rows: SeedRow[];
  text: { header: string[]; rows: string[][] };
  markdown: string;
  csv: string;
} {
  const { reference = "agcl" } = options;
  if (runs.length === 0) {
    throw new TypeError("Cannot compute seedTable as 'runs' is empty");
  }
  const targets = [
    ...new Set(runs.flatMap((r) => Object.keys(r.metrics.targets))),
  ];
  const keys: [string, string][] = [];
  for (const r of runs) {
    if (!keys.some(([b, m]) => b === r.backbone && m === r.method)) {
      keys.push([r.backbone, r.method]);
    }
  }
  const pairsOf = (a: SeededRun, b: SeededRun) => {
    const x: number[] = [], y: number[] = [];
    const byImage = new Map(
      b.metrics.cases.map((c) => [caseKey(c.image), c]),
    );
    for (const ca of a.metrics.cases) {
      const cb = byImage.get(caseKey(ca.image));
      if (!cb) continue;
      for (const t of targets) {
        const u = ca.targets[t], v = cb.targets[t];
        if (u && v) (x.push(u.dice), y.push(v.dice));
      }
    }
    return { x, y };
  };
  const rows: SeedRow[] = keys.map(([backbone, method]) => {
    const mine = runs.filter((r) =>
      r.backbone === backbone && r.method === method
    );
    const dice: Record<string, Stat> = {};
    const dicePresent: Record<string, Stat> = {};
    for (const t of [...targets, "mean"]) {
      const pick = (r: SeededRun) =>
        t === "mean" ? r.metrics.mean : r.metrics.targets[t];
      dice[t] = nums(mine.map((r) => pick(r)?.dice));
      dicePresent[t] = nums(mine.map((r) => pick(r)?.dicePresent));
    }
    const ev = (r: SeededRun) =>
      (r.metrics as unknown as { stages?: StageEvidence }).stages ?? {};
    const probe = (r: SeededRun) => ev(r).stage2?.probe ?? null;
    let test: SeedRow["test"] = null;
    if (method !== reference) {
      const x: number[] = [], y: number[] = [];
      for (const r of mine) {
        const ref = runs.find((q) =>
          q.backbone === backbone && q.method === reference &&
          q.seed === r.seed
        );
        if (!ref) continue;
        const p = pairsOf(ref, r);
        x.push(...p.x);
        y.push(...p.y);
      }
      if (x.length > 0) {
        const w = wilcoxonSignedRank(x, y);
        test = { p: w.p, n: w.n };
      }
    }
    return {
      backbone,
      method,
      seeds: mine.map((r) => r.seed),
      dice,
      dicePresent,
      gain: null,
      test,
      stage1: nums(mine.map((r) => ev(r).stage1?.mean?.dice)),
      probe: {
        knnTarget: nums(mine.map((r) => probe(r)?.encoder?.knn?.target)),
        knnDomain: nums(mine.map((r) => probe(r)?.encoder?.knn?.domain)),
        knnDomainTarget: nums(
          mine.map((r) => probe(r)?.encoder?.knn?.domainTarget),
        ),
        silhouetteTarget: nums(
          mine.map((r) => probe(r)?.encoder?.silhouette?.target),
        ),
        inputKnnTarget: nums(mine.map((r) => probe(r)?.input?.knn?.target)),
      },
      loss: {
        final: nums(mine.map((r) => ev(r).stage2?.health?.finalLoss)),
        chance: nums(mine.map((r) => ev(r).stage2?.health?.chance)),
        floor: nums(mine.map((r) => ev(r).stage2?.health?.floor)),
      },
    };
  });
  for (const r of rows) {
    const none = rows.find((q) =>
      q.backbone === r.backbone && q.method === "none"
    );
    const a = r.dice.mean!.mean, b = none?.dice.mean?.mean;
    r.gain = a !== null && b !== null && b !== undefined ? a - b : null;
  }
  const pm = (s: Stat) =>
    s.mean === null ? "–" : `${s.mean.toFixed(3)} ± ${(s.std ?? 0).toFixed(3)}`;
  const one = (s: Stat) => (s.mean === null ? "–" : s.mean.toFixed(3));
  const header = [
    "backbone",
    "method",
    ...targets,
    "mean Dice",
    "dicePresent",
    "gain vs none",
    `p (${reference} vs)`,
    "stage-1 Dice",
    "5-NN target (input → encoder)",
    "5-NN domain×target",
    "silhouette target",
    "stage-2 loss / chance / floor",
  ];
  const cells = rows.map((r) => [
    r.backbone,
    r.method,
    ...targets.map((t) => pm(r.dice[t]!)),
    pm(r.dice.mean!),
    pm(r.dicePresent.mean!),
    r.gain === null ? "–" : `${r.gain >= 0 ? "+" : ""}${r.gain.toFixed(3)}`,
    r.test === null
      ? "–"
      : `${
        r.test.p === null ? "–" : r.test.p.toPrecision(3)
      } (n = ${r.test.n})`,
    one(r.stage1),
    `${one(r.probe.inputKnnTarget)} → ${one(r.probe.knnTarget)}`,
    one(r.probe.knnDomainTarget),
    one(r.probe.silhouetteTarget),
    `${one(r.loss.final)} / ${one(r.loss.chance)} / ${one(r.loss.floor)}`,
  ]);
  const meanColumn = 2 + targets.length;
  const md = [
    `| ${header.join(" | ")} |`,
    `| ${header.map((_, i) => (i < 2 ? "---" : "---:")).join(" | ")} |`,
    ...cells.map((c) =>
      `| ${c.map((v, i) => (i === meanColumn ? `**${v}**` : v)).join(" | ")} |`
    ),
  ].join("\n") + "\n";
  const num = (v: number | null | undefined) =>
    v === null || v === undefined ? "" : String(v);
  const csv = [
    "backbone,method,target,dice_mean,dice_std,dice_gt_mean,dice_gt_std,seeds",
    ...rows.flatMap((r) =>
      [...targets, "mean"].map((t) =>
        [
          r.backbone,
          r.method,
          t,
          num(r.dice[t]!.mean),
          num(r.dice[t]!.std),
          num(r.dicePresent[t]!.mean),
          num(r.dicePresent[t]!.std),
          r.seeds.length,
        ].map(csvCell).join(",")
      )
    ),
  ].join("\n") + "\n";
  return { rows, text: { header, rows: cells }, markdown: md, csv };
}
