/**
 * Per-target metrics of multi-label maps (Dice, IoU, HD, HD95, ASSD) and
 * their aggregation into the `metrics.json` shape written by `train` and
 * `eval`.
 *
 * @module
 */
import { cropBox } from "./_grid.ts";
import {
  distancesFromSurfaces,
  type SurfaceDistanceOptions,
  surfaceVoxels,
} from "./surface_distance.ts";

/** Metrics of one target in one case. */
export interface TargetScores {
  /** Dice: 1 when prediction and truth are both empty, 0 when only one is. */
  dice: number;
  /** Intersection over union (1 when both are empty). */
  iou: number;
  /** Hausdorff distance in mm, or `null` (see `reason`). */
  hd: number | null;
  /** 95th-percentile Hausdorff distance in mm, or `null`. */
  hd95: number | null;
  /** Mean symmetric surface distance in mm, or `null`. */
  assd: number | null;
  /** Why the distances are `null`: "both empty", "prediction empty", "truth empty". */
  reason?: string;
}

/** Metrics of one case: one entry per target name. */
export interface CaseMetrics {
  /** Per target name (label 0 / background excluded). */
  targets: Record<string, TargetScores>;
}

/** Options for {@linkcode evaluateLabelMaps}. */
export interface EvaluateOptions {
  /** `[nx, ny, nz]`, x fastest; `nz = 1` is evaluated as 2-D (4-connected surfaces). */
  dims: readonly [number, number, number] | readonly number[];
  /** Voxel size in mm. @default {[1, 1, 1]} */
  spacing?: readonly number[];
  /** Label value → name; label 0 (background) is skipped. */
  labels: Record<number | string, string>;
  /** Percentile of the robust Hausdorff distance. @default {95} */
  percentile?: number;
  /** ASSD mode (see `surfaceDistances`). @default {"pooled"} */
  assdMode?: SurfaceDistanceOptions["assdMode"];
}

/**
 * Evaluates a predicted label map against the truth, per target: Dice, IoU,
 * and (on an exact anisotropic EDT restricted to each label's bounding box)
 * HD, HD95 and ASSD in mm. Empty masks follow the DESIGN.md policy: Dice 1
 * if both are empty, 0 if one is; distances `null` with a reason.
 *
 * @param pred Predicted labels, `nx·ny·nz` voxels, x fastest.
 * @param truth True labels, same layout.
 * @param options Grid, spacing and the label names.
 * @returns Per-target metrics.
 * @throws {TypeError} When sizes disagree or `labels` is empty.
 * @throws {RangeError} When the spacing or percentile is out of range.
 *
 * @example
 * ```ts
 * import { evaluateLabelMaps } from "@agcl/agcl/metrics";
 * import assert from "node:assert/strict";
 * const pred = new Uint8Array([1, 1, 0, 0]);
 * const truth = new Uint8Array([1, 0, 0, 0]);
 * const m = evaluateLabelMaps(pred, truth, { dims: [4, 1, 1], labels: { 0: "background", 1: "organ" } });
 * assert.equal(m.targets.organ!.dice, 0.6666666666666666);
 * ```
 */
