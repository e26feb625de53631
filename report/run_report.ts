/**
 * The report of one run: `RUN/report/index.html` with loss curves (Fig. 5a),
 * per-target Dice box plots (Fig. 4), the embedding map (Fig. 3), the
 * temperature sweep when present (Fig. 5b) and overlays (Fig. 7).
 *
 * @module
 */
import { join } from "node:path";
import { basename } from "node:path";
import { Prng } from "../random/prng.ts";
import { figureHtml, pageHtml, type Section, tableHtml } from "./_html.ts";
import { esc, fmt, loadRun } from "./_load.ts";
import { writeFigure } from "./_render.ts";
import { embed2d } from "./embedding.ts";
import {
  diceBoxSpec,
  type DiceRow,
  type EmbeddingsFile,
  embeddingSpec,
  lossCurveSpec,
  temperatureSpec,
} from "./figures.ts";
import {
  overlayFigure,
  type OverlayFigureOptions,
  type OverlaySlice,
  type PanelSides,
} from "./overlay.ts";
import { overlaysFromRun } from "./_overlays.ts";
import type { MetricsSummary } from "../metrics/evaluate.ts";

/** A slice to draw as an overlay, in display orientation, with a caption. */
export interface CaptionedSlice extends OverlaySlice {
  /** Caption, also the figure's title, e.g. `case_001, slice z=12 of 40`. */
  caption: string;
  /** How the slice is displayed (the figure's second line), e.g. `axial, radiological view: …`. */
  view?: string;
  /** Orientation letters at the panel edges, e.g. `R`/`L`/`A`/`P`. */
  sides?: PanelSides;
}

/** Options for {@linkcode writeRunReport}. */
export interface RunReportOptions {
  /** Output folder. @default {"RUN/report"} */
  out?: string;
  /**
   * Overlay slices to draw (Fig. 7). By default, up to `maxOverlays` slices
   * of the run's predictions with their images and truths from the dataset
   * named in `config.json`.
   */
  overlays?: CaptionedSlice[];
  /** How many overlays to pick from `predictions/` when `overlays` is not given. @default {3} */
  maxOverlays?: number;
  /** Seed of the embedding and of the point subsample. @default {0} */
  seed?: number;
  /** At most this many embedding points are mapped. @default {1500} */
  maxPoints?: number;
  /** Page title. @default {"AGCL run: <folder name>"} */
  title?: string;
}

/** What a report wrote. */
export interface ReportResult {
  /** The report folder. */
  dir: string;
  /** `index.html` path. */
  index: string;
  /** Every file written, relative to `dir`. */
  files: string[];
  /** Figures that were skipped and why. */
  skipped: string[];
}

