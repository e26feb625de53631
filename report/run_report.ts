/**
 * The report of one run: `RUN/report/index.html` with loss curves (Fig. 5a),
 * per-target Dice box plots (Fig. 4), the embedding map (Fig. 3), the
 * temperature sweep when present (Fig. 5b) and overlays (Fig. 7).
 *
 * @module
 */
import { basename, join, relative } from "node:path";
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
  type ValidationRow,
  validationSpec,
} from "./figures.ts";
import { caseTableHtml, configHtml, runInfoHtml } from "./_run_info.ts";
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

/** The sample a stage's validation scored (`4 slice(s)`, …), from its last line. */
function sampleOf(rows: ValidationRow[], stage: string): string {
  const last = rows.findLast((r) => r.stage === stage);
  return last?.sample !== undefined
    ? last.sample.replace(/ of \d+ case\(s\)$/, "")
    : "a few slices or patches";
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
      .map(([target, m]) => ({ method, target, dice: m.dice, case: c.id }))
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
      fmt(t.assd, 2),
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
    fmt(m.mean.assd, 2),
    "",
  ]);
  return tableHtml([
    "target",
    "Dice (all cases)",
    "dicePresent (Dice over cases with the target)",
    "cases with the target",
    "false-positive cases",
    "HD95 (mm)",
    "ASSD, average symmetric surface distance (mm)",
    "distances undefined",
  ], rows);
}

/** One target's coverage in a run's stage evidence (as read). */
export interface CoverageRow {
  /** Mean Dice over cases. */
  dice?: number | null;
  /** Mean Dice over the cases whose truth contains the target. */
  dicePresent?: number | null;
  /** True pixels inside / pixels inside. */
  precision?: number | null;
  /** True pixels inside / true pixels. */
  recall?: number | null;
  /** Share of true pixels beyond the fusion's reach. */
  outside?: number | null;
}

/** The stage evidence `metrics.json` carries under `stages` (as read). */
export interface StageEvidenceFile {
  /** Coverage of stage 1's coarse maps on the evaluation cases. */
  stage1?: { targets?: Record<string, CoverageRow>; mean?: CoverageRow };
  /** Coverage of the attention on training and evaluation cases. */
  attention?: {
    source?: string;
    margin?: number;
    train?: { targets?: Record<string, CoverageRow>; mean?: CoverageRow };
    evaluation?: { targets?: Record<string, CoverageRow>; mean?: CoverageRow };
  };
  /** Stage-2 health and probes. */
  stage2?: {
    health?: Record<string, number | string | null>;
    probe?: {
      n?: number;
      input?: SeparationRow;
      encoder?: SeparationRow;
      projection?: SeparationRow;
    } | null;
  };
}

/** Separation scores of one embedding in a run's stage evidence (as read). */
export interface SeparationRow {
  /** 5-NN accuracy by `target`, `domain` and `domainTarget`. */
  knn?: Record<string, number | null>;
  /** Mean silhouette by `target`, `domain` and `domainTarget`. */
  silhouette?: Record<string, number | null>;
}

/**
 * The stage evidence of a run as HTML tables: per target, stage-1 Dice,
 * final Dice and their difference, the truth beyond the fusion's reach and
 * the attention's precision and recall on training and evaluation cases;
 * stage 2's loss against its chance level; and the separation probes.
 *
 * @param m A `metrics.json` content.
 * @returns HTML, or `""` when the file has no stage evidence.
 */