export function evaluateLabelMaps(
  pred: ArrayLike<number>,
  truth: ArrayLike<number>,
  options: EvaluateOptions,
): CaseMetrics {
  const { dims, labels, percentile = 95, assdMode = "pooled" } = options;
  if (dims.length !== 3) {
    throw new TypeError(
      `Cannot compute evaluateLabelMaps as 'dims' must be [nx, ny, nz]: current value is ${
        JSON.stringify(dims)
      }`,
    );
  }
  const [nx, ny, nz] = dims as [number, number, number];
  if (nx * ny * nz !== pred.length || pred.length !== truth.length) {
    throw new TypeError(
      `Cannot compute evaluateLabelMaps as 'pred' (${pred.length}) and 'truth' (${truth.length}) must both have ${
        nx * ny * nz
      } voxels for dims ${JSON.stringify(dims)}`,
    );
  }
  const spacing = options.spacing ?? [1, 1, 1];
  if (spacing.length !== 3 || spacing.some((s) => !(s > 0 && isFinite(s)))) {
    throw new RangeError(
      `Cannot compute evaluateLabelMaps as 'spacing' must be 3 finite values > 0: current value is ${
        JSON.stringify(spacing)
      }`,
    );
  }
  const targets = Object.entries(labels)
    .map(([k, name]) => ({ id: Number(k), name }))
    .filter((t) => t.id !== 0)
    .sort((a, b) => a.id - b.id);
  if (targets.length === 0) {
    throw new TypeError(
      `Cannot compute evaluateLabelMaps as 'labels' has no non-background label: current value is ${
        JSON.stringify(labels)
      }`,
    );
  }
  // One pass: counts, overlap and the joint bounding box of each target.
  const index = new Map<number, number>(targets.map((t, i) => [t.id, i]));
  const k = targets.length;
  const np = new Float64Array(k), nt = new Float64Array(k);
  const both = new Float64Array(k);
  const box = new Int32Array(6 * k);
  for (let j = 0; j < k; j++) box.set([nx, -1, ny, -1, nz, -1], 6 * j);
  const grow = (j: number, x: number, y: number, z: number) => {
    const b = 6 * j;
    if (x < box[b]!) box[b] = x;
    if (x > box[b + 1]!) box[b + 1] = x;
    if (y < box[b + 2]!) box[b + 2] = y;
    if (y > box[b + 3]!) box[b + 3] = y;
    if (z < box[b + 4]!) box[b + 4] = z;
    if (z > box[b + 5]!) box[b + 5] = z;
  };
  let i = 0;
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++, i++) {
        const p = pred[i]!, t = truth[i]!;
        if (p === 0 && t === 0) continue;
        const a = index.get(p), b = index.get(t);
        if (a !== undefined) {
          np[a]!++;
          grow(a, x, y, z);
        }
        if (b !== undefined) {
          nt[b]!++;
          if (b !== a) grow(b, x, y, z);
          else both[b]!++;
        }
      }
    }
  }
  const two = nz === 1;
  const out: Record<string, TargetScores> = {};
  for (let j = 0; j < k; j++) {
    const { id, name } = targets[j]!;
    const a = np[j]!, b = nt[j]!, ab = both[j]!;
    const dice = a + b === 0 ? 1 : (2 * ab) / (a + b);
    const iou = a + b - ab === 0 ? 1 : ab / (a + b - ab);
    if (a === 0 || b === 0) {
      out[name] = {
        dice,
        iou,
        hd: null,
        hd95: null,
        assd: null,
        reason: a === 0 && b === 0
          ? "both empty"
          : a === 0
          ? "prediction empty"
          : "truth empty",
      };
      continue;
    }
    const bx = Array.from(box.subarray(6 * j, 6 * j + 6));
    const pm = cropBox(pred, dims, bx, id);
    const tm = cropBox(truth, dims, bx, id);
    const cd = two ? pm.dims.slice(0, 2) : pm.dims;
    const r = distancesFromSurfaces(
      surfaceVoxels(pm.data, cd),
      surfaceVoxels(tm.data, cd),
      {
        dims: cd,
        spacing: two ? spacing.slice(0, 2) : spacing,
        percentile,
        assdMode,
      },
    );
    out[name] = { dice, iou, hd: r.hd, hd95: r.hd95, assd: r.assd };
  }
  return { targets: out };
}

/** Metrics of one target in `metrics.json` (per case or averaged). */
export interface MetricsEntry {
  /** Dice. */
  dice: number;
  /** HD95 in mm, or `null` when no case had one. */
  hd95: number | null;
  /** Average symmetric surface distance (ASSD) in mm, or `null` when no case had one. */
  assd: number | null;
  /** IoU. */
  iou?: number;
  /** Hausdorff distance in mm. */
  hd?: number | null;
  /** Why the distances are `null` (per case only). */
  reason?: string;
  /**
   * `dicePresent`: mean Dice over the cases whose ground truth contains the
   * target (MONAI's `DiceMetric(ignore_empty=True)`), `null` when no case
   * does (summaries only). Differs from `dice` when the target is absent
   * from some cases. The one name of this quantity in `metrics.json`,
   * `metrics.csv` (per case: `present`), the tables and the report.
   */
  dicePresent?: number | null;
}

/** Mean, sample standard deviation, median and count of one metric over cases. */
export interface MetricStat {
  /** Mean, `null` without values. */
  mean: number | null;
  /** Sample standard deviation (n − 1); 0 for one value, `null` without values. */
  std: number | null;
  /** Median, `null` without values. */
  median: number | null;
  /** Number of cases whose value entered (defined distances, cases with the target for `dicePresent`). */
  n: number;
}

/** The metrics {@linkcode MetricsSummary.stats} describes, per target. */
export type StatName = "dice" | "dicePresent" | "iou" | "hd95" | "assd" | "hd";

