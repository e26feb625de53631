/**
 * The comparative report of a pre-training ablation: per-target Dice box
 * plots per method with significance marks (Fig. 4), loss curves of every
 * method (Fig. 5a), embedding maps side by side (Fig. 3), the temperature
 * sweep when present (Fig. 5b) and the Table-1-like table.
 *
 * @module
 */
import { join } from "node:path";
import { figureHtml, pageHtml, type Section, tableHtml } from "./_html.ts";
import { esc, loadRun, type RunFiles } from "./_load.ts";
import { writeFigure } from "./_render.ts";
import {
  diceBoxSpec,
  embeddingSpec,
  type LogEntry,
  lossCurveSpec,
  type TemperatureRow,
  temperatureSpec,
} from "./figures.ts";
import { diceRows, embedPoints, type ReportResult } from "./run_report.ts";

/** One run of the ablation. */
export interface AblationRun {
  /** Pre-training method: none, sscl, ce, supcon, agcl. */
  method: string;
  /** Backbone label, e.g. "r50". */
  backbone: string;
  /** Its run directory. */
  runDir: string;
}

/** A paired test of one target: `method` against `reference` (per-case Dice). */
export interface PairedTest {
  /** Backbone. */
  backbone: string;
  /** Target name, or "mean" for the per-case mean over targets. */
  target: string;
  /** Baseline method. */
  method: string;
  /** Method compared against (agcl). */
  reference: string;
  /** Two-sided p-value, `null` when undefined (e.g. all differences zero). */
  p: number | null;
  /** Pairs with a non-zero difference. */
  n: number;
}

/** Options for {@linkcode writeAblationReport}. */
export interface AblationReportOptions {
  /** Table-1-like table to show (header and rows of text cells). */
  table?: { header: string[]; rows: string[][] };
  /** Title of that table. @default {"Dice per target (mean ± std over cases)"} */
  tableTitle?: string;
  /** Paired tests, drawn as stars above the baseline boxes. */
  tests?: PairedTest[];
  /** Temperature sweep points (added to those found in the run folders). */
  sweep?: TemperatureRow[];
  /** Seed of the embeddings. @default {0} */
  seed?: number;
  /** Points per embedding map. @default {800} */
  maxPoints?: number;
  /** Page title. @default {"AGCL pre-training ablation"} */
  title?: string;
}

/**
 * Significance marks of a p-value: `***` < 0.001, `**` < 0.01, `*` < 0.05,
 * empty otherwise (and for `null`).
 *
 * @param p A p-value or `null`.
 * @returns The mark.
 *
 * @example
 * ```ts
 * import { stars } from "@agcl/agcl/report";
 * import assert from "node:assert/strict";
 *
 * assert.equal(stars(0.004), "**");
 * assert.equal(stars(0.2), "");
 * ```
 */
export function stars(p: number | null): string {
  if (p === null) return "";
  return p < 0.001 ? "***" : p < 0.01 ? "**" : p < 0.05 ? "*" : "";
}

/**
 * Writes the comparative report of an ablation into `outDir`: SVG and PNG
 * figures per backbone and `index.html`.
 *
 * @param outDir Output folder (created).
 * @param runs The runs (each run directory as written by the pipeline).
 * @param options Table, paired tests, seed.
 * @returns The files written.
 * @throws {TypeError} When `runs` is empty.
 *
 * @example
 * ```ts ignore
 * import { writeAblationReport } from "@agcl/agcl/report";
 * await writeAblationReport(".runs/ablation/report", [{ method: "agcl", backbone: "r18", runDir: ".runs/ablation/r18-agcl" }]);
 * ```
 */
