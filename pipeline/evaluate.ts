/**
 * Per-target metrics of predicted label maps, in the `metrics.json` shape
 * shared with `deno task eval`.
 *
 * @module
 */

/** Metrics of one target. */
export interface TargetMetrics {
  /** Dice (1 when prediction and truth are both empty, 0 when only one is). */
  dice: number;
  /** 95th-percentile Hausdorff distance in mm, or `null`. */
  hd95: number | null;
  /** Mean symmetric surface distance in mm, or `null`. */
  msd: number | null;
}

/** The content of `metrics.json`. */
export interface MetricsFile {
  /** Mean over cases, per target name. */
  targets: Record<string, TargetMetrics>;
  /** Mean over targets. */
  mean: TargetMetrics;
  /** Per case. */
  cases: { image: string; targets: Record<string, TargetMetrics> }[];
  /** Bookkeeping: values left out of a mean (null distances) per target. */
  counts?: Record<string, { cases: number; hd95: number; msd: number }>;
}

/**
 * Dice per target of one case.
 *
 * @param pred Predicted labels.
 * @param truth True labels, same length.
 * @param targets Label id and name of each target.
 * @returns Metrics per target name (distances `null`).
 */
export function diceByTarget(
  pred: ArrayLike<number>,
  truth: ArrayLike<number>,
  targets: { id: number; name: string }[],
): Record<string, TargetMetrics> {
  if (pred.length !== truth.length) {
    throw new TypeError(
      `Cannot compute Dice as 'pred' has ${pred.length} voxels and 'truth' has ${truth.length}`,
    );
  }
  const index = new Map(targets.map((t, i) => [t.id, i]));
  const tp = new Float64Array(targets.length);
  const np = new Float64Array(targets.length);
  const nt = new Float64Array(targets.length);
  for (let v = 0; v < pred.length; v++) {
    const a = index.get(pred[v]!);
    const b = index.get(truth[v]!);
    if (a !== undefined) np[a]!++;
    if (b !== undefined) nt[b]!++;
    if (a !== undefined && a === b) tp[a]!++;
  }
  const out: Record<string, TargetMetrics> = {};
  targets.forEach((t, i) => {
    const denom = np[i]! + nt[i]!;
    out[t.name] = {
      dice: denom === 0 ? 1 : (2 * tp[i]!) / denom,
      hd95: null,
      msd: null,
    };
  });
  return out;
}

function meanOrNull(values: (number | null)[]): number | null {
  const v = values.filter((x): x is number => x !== null);
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
}

/**
 * Aggregates per-case metrics into the `metrics.json` shape: per-target
 * means over cases, then the mean over targets. `null` distances are left
 * out of a mean and counted in `counts`.
 */
export function aggregateMetrics(
  cases: { image: string; targets: Record<string, TargetMetrics> }[],
  names: string[],
): MetricsFile {
  const targets: Record<string, TargetMetrics> = {};
  const counts: Record<string, { cases: number; hd95: number; msd: number }> =
    {};
  for (const n of names) {
    const per = cases.map((c) => c.targets[n]).filter((m): m is TargetMetrics =>
      !!m
    );
    targets[n] = {
      dice: per.length ? per.reduce((a, m) => a + m.dice, 0) / per.length : 0,
      hd95: meanOrNull(per.map((m) => m.hd95)),
      msd: meanOrNull(per.map((m) => m.msd)),
    };
    counts[n] = {
      cases: per.length,
      hd95: per.filter((m) => m.hd95 !== null).length,
      msd: per.filter((m) => m.msd !== null).length,
    };
  }
  const all = Object.values(targets);
  return {
    targets,
    mean: {
      dice: all.length ? all.reduce((a, m) => a + m.dice, 0) / all.length : 0,
      hd95: meanOrNull(all.map((m) => m.hd95)),
      msd: meanOrNull(all.map((m) => m.msd)),
    },
    cases,
    counts,
  };
}

/** Formats a metrics table (one row per target, then the mean). */
export function formatMetricsTable(metrics: MetricsFile): string {
  const names = Object.keys(metrics.targets);
  const w = Math.max(6, ...names.map((n) => n.length));
  const f = (v: number | null, d: number) =>
    v === null ? "     -" : v.toFixed(d).padStart(6);
  const lines = [`${"target".padEnd(w)}   dice   hd95    msd`];
  for (const n of names) {
    const m = metrics.targets[n]!;
    lines.push(`${n.padEnd(w)} ${f(m.dice, 3)} ${f(m.hd95, 2)} ${f(m.msd, 2)}`);
  }
  const m = metrics.mean;
  lines.push(
    `${"mean".padEnd(w)} ${f(m.dice, 3)} ${f(m.hd95, 2)} ${f(m.msd, 2)}`,
  );
  return lines.join("\n");
}
