/**
 * {@linkcode writeCompareReport}: runs side by side on one page (what
 * `deno task report --compare RUN…` writes): what each run was (data,
 * model, backend, versions, commit, time), Dice per target with every case
 * as a point, validation curves and losses of all runs in one figure, the
 * stage wall times, and the config fields on which the runs differ.
 *
 * @module
 */
import { basename, join, relative, resolve } from "node:path";
import { figureHtml, pageHtml, type Section, tableHtml } from "./_html.ts";
import { esc, fmt, loadRun, type RunFiles } from "./_load.ts";
import { writeFigure } from "./_render.ts";
import {
  diceBoxSpec,
  type LogEntry,
  lossCurveSpec,
  type ValidationRow,
  validationSpec,
} from "./figures.ts";
import { diceRows, type ReportResult } from "./run_report.ts";
import {
  commitText,
  dataText,
  duration,
  environmentOf,
  modelText,
  pick,
  TIMING_STAGES,
  timingsOf,
} from "./_run_info.ts";

/** Options for {@linkcode writeCompareReport}. */
export interface CompareReportOptions {
  /** Output folder. @default {"compare-report"} */
  out?: string;
  /** Page title. @default {"AGCL runs compared"} */
  title?: string;
}

/**
 * Labels for run directories: their folder names, or where two share a
 * name, their paths as given.
 *
 * @param runDirs Run directories.
 * @returns One label each, in order.
 *
 * @example
 * ```ts
 * import { runLabels } from "@agcl/agcl/report";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(runLabels(["a/x", "b/y/"]), ["x", "y"]);
 * assert.deepEqual(runLabels(["a/x", "b/x"]), ["a/x", "b/x"]);
 * ```
 */
export function runLabels(runDirs: string[]): string[] {
  const names = runDirs.map((d) => basename(d.replace(/\/+$/, "")));
  return names.map((n, i) =>
    names.indexOf(n) === names.lastIndexOf(n)
      ? n
      : runDirs[i]!.replace(/\/+$/, "")
  );
}

/** Leaves of a JSON value as `a.b.c` → JSON text (arrays kept whole). */
function flatten(
  v: unknown,
  prefix = "",
  out: Map<string, string> = new Map(),
): Map<string, string> {
  if (v !== null && typeof v === "object" && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) {
      flatten(x, prefix ? `${prefix}.${k}` : k, out);
    }
  } else out.set(prefix, JSON.stringify(v));
  return out;
}

/**
 * The config fields on which runs differ: each field (dotted path) whose
 * value is not the same in every run's `config.json`, with the values.
 * The run's own records (`split`, `budgets.data`, the paths) are left out
 * unless asked for.
 *
 * @param configs Each run's `config.json` (`undefined` when absent).
 * @returns `[field, value per run]` rows, by field name.
 *
 * @example
 * ```ts
 * import { configDifferences } from "@agcl/agcl/report";
 * import assert from "node:assert/strict";
 *
 * const rows = configDifferences([
 *   { seed: 0, pretrain: { method: "agcl", lr: 0.01 } },
 *   { seed: 0, pretrain: { method: "none", lr: 0.01 } },
 * ]);
 * assert.deepEqual(rows, [["pretrain.method", ['"agcl"', '"none"']]]);
 * ```
 */
export function configDifferences(
  configs: (Record<string, unknown> | undefined)[],
): [string, string[]][] {
  const flat = configs.map((c) => flatten(c ?? {}));
  const keys = [...new Set(flat.flatMap((f) => [...f.keys()]))].sort();
  const skip = /^(split|budgets\.data|dataPath$|labels|crossfitFolds)/;
  return keys.filter((k) => !skip.test(k)).flatMap((k) => {
    const vals = flat.map((f) => f.get(k) ?? "–");
    return new Set(vals).size > 1 ? [[k, vals] as [string, string[]]] : [];
  });
}