/** Subsamples up to `max` items deterministically. */
function subsample<T>(items: T[], max: number, seed: number): T[] {
  if (items.length <= max) return items;
  const prng = new Prng(seed);
  const idx = items.map((_, i) => i);
  for (let i = 0; i < max; i++) {
    const j = i + prng.int(idx.length - i);
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  return idx.slice(0, max).sort((a, b) => a - b).map((i) => items[i]!);
}

/** Embeds an embeddings file in 2-D; `method` tags the points. */
export function embedPoints(
  emb: EmbeddingsFile,
  options: { seed: number; maxPoints: number; method?: string },
): { x: number; y: number; target: string; domain: string; method?: string }[] {
  const pts = subsample(emb.points, options.maxPoints, options.seed);
  const xy = embed2d(pts.map((p) => p.z), { seed: options.seed });
  return pts.map((p, i) => ({
    x: xy[i]![0]!,
    y: xy[i]![1]!,
    target: p.target,
    domain: p.domain,
    ...(options.method !== undefined ? { method: options.method } : {}),
  }));
}

/**
 * Dice rows of a metrics file for box plots: by default only the cases
 * whose truth contains the target (a target absent from the truth scores 1
 * or 0 by the empty-mask policy, which says nothing about its outline).
 *
 * @param metrics A `metrics.json` content.
 * @param method Label of the run.
 * @param options Whether to keep only cases whose truth has the target.
 * @returns One row per case and target.
 */
export function diceRows(
  metrics: MetricsSummary,
  method: string,
  options: { presentOnly?: boolean } = {},
): DiceRow[] {
  const { presentOnly = true } = options;
  return metrics.cases.flatMap((c) =>
    Object.entries(c.targets)
      .filter(([, m]) =>
        !presentOnly ||
        (m.reason !== "both empty" && m.reason !== "truth empty")
      )
      .map(([target, m]) => ({ method, target, dice: m.dice }))
  );
}

/** Metrics table of one run (per target, then the mean, with null counts). */
export function metricsTableHtml(m: MetricsSummary): string {
  const rows = Object.entries(m.targets).map(([name, t]) => {
    const c = m.counts?.[name];
    return [
      name,
      fmt(t.dice),
      fmt(t.dicePresent),
      c?.present === undefined ? "" : String(c.present),
      c?.falsePositive === undefined ? "" : String(c.falsePositive),
      fmt(t.hd95, 2),
      fmt(t.msd, 2),
      c ? `${c.hd95Null ?? c.cases - c.hd95} of ${c.cases}` : "",
    ];
  });
  rows.push([
    "mean",
    fmt(m.mean.dice),
    fmt(m.mean.dicePresent),
    "",
    "",
    fmt(m.mean.hd95, 2),
    fmt(m.mean.msd, 2),
    "",
  ]);
  return tableHtml([
    "target",
    "Dice (all cases)",
    "Dice (cases with the target)",
    "cases with the target",
    "false-positive cases",
    "HD95 (mm)",
    "MSD (mm)",
    "distances undefined",
  ], rows);
}

/**
 * Writes the report of one run directory (the layout of CONTRACTS.md):
 * each figure as SVG and PNG plus `index.html` referencing them. Figures
 * whose inputs are absent are skipped and listed in the page.
 *
 * @param runDir The run directory.
 * @param options Output folder, overlays, seed.
 * @returns The files written.
 * @throws {Error} When a run file exists but cannot be read.
 *
 * @example
 * ```ts ignore
 * import { writeRunReport } from "@agcl/agcl/report";
 * const r = await writeRunReport(".runs/tiny");
 * console.log(r.index);
 * ```
 */
export async function writeRunReport(
  runDir: string,
  options: RunReportOptions = {},
): Promise<ReportResult> {
  const { seed = 0, maxPoints = 1500 } = options;
  const dir = options.out ?? join(runDir, "report");
  await Deno.mkdir(dir, { recursive: true });
  const run = await loadRun(runDir);
  const files: string[] = [];
  const skipped: string[] = [];
  const sections: Section[] = [];
  const name = basename(runDir.replace(/\/+$/, ""));

  if (run.metrics) {
    const html = [metricsTableHtml(run.metrics)];
    const rows = diceRows(run.metrics, name);
    if (rows.length > 0) {
      const f = await writeFigure(
        dir,
        "dice_boxplot",
        diceBoxSpec(rows, { targets: Object.keys(run.metrics.targets) }),
      );
      files.push(f.svg, f.png);
      html.push(
        figureHtml(
          f,
          "Per-target Dice over the cases that contain the target (cf. Fig. 4)",
        ),
      );
    }
    sections.push({ title: "Metrics", html: html.join("\n") });
  } else skipped.push("metrics: no metrics.json");

  if (run.log.length > 0) {
    const f = await writeFigure(dir, "loss_curves", lossCurveSpec(run.log));
    files.push(f.svg, f.png);
    sections.push({
      title: "Training",
      html: figureHtml(f, "Loss per stage (cf. Fig. 5a)"),
    });
  } else skipped.push("loss curves: no log.jsonl");

  if (run.embeddings) {
    const points = embedPoints(run.embeddings, { seed, maxPoints });
    const f = await writeFigure(dir, "embedding_umap", embeddingSpec(points));
    files.push(f.svg, f.png);
    sections.push({
      title: "Embeddings",
      html: figureHtml(
        f,
        `UMAP of ${points.length} projection vectors, colour = target, shape = domain (cf. Fig. 3)`,
      ),
    });
  } else skipped.push("embedding map: no embeddings.json");

  if (run.sweep) {
    const f = await writeFigure(
      dir,
      "temperature_sweep",
      temperatureSpec(run.sweep),
    );
    files.push(f.svg, f.png);
    sections.push({
      title: "Temperature",
      html: figureHtml(f, "Mean Dice against τ (cf. Fig. 5b)"),
    });
  }

  let overlays = options.overlays ?? [];
  let overlayReason = "no slices given";
  if (!options.overlays) {
    try {
      const found = await overlaysFromRun(
        runDir,
        run.config,
        options.maxOverlays ?? 3,
      );
      overlays = found.slices;
      overlayReason = found.reason ?? overlayReason;
    } catch (e) {
      overlayReason = `cannot read predictions: ${
        e instanceof Error ? e.message : e
      }`;
    }
  }
  if (overlays.length > 0) {
    const html: string[] = [];
    const labels = run.config?.labels;
    for (let i = 0; i < overlays.length; i++) {
      const o = overlays[i]!;
      const opts: OverlayFigureOptions = { title: o.caption };
      if (o.view) opts.subtitle = o.view;
      if (o.sides) opts.sides = o.sides;
      if (labels && typeof labels === "object") {
        opts.labels = labels as Record<string, string>;
      }
      const fig = await overlayFigure(o, opts);
      const f = { svg: `overlay_${i + 1}.svg`, png: `overlay_${i + 1}.png` };
      await Deno.writeTextFile(join(dir, f.svg), fig.svg);
      await Deno.writeFile(join(dir, f.png), fig.png);
      files.push(f.svg, f.png);
      html.push(
        figureHtml(
          f,
          `${o.caption}: image | prediction | truth${
            o.view ? `; ${o.view}` : ""
          } (cf. Fig. 7)`,
        ),
      );
    }
    sections.push({ title: "Overlays", html: html.join("\n") });
  } else skipped.push(`overlays: ${overlayReason}`);

  if (skipped.length > 0) {
    sections.push({
      title: "Not drawn",
      html: `<ul>${skipped.map((s) => `<li>${esc(s)}</li>`).join("")}</ul>`,
    });
  }
  const index = join(dir, "index.html");
  await Deno.writeTextFile(
    index,
    pageHtml(options.title ?? `AGCL run: ${name}`, sections),
  );
  files.push("index.html");
  return { dir, index, files, skipped };
}
