/**
 * The per-target metrics table printed at the end of a run.
 *
 * @module
 */
import { metricsTable } from "../metrics/mod.ts";

/**
 * Formats a `metrics.json` summary as the text table printed at the end of
 * a run: the metrics package's {@linkcode metricsTable} (one row per
 * target: Dice over every case, Dice over the cases containing the target,
 * counts, HD95 and MSD in mm with `-` where undefined; then the mean).
 *
 * @param metrics The summary from `summarizeMetrics`.
 * @returns The table, one line per row, then a legend line.
 *
 * @example
 * ```ts
 * import { formatMetricsTable } from "@agcl/agcl/pipeline";
 * const row = { dice: 0.9, hd95: 2, msd: 0.5 };
 * console.log(formatMetricsTable({ targets: { liver: row }, mean: row }));
 * ```
 */
export function formatMetricsTable(
  metrics: Parameters<typeof metricsTable>[0],
): string {
  return metricsTable(metrics);
}