/** The "Runs" table: one column per run, one row per property. */
function runsTable(
  labels: string[],
  runs: RunFiles[],
  links: (string | null)[],
): string {
  const props: [string, (r: RunFiles) => string][] = [
    ["data", (r) => dataText(r.config)],
    ["training / evaluation cases", (r) => {
      const split = pick(r.config, "split") as
        | { train?: unknown[]; evaluation?: unknown[] }
        | undefined;
      return split
        ? `${split.train?.length ?? "?"} / ${split.evaluation?.length ?? "?"}`
        : "–";
    }],
    ["model", (r) => (r.config ? modelText(r.config) : "–")],
    ["seed", (r) => String(pick(r.config, "seed") ?? "–")],
    ["backend", (r) => environmentOf(r.metrics)?.backend ?? "–"],
    ["versions (library / Deno / tfjs)", (r) => {
      const env = environmentOf(r.metrics);
      return env
        ? `${env.library ?? "?"} / ${env.deno ?? "?"} / ${env.tfjs ?? "?"}`
        : "–";
    }],
    ["git commit", (r) => commitText(environmentOf(r.metrics))],
    ["wall time", (r) => {
      const t = timingsOf(r.metrics);
      return t ? duration(Object.values(t).reduce((a, b) => a + b, 0)) : "–";
    }],
    ["evaluation cases scored", (r) => String(r.metrics?.cases.length ?? "–")],
    ["Dice (all cases)", (r) => fmt(r.metrics?.mean.dice)],
    ["dicePresent", (r) => fmt(r.metrics?.mean.dicePresent)],
    ["HD95 (mm)", (r) => fmt(r.metrics?.mean.hd95, 2)],
    ["ASSD (mm)", (r) => fmt(r.metrics?.mean.assd, 2)],
  ];
  const head = labels.map((l, i) =>
    `<th>${links[i] ? `<a href="${esc(links[i])}">${esc(l)}</a>` : esc(l)}</th>`
  ).join("");
  const rows = props.map(([name, f]) =>
    `<tr><th>${esc(name)}</th>${
      runs.map((r) => `<td>${esc(f(r))}</td>`).join("")
    }</tr>`
  );
  return `<table class="kv"><thead><tr><th>run</th>${head}</tr></thead><tbody>\n${
    rows.join("\n")
  }\n</tbody></table>\n<p class="note">Run names link to each run's own report. Means over targets of the evaluation metrics; distances in mm.</p>`;
}

/** Dice per target (rows) and run (columns): mean ± std (n), the best bold. */
function diceTable(labels: string[], runs: RunFiles[]): string {
  const targets = [
    ...new Set(runs.flatMap((r) => Object.keys(r.metrics?.targets ?? {}))),
  ];
  const cell = (r: RunFiles, t: string) => {
    const s = r.metrics?.stats?.[t]?.dicePresent;
    return s && s.mean !== null
      ? { mean: s.mean, text: `${fmt(s.mean)} ± ${fmt(s.std)} (${s.n})` }
      : { mean: null, text: "–" };
  };
  const rows = [...targets, "mean"].map((t) => {
    const cells = runs.map((r) =>
      t === "mean"
        ? {
          mean: r.metrics?.mean.dicePresent ?? null,
          text: fmt(r.metrics?.mean.dicePresent),
        }
        : cell(r, t)
    );
    const best = Math.max(...cells.map((c) => c.mean ?? -Infinity));
    // Bold marks a row's highest where the runs differ.
    const differ = new Set(cells.map((c) => c.mean)).size > 1;
    return `<tr><td>${esc(t)}</td>${
      cells.map((c) =>
        c.mean !== null && c.mean === best && differ
          ? `<td><b>${esc(c.text)}</b></td>`
          : `<td>${esc(c.text)}</td>`
      ).join("")
    }</tr>`;
  });
  return `<table><thead><tr><th>target</th>${
    labels.map((l) => `<th>${esc(l)}</th>`).join("")
  }</tr></thead><tbody>\n${
    rows.join("\n")
  }\n</tbody></table>\n<p class="note">dicePresent: Dice over the cases whose truth contains the target, mean ± sample std (cases); the highest of each row in bold where the runs differ. The last row is the mean over targets.</p>`;
}

/**
 * Writes a page that puts run directories side by side. Runs without a
 * `metrics.json` (unfinished) are shown with what they have.
 *
 * @param runDirs Two or more run directories (one works too).
 * @param options Output folder, title.
 * @returns The files written.
 * @throws {TypeError} When `runDirs` is empty.
 * @throws {Error} When a run file exists but cannot be read.
 *
 * @example
 * ```ts ignore
 * import { writeCompareReport } from "@agcl/agcl/report";
 * const r = await writeCompareReport([".runs/a", ".runs/b"], { out: ".runs/a-vs-b" });
 * console.log(r.index);
 * ```
 */