/** Per target: how many cases, how many values entered each mean, how many were `null`. */
export interface TargetCounts {
  /** Cases evaluated. */
  cases: number;
  /** Cases whose HD95 entered the mean. */
  hd95: number;
  /** Cases whose ASSD entered the mean. */
  assd: number;
  /** Cases whose HD95 was `null` (left out of the mean). */
  hd95Null: number;
  /** Cases whose ASSD was `null`. */
  assdNull: number;
  /** Null reasons and how often each occurred. */
  reasons: Record<string, number>;
  /** Cases whose ground truth contains the target (the cases of `dicePresent`). */
  present: number;
  /** Cases where the target was predicted but is absent from the ground truth. */
  falsePositive: number;
}

/** The content of `metrics.json` (shape shared by `train` and `eval`). */
export interface MetricsSummary {
  /** Mean over cases, per target name. */
  targets: Record<string, MetricsEntry>;
  /** Mean over targets of the per-target means. */
  mean: MetricsEntry;
  /**
   * Per case, in input order, each keyed by its case id (`id`, e.g.
   * `case_00`) and keeping its image path (`image`).
   */
  cases: { id: string; image: string; targets: Record<string, MetricsEntry> }[];
  /** Empty-mask bookkeeping per target. */
  counts: Record<string, TargetCounts>;
  /**
   * Per target, per metric: mean, std, median and n over the cases
   * (`dicePresent` over the cases with the target; distances over the cases
   * where they are defined). Always written by {@linkcode summarizeMetrics};
   * absent from `metrics.json` files of older runs.
   */
  stats?: Record<string, Record<StatName, MetricStat>>;
}

function meanOf(values: number[]): number | null {
  return values.length === 0
    ? null
    : values.reduce((a, b) => a + b, 0) / values.length;
}