export function stagesHtml(m: MetricsSummary): string {
  const st = (m as unknown as { stages?: StageEvidenceFile }).stages;
  if (!st) return "";
  const out: string[] = [];
  const s1 = st.stage1?.targets ?? {};
  const ev = st.attention?.evaluation?.targets ?? {};
  const tr = st.attention?.train?.targets ?? {};
  const delta = (a: number | null | undefined, b: number | null | undefined) =>
    a === null || a === undefined || b === null || b === undefined
      ? "–"
      : `${a - b >= 0 ? "+" : ""}${(a - b).toFixed(3)}`;
  const row = (
    name: string,
    fin: { dice: number; dicePresent?: number | null } | undefined,
    a: CoverageRow | undefined,
    e: CoverageRow | undefined,
    t: CoverageRow | undefined,
  ) => [
    name,
    fmt(a?.dice),
    fmt(fin?.dice),
    delta(fin?.dice, a?.dice),
    fmt(a?.dicePresent),
    fmt(fin?.dicePresent),
    delta(fin?.dicePresent, a?.dicePresent),
    fmt(e?.outside),
    `${fmt(t?.precision)} / ${fmt(t?.recall)}`,
    `${fmt(e?.precision)} / ${fmt(e?.recall)}`,
  ];
  const rows = Object.keys(m.targets).map((n) =>
    row(n, m.targets[n], s1[n], ev[n], tr[n])
  );
  rows.push(
    row(
      "mean",
      m.mean,
      st.stage1?.mean,
      st.attention?.evaluation?.mean,
      st.attention?.train?.mean,
    ),
  );
  out.push(
    `<p>Training attention: <b>${
      esc(String(st.attention?.source ?? "–"))
    }</b>; fusion may label up to ${
      st.attention?.margin ?? 0
    } pixels beyond the attention.</p>`,
    tableHtml([
      "target",
      "stage-1 Dice",
      "final Dice",
      "Δ",
      "stage-1 dicePresent",
      "final dicePresent",
      "Δ",
      "truth beyond the fusion's reach",
      "attention precision / recall, training",
      "attention precision / recall, evaluation",
    ], rows),
  );
  const h = st.stage2?.health;
  if (h) {
    const num = (v: unknown) => (typeof v === "number" ? fmt(v) : "–");
    out.push(
      `<p>Stage 2 (<b>${esc(String(h.method))}</b>): ${
        typeof h.steps === "number" ? String(h.steps) : "–"
      } steps, loss ${num(h.initialLoss)} → ${
        num(h.finalLoss)
      } against a chance level of ${num(h.chance)} and a floor of ${
        num(h.floor)
      } (the loss of a perfect encoder); share of anchors with a positive besides their twin view: ${
        num(h.positiveFraction)
      }.</p>`,
    );
  }
  const p = st.stage2?.probe;
  if (p) {
    const line = (label: string, s: SeparationRow | undefined) => [
      label,
      fmt(s?.knn?.target),
      fmt(s?.knn?.domain),
      fmt(s?.knn?.domainTarget),
      fmt(s?.silhouette?.target),
      fmt(s?.silhouette?.domain),
      fmt(s?.silhouette?.domainTarget),
    ];
    out.push(
      `<p>Separation of ${
        p.n ?? "–"
      } held-out patches (5-NN accuracy, leave one out; mean silhouette):</p>`,
      tableHtml([
        "embedding",
        "5-NN target",
        "5-NN domain",
        "5-NN domain × target",
        "silhouette target",
        "silhouette domain",
        "silhouette domain × target",
      ], [
        line("input patches", p.input),
        line("frozen encoder (pooled)", p.encoder),
        line("projection head", p.projection),
      ]),
    );
  }
  return out.join("\n");
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

  if (run.config || run.metrics) {
    sections.push({
      title: "Run",
      html: runInfoHtml(run.config, run.metrics),
    });
  }
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
          "Dice per target over the cases whose truth contains it: each point a case, the black tick the mean, a box from 5 cases (cf. Fig. 4)",
        ),
      );
    }
    sections.push({ title: "Metrics", html: html.join("\n") });
    const csv = join(runDir, "metrics.csv");
    const hasCsv = await Deno.stat(csv).then(() => true, () => false);
    sections.push({
      title: "Per case",
      html: caseTableHtml(
        run.metrics,
        hasCsv ? { csv: relative(dir, csv) } : {},
      ),
    });
    const stages = stagesHtml(run.metrics);
    if (stages) {
      sections.push({ title: "What each stage contributed", html: stages });
    }
  } else skipped.push("metrics: no metrics.json");

  if (run.validation.some((v) => v.dice !== null)) {
    const f = await writeFigure(
      dir,
      "validation_curves",
      validationSpec(run.validation),
    );
    files.push(f.svg, f.png);
    sections.push({
      title: "Validation",
      html: figureHtml(
        f,
        `Validation Dice after each epoch (log.jsonl): stage 1 on ${
          sampleOf(run.validation, "coarse")
        } of the evaluation cases, stage 3 on ${
          sampleOf(run.validation, "segment")
        } cut around their stage-1 attention; watched, not used to pick a checkpoint`,
      ),
    });
  } else skipped.push("validation curves: no validation Dice in log.jsonl");

  if (run.log.length > 0) {
    const chance = (run.metrics as unknown as {
      stages?: StageEvidenceFile;
    } | undefined)?.stages?.stage2?.health?.chance;
    const f = await writeFigure(
      dir,
      "loss_curves",
      lossCurveSpec(
        run.log,
        typeof chance === "number" ? { levels: { pretrain: chance } } : {},
      ),
    );
    files.push(f.svg, f.png);
    sections.push({
      title: "Training",
      html: figureHtml(
        f,
        "Loss per stage (cf. Fig. 5a); dashed: the pre-training loss of an encoder that learnt nothing, ln(2N − 1)",
      ),
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

  if (run.config) {
    sections.push({ title: "Config", html: configHtml(run.config) });
  }
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