export async function writeCompareReport(
  runDirs: string[],
  options: CompareReportOptions = {},
): Promise<ReportResult> {
  if (runDirs.length === 0) {
    throw new TypeError(
      "Cannot compute writeCompareReport as 'runDirs' is empty",
    );
  }
  const { out: dir = "compare-report", title = "AGCL runs compared" } = options;
  await Deno.mkdir(dir, { recursive: true });
  const runs = await Promise.all(runDirs.map((d) => loadRun(d)));
  const labels = runLabels(runDirs);
  const links = await Promise.all(runDirs.map(async (d) => {
    const index = join(d, "report", "index.html");
    try {
      await Deno.stat(index);
      return relative(resolve(dir), resolve(index));
    } catch {
      return null;
    }
  }));
  const files: string[] = [];
  const skipped: string[] = [];
  const sections: Section[] = [{
    title: "Runs",
    html: runsTable(labels, runs, links),
  }];

  const rows = runs.flatMap((r, i) =>
    r.metrics ? diceRows(r.metrics, labels[i]!) : []
  );
  if (rows.length > 0) {
    const f = await writeFigure(
      dir,
      "dice_compare",
      diceBoxSpec(rows, {
        methods: labels,
        targets: [...new Set(rows.map((r) => r.target))],
        title: "Dice per target and run",
        colorTitle: "run",
      }),
    );
    files.push(f.svg, f.png);
    sections.push({
      title: "Dice per target",
      html: [
        diceTable(labels, runs),
        figureHtml(
          f,
          "Dice per target over the cases whose truth contains it: each point a case, colour = run, black tick = mean",
        ),
      ].join("\n"),
    });
  } else skipped.push("Dice: no run has a metrics.json");

  const validation: ValidationRow[] = runs.flatMap((r, i) =>
    r.validation.map((v) => ({ ...v, method: labels[i]! }))
  );
  if (validation.some((v) => v.dice !== null)) {
    const f = await writeFigure(
      dir,
      "validation_compare",
      validationSpec(validation),
    );
    files.push(f.svg, f.png);
    sections.push({
      title: "Validation",
      html: figureHtml(
        f,
        "Validation Dice after each epoch of stages 1 and 3 (log.jsonl), one line per run",
      ),
    });
  } else skipped.push("validation curves: no run logged validation Dice");

  const log: LogEntry[] = runs.flatMap((r, i) =>
    r.log.map((e) => ({ ...e, method: labels[i]! }))
  );
  if (log.length > 0) {
    const f = await writeFigure(dir, "loss_compare", lossCurveSpec(log));
    files.push(f.svg, f.png);
    sections.push({
      title: "Training loss",
      html: figureHtml(f, "Loss per stage, one line per run (moving average)"),
    });
  } else skipped.push("loss curves: no run has a log.jsonl");

  const timed = runs.map((r) => timingsOf(r.metrics));
  if (timed.some((t) => t)) {
    const stages = TIMING_STAGES.filter((s) => timed.some((t) => t && s in t));
    sections.push({
      title: "Stage wall times",
      html: tableHtml(
        ["run", ...stages, "total"],
        timed.map((t, i) => [
          labels[i]!,
          ...stages.map((s) => duration(t?.[s])),
          t ? duration(Object.values(t).reduce((a, b) => a + b, 0)) : "–",
        ]),
      ),
    });
  }

  const diff = configDifferences(runs.map((r) => r.config));
  sections.push({
    title: "Config differences",
    html: diff.length > 0
      ? tableHtml(["field", ...labels], diff.map(([k, v]) => [k, ...v]))
      : "<p>The runs' configs are the same (apart from their data records).</p>",
  });

  if (skipped.length > 0) {
    sections.push({
      title: "Not drawn",
      html: `<ul>${skipped.map((s) => `<li>${esc(s)}</li>`).join("")}</ul>`,
    });
  }
  const index = join(dir, "index.html");
  await Deno.writeTextFile(index, pageHtml(title, sections));
  files.push("index.html");
  return { dir, index, files, skipped };
}