function statOf(values: number[]): MetricStat {
  const n = values.length;
  const mean = meanOf(values);
  if (mean === null) return { mean: null, std: null, median: null, n: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const mid = n >> 1;
  const median = n % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  const ss = values.reduce((a, v) => a + (v - mean) ** 2, 0);
  return { mean, std: n > 1 ? Math.sqrt(ss / (n - 1)) : 0, median, n };
}

/** A case id from an image path: its file name without `.nii`/`.nii.gz` or an image extension. */
function caseIdOf(image: string): string {
  return image.slice(image.replace(/\\/g, "/").lastIndexOf("/") + 1)
    .replace(/\.(nii(\.gz)?|jpe?g|png)$/i, "");
}

/**
 * Aggregates per-case metrics into the `metrics.json` shape: per-target
 * means over cases (Dice over every case; HD95/ASSD over the cases where they
 * are defined, the others counted in `counts`), then the mean over targets.
 *
 * @param cases Image path, case id (default: the image's file name without
 * extension) and metrics of each case.
 * @returns The summary; never NaN.
 * @throws {TypeError} When `cases` is empty or cases disagree on targets.
 *
 * @example
 * ```ts
 * import { evaluateLabelMaps, summarizeMetrics } from "@agcl/agcl/metrics";
 * import assert from "node:assert/strict";
 * const labels = { 1: "organ" };
 * const m = evaluateLabelMaps([1, 0], [1, 0], { dims: [2, 1, 1], labels });
 * assert.equal(summarizeMetrics([{ image: "a.nii.gz", metrics: m }]).mean.dice, 1);
 * ```
 */
export function summarizeMetrics(
  cases: { image: string; id?: string; metrics: CaseMetrics }[],
): MetricsSummary {
  if (cases.length === 0) {
    throw new TypeError("Cannot compute summarizeMetrics as 'cases' is empty");
  }
  const names = Object.keys(cases[0]!.metrics.targets);
  const targets: Record<string, MetricsEntry> = {};
  const counts: Record<string, TargetCounts> = {};
  const stats: Record<string, Record<StatName, MetricStat>> = {};
  for (const n of names) {
    const per = cases.map((c) => {
      const m = c.metrics.targets[n];
      if (!m) {
        throw new TypeError(
          `Cannot compute summarizeMetrics as case '${c.image}' has no target '${n}'`,
        );
      }
      return m;
    });
    const hd95 = per.flatMap((m) => m.hd95 === null ? [] : [m.hd95]);
    const assd = per.flatMap((m) => m.assd === null ? [] : [m.assd]);
    const hd = per.flatMap((m) => m.hd === null ? [] : [m.hd]);
    const reasons: Record<string, number> = {};
    for (const m of per) {
      if (m.reason) reasons[m.reason] = (reasons[m.reason] ?? 0) + 1;
    }
    const present = per.filter((m) =>
      m.reason !== "truth empty" && m.reason !== "both empty"
    );
    targets[n] = {
      dice: meanOf(per.map((m) => m.dice))!,
      dicePresent: meanOf(present.map((m) => m.dice)),
      hd95: meanOf(hd95),
      assd: meanOf(assd),
      iou: meanOf(per.map((m) => m.iou))!,
      hd: meanOf(hd),
    };
    stats[n] = {
      dice: statOf(per.map((m) => m.dice)),
      dicePresent: statOf(present.map((m) => m.dice)),
      iou: statOf(per.map((m) => m.iou)),
      hd95: statOf(hd95),
      assd: statOf(assd),
      hd: statOf(hd),
    };
    counts[n] = {
      cases: per.length,
      hd95: hd95.length,
      assd: assd.length,
      hd95Null: per.length - hd95.length,
      assdNull: per.length - assd.length,
      reasons,
      present: present.length,
      falsePositive: reasons["truth empty"] ?? 0,
    };
  }
  const all = Object.values(targets);
  const pick = (f: (t: MetricsEntry) => number | null | undefined) =>
    meanOf(all.flatMap((t) => {
      const v = f(t);
      return v === null || v === undefined ? [] : [v];
    }));
  return {
    targets,
    mean: {
      dice: pick((t) => t.dice) ?? 0,
      dicePresent: pick((t) => t.dicePresent),
      hd95: pick((t) => t.hd95),
      assd: pick((t) => t.assd),
      iou: pick((t) => t.iou) ?? 0,
      hd: pick((t) => t.hd),
    },
    cases: cases.map((c) => ({
      id: c.id ?? caseIdOf(c.image),
      image: c.image,
      targets: Object.fromEntries(
        Object.entries(c.metrics.targets).map(([n, m]) => {
          const e: MetricsEntry = {
            dice: m.dice,
            hd95: m.hd95,
            assd: m.assd,
            iou: m.iou,
            hd: m.hd,
          };
          if (m.reason) e.reason = m.reason;
          return [n, e];
        }),
      ),
    })),
    counts,
    stats,
  };
}

/** Renames a record's key `from` to `to` unless `to` is there already. */
function renameKey(o: unknown, from: string, to: string): void {
  if (o === null || typeof o !== "object") return;
  const r = o as Record<string, unknown>;
  if (from in r && !(to in r)) {
    r[to] = r[from];
    delete r[from];
  }
}

/**
 * Brings a `metrics.json` content read from disk to the current names, in
 * place: files written before the rename call the average symmetric
 * surface distance `msd` (and count `msdNull`); they become `assd` and
 * `assdNull` in the targets, the mean, every case, `stats` and `counts`.
 * Current files pass through unchanged.
 *
 * @param raw The parsed JSON.
 * @returns The same object, typed as a summary.
 *
 * @example
 * ```ts
 * import { upgradeMetrics } from "@agcl/agcl/metrics";
 * import assert from "node:assert/strict";
 *
 * const old = { targets: { liver: { dice: 1, hd95: 0, msd: 0 } }, mean: { dice: 1, hd95: 0, msd: 0 }, cases: [], counts: {} };
 * assert.equal(upgradeMetrics(old).targets.liver!.assd, 0);
 * ```
 */
export function upgradeMetrics(raw: unknown): MetricsSummary {
  const m = raw as Partial<MetricsSummary> | null;
  if (m === null || typeof m !== "object") return raw as MetricsSummary;
  const entries = [
    ...Object.values(m.targets ?? {}),
    m.mean,
    ...(m.cases ?? []).flatMap((c) => Object.values(c?.targets ?? {})),
    ...Object.values(m.stats ?? {}),
  ];
  for (const e of entries) renameKey(e, "msd", "assd");
  for (const c of Object.values(m.counts ?? {})) {
    renameKey(c, "msd", "assd");
    renameKey(c, "msdNull", "assdNull");
  }
  return m as MetricsSummary;
}

/**
 * Formats a metrics summary as a text table: one row per target, then the
 * mean over targets. Columns: `dice` over every case (both masks empty = 1,
 * one empty = 0), `dicePresent` over the cases whose ground truth contains
 * the target (`present` of them), `fp` cases predicting a target that is absent,
 * HD95 and ASSD in mm (`-` where undefined) and how many cases had no
 * distances. Count columns are left out when the summary has no counts.
 *
 * @param summary A `metrics.json` content.
 * @returns The table, a line per row, then a legend line.
 *
 * @example
 * ```ts
 * import { evaluateLabelMaps, metricsTable, summarizeMetrics } from "@agcl/agcl/metrics";
 * import assert from "node:assert/strict";
 *
 * const m = evaluateLabelMaps([1, 0], [1, 1], { dims: [2, 1, 1], labels: { 1: "organ" } });
 * const table = metricsTable(summarizeMetrics([{ image: "a", metrics: m }]));
 * assert.match(table, /organ/);
 * ```
 */
export function metricsTable(
  summary: Pick<MetricsSummary, "targets" | "mean"> & {
    counts?: MetricsSummary["counts"];
  },
): string {
  const names = Object.keys(summary.targets);
  const w = Math.max(6, ...names.map((n) => n.length));
  const f = (v: number | null | undefined, d: number, width = 7) =>
    (v === null || v === undefined ? "-" : v.toFixed(d)).padStart(width);
  const counts = summary.counts && Object.keys(summary.counts).length > 0
    ? summary.counts
    : undefined;
  const head = [
    "target".padEnd(w),
    "dice".padStart(7),
    "dicePresent".padStart(11),
    ...(counts ? ["present".padStart(7), "fp".padStart(5)] : []),
    "hd95".padStart(7),
    "assd".padStart(7),
    ...(counts ? ["  no distance"] : []),
  ];
  const lines = [head.join(" ")];
  for (const n of names) {
    const m = summary.targets[n]!;
    const c = counts?.[n];
    lines.push(
      [
        n.padEnd(w),
        f(m.dice, 3),
        f(m.dicePresent, 3, 11),
        ...(counts
          ? [
            String(c?.present ?? "-").padStart(7),
            String(c?.falsePositive ?? "-").padStart(5),
          ]
          : []),
        f(m.hd95, 2),
        f(m.assd, 2),
        ...(counts ? [c ? `  ${c.hd95Null}/${c.cases}` : ""] : []),
      ].join(" "),
    );
  }
  const m = summary.mean;
  lines.push(
    [
      "mean".padEnd(w),
      f(m.dice, 3),
      f(m.dicePresent, 3, 11),
      ...(counts ? ["".padStart(7), "".padStart(5)] : []),
      f(m.hd95, 2),
      f(m.assd, 2),
    ].join(" ").trimEnd(),
  );
  lines.push(
    "(dice: every case, both masks empty = 1, one empty = 0; dicePresent: cases whose truth has the target" +
      (counts
        ? ", present of them; fp: cases predicting an absent target"
        : "") +
      "; distances in mm)",
  );
  return lines.join("\n");
}

/** Columns of {@linkcode metricsCsv}, in order. */
export const METRICS_CSV_COLUMNS: readonly string[] = Object.freeze([
  "case",
  "image",
  "target",
  "present",
  "dice",
  "iou",
  "hd95",
  "assd",
  "hd",
  "reason",
]);

function csvCell(v: string | number | boolean | null | undefined): string {
  const t = v === null || v === undefined ? "" : String(v);
  return /[",\n]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t;
}

/**
 * The per-case metrics of a summary as CSV (`metrics.csv` beside
 * `metrics.json`): a header, then one row per case × target with the case
 * id, image path, target, whether the truth contains the target (`present`:
 * the cases of `dicePresent`), Dice, IoU, HD95, ASSD and HD in mm (empty
 * where undefined) and the reason they are undefined.
 *
 * @example
 * ```ts
 * import { evaluateLabelMaps, metricsCsv, summarizeMetrics } from "@agcl/agcl/metrics";
 * import assert from "node:assert/strict";
 *
 * const m = evaluateLabelMaps([1, 0], [1, 0], { dims: [2, 1, 1], labels: { 1: "organ" } });
 * const csv = metricsCsv(summarizeMetrics([{ image: "/d/c1.nii.gz", metrics: m }]));
 * assert.equal(csv, "case,image,target,present,dice,iou,hd95,assd,hd,reason\nc1,/d/c1.nii.gz,organ,true,1,1,0,0,0,\n");
 * ```
 *
 * @param summary A `metrics.json` content.
 * @returns The CSV text, newline-terminated.
 */
export function metricsCsv(summary: Pick<MetricsSummary, "cases">): string {
  const rows = [METRICS_CSV_COLUMNS.join(",")];
  for (const c of summary.cases) {
    for (const [t, m] of Object.entries(c.targets)) {
      const present = m.reason !== "truth empty" && m.reason !== "both empty";
      rows.push(
        [
          c.id,
          c.image,
          t,
          present,
          m.dice,
          m.iou,
          m.hd95,
          m.assd,
          m.hd,
          m.reason,
        ]
          .map(csvCell).join(","),
      );
    }
  }
  return rows.join("\n") + "\n";
}
