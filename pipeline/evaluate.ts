/**
 * The per-target metrics table printed at the end of a run.
 *
 * @module
 */
import type { MetricsSummary } from "../metrics/mod.ts";

/**
 * Formats a `metrics.json` summary as a text table: one row per target
 * (Dice, HD95 and MSD in mm; `-` where a distance is undefined), then the
 * mean.
 *
 * @param metrics The summary from `summarizeMetrics`.
 * @returns The table, one line per row.
 *
 * @example
 * ```ts
 * import { formatMetricsTable } from "@agcl/agcl/pipeline";
 * const row = { dice: 0.9, hd95: 2, msd: 0.5 };
 * console.log(formatMetricsTable({
 *   targets: { liver: row }, mean: row, cases: [], counts: {},
 * } as unknown as Parameters<typeof formatMetricsTable>[0]));
 * ```
 */
export function formatMetricsTable(
  metrics: Pick<MetricsSummary, "targets" | "mean">,
): string {
  const names = Object.keys(metrics.targets);
  const w = Math.max(6, ...names.map((n) => n.length));
  const f = (v: number | null | undefined, d: number) =>
    v === null || v === undefined ? "     -" : v.toFixed(d).padStart(6);
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