export async function writeAblationReport(
  outDir: string,
  runs: AblationRun[],
  options: AblationReportOptions = {},
): Promise<ReportResult> {
  if (runs.length === 0) {
    throw new TypeError(
      "Cannot compute writeAblationReport as 'runs' is empty",
    );
  }
  const { seed = 0, maxPoints = 800 } = options;
  await Deno.mkdir(outDir, { recursive: true });
  const loaded: (AblationRun & { files: RunFiles })[] = [];
  for (const r of runs) loaded.push({ ...r, files: await loadRun(r.runDir) });
  const files: string[] = [];
  const skipped: string[] = [];
  const sections: Section[] = [];
  if (options.table) {
    sections.push({
      title: options.tableTitle ?? "Dice per target (mean ± std over cases)",
      html: tableHtml(options.table.header, options.table.rows),
    });
  }
  if (options.tests && options.tests.length > 0) {
    sections.push({
      title: "Paired Wilcoxon signed-rank tests on per-case Dice",
      html: tableHtml(
        ["backbone", "target", "baseline", "vs", "n (non-zero pairs)", "p", ""],
        options.tests.map((t) => [
          t.backbone,
          t.target,
          t.method,
          t.reference,
          String(t.n),
          t.p === null ? "–" : t.p.toPrecision(3),
          stars(t.p),
        ]),
      ),
    });
  }
  const backbones = [...new Set(runs.map((r) => r.backbone))];
  const methods = [...new Set(runs.map((r) => r.method))];
  for (const bb of backbones) {
    const these = loaded.filter((r) => r.backbone === bb);
    const html: string[] = [];
    const rows = these.flatMap((r) =>
      r.files.metrics ? diceRows(r.files.metrics, r.method) : []
    );
    if (rows.length > 0) {
      const marks = (options.tests ?? [])
        .filter((t) => t.backbone === bb && stars(t.p) !== "")
        .map((t) => ({ method: t.method, target: t.target, text: stars(t.p) }));
      const f = await writeFigure(
        outDir,
        `dice_boxplot_${bb}`,
        diceBoxSpec(rows, {
          marks,
          methods: methods.filter((m) => these.some((r) => r.method === m)),
          targets: [
            ...new Set(
              these.flatMap((r) => Object.keys(r.files.metrics?.targets ?? {})),
            ),
          ],
          title: `Dice per target, ${bb} (stars: Wilcoxon vs agcl)`,
        }),
      );
      files.push(f.svg, f.png);
      html.push(
        figureHtml(
          f,
          `Per-target Dice per method over the cases that contain the target, ${bb} (cf. Fig. 4); stars: paired Wilcoxon test against the reference on every case`,
        ),
      );
    } else skipped.push(`${bb}: no metrics.json in any run`);
    const log: LogEntry[] = these.flatMap((r) =>
      r.files.log.map((e) => ({ ...e, method: r.method }))
    );
    if (log.length > 0) {
      const f = await writeFigure(
        outDir,
        `loss_curves_${bb}`,
        lossCurveSpec(log, { title: `Training loss per stage, ${bb}` }),
      );
      files.push(f.svg, f.png);
      html.push(
        figureHtml(f, `Loss per stage and method, ${bb} (cf. Fig. 5a)`),
      );
    } else skipped.push(`${bb}: no log.jsonl in any run`);
    const withEmb = these.filter((r) => r.files.embeddings);
    if (withEmb.length > 0) {
      const pts = withEmb.flatMap((r) =>
        embedPoints(r.files.embeddings!, { seed, maxPoints, method: r.method })
      );
      const f = await writeFigure(
        outDir,
        `embedding_umap_${bb}`,
        embeddingSpec(pts, { title: `Projection embeddings, ${bb}`, methods }),
      );
      files.push(f.svg, f.png);
      html.push(
        figureHtml(
          f,
          `UMAP per method, colour = target, shape = domain, ${bb} (cf. Fig. 3)`,
        ),
      );
    } else skipped.push(`${bb}: no embeddings.json in any run`);
    sections.push({ title: `Backbone ${bb}`, html: html.join("\n") });
  }
  const sweep: TemperatureRow[] = [
    ...(options.sweep ?? []),
    ...loaded.flatMap((r) =>
      (r.files.sweep ?? []).map((p) => ({
        method: `${r.method} ${r.backbone}`,
        ...p,
      }))
    ),
  ];
  if (sweep.length > 0) {
    const f = await writeFigure(
      outDir,
      "temperature_sweep",
      temperatureSpec(sweep),
    );
    files.push(f.svg, f.png);
    sections.push({
      title: "Temperature",
      html: figureHtml(f, "Mean Dice against τ (cf. Fig. 5b)"),
    });
  } else skipped.push("temperature sweep: none was run");
  sections.push({
    title: "Runs",
    html: `<ul>${
      runs.map((r) =>
        `<li>${esc(r.backbone)} / ${esc(r.method)}: <code>${
          esc(r.runDir)
        }</code></li>`
      )
        .join("")
    }</ul>`,
  });
  if (skipped.length > 0) {
    sections.push({
      title: "Not drawn",
      html: `<ul>${skipped.map((s) => `<li>${esc(s)}</li>`).join("")}</ul>`,
    });
  }
  const index = join(outDir, "index.html");
  await Deno.writeTextFile(
    index,
    pageHtml(options.title ?? "AGCL pre-training ablation", sections),
  );
  files.push("index.html");
  return { dir: outDir, index, files, skipped };
}
