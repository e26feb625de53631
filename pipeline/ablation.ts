/**
 * Runs a pre-training ablation (methods × backbones on one split and seed)
 * through an injected pipeline runner, resumably, then writes the table,
 * the paired tests and the comparative report.
 *
 * @module
 */
import { join } from "node:path";
import { exists, writeFileAtomic } from "../data/_io.ts";
import { type MetricsSummary, upgradeMetrics } from "../metrics/evaluate.ts";
import {
  type AblationRun,
  writeAblationReport,
} from "../report/ablation_report.ts";
import {
  type AblationMetrics,
  type AblationTable,
  ablationTable,
  pairedTests,
  seedTable,
} from "../report/ablation_table.ts";
import type { PairedTest } from "../report/ablation_report.ts";
import type { TemperatureRow } from "../report/figures.ts";

/** The pipeline call the ablation drives (`runPipeline` of `pipeline/`). */
export type AblationRunner = (
  config: unknown,
  options: { out: string; resume: boolean },
) => Promise<unknown>;

/** Options for {@linkcode runAblation}. */
export interface AblationOptions {
  /** Folder of the ablation: one run folder per backbone and method, tables, report. */
  out: string;
  /** Pre-training methods, in table order. @default {["none", "sscl", "ce", "supcon", "agcl"]} */
  methods?: string[];
  /** Backbone depths. */
  backbones: number[];
  /**
   * Builds the run config of a method, backbone, seed (absent: the
   * config's own) and (for the sweep) temperature; same split for all.
   * `masks`, when set, is the `attention/` folder of an earlier run of the
   * same seed and backbone: give it as `coarse.masks` so that every method
   * shares one stage 1.
   */
  configure: (
    run: {
      method: string;
      backbone: number;
      temperature?: number;
      seed?: number;
      masks?: string;
    },
  ) => unknown;
  /** Seeds to repeat the ablation with (`s<seed>/` folders). @default {[]} (one run each, the config's seed) */
  seeds?: number[];
  /** Compute stage 1 once per seed and backbone and share it. @default {true} */
  shareStage1?: boolean;
  /** Runs (or resumes) one pipeline run. */
  runner: AblationRunner;
  /** Extra `agcl` runs at these temperatures on the first backbone (Fig. 5b). */
  temperatures?: number[];
  /** Method the paired tests compare against. @default {"agcl"} */
  reference?: string;
  /** Progress lines. @default {console.log} */
  print?: (line: string) => void;
  /** Seed of the report's embeddings. @default {0} */
  seed?: number;
}

/** Result of {@linkcode runAblation}. */
export interface AblationResult {
  /** Every run and its metrics. */
  runs: (AblationRun & {
    metrics: MetricsSummary;
    status: "ran" | "resumed" | "skipped";
    seed?: number;
  })[];
  /** The table over seeds (the paper's Table 1 with the evidence columns). */
  seedTable: ReturnType<typeof seedTable>;
  /** The table in every form. */
  table: AblationTable;
  /** The paired tests. */
  tests: PairedTest[];
  /** Temperature sweep points (empty without `temperatures`). */
  sweep: TemperatureRow[];
  /** Paths of the files written (`markdown`: the table over seeds; `perRun`: per run). */
  files: {
    markdown: string;
    csv: string;
    json: string;
    perRun: string;
    report: string;
  };
}

async function runOne(
  dir: string,
  config: () => unknown,
  runner: AblationRunner,
  print: (line: string) => void,
): Promise<{ metrics: MetricsSummary; status: "ran" | "resumed" | "skipped" }> {
  const metricsPath = join(dir, "metrics.json");
  let status: "ran" | "resumed" | "skipped" = "skipped";
  if (await exists(metricsPath)) {
    print(`${dir}: finished, skipped`);
  } else if (await exists(join(dir, "config.json"))) {
    print(`${dir}: resuming`);
    await runner(config(), { out: dir, resume: true });
    status = "resumed";
  } else {
    print(`${dir}: starting`);
    await runner(config(), { out: dir, resume: false });
    status = "ran";
  }
  let metrics: MetricsSummary;
  try {
    metrics = upgradeMetrics(
      JSON.parse(await Deno.readTextFile(metricsPath)),
    );
  } catch (e) {
    throw new Error(
      `Cannot read ${metricsPath} after the run: ${
        e instanceof Error ? e.message : e
      }`,
    );
  }
  return { metrics, status };
}

/**
 * Runs every method × backbone (skipping finished runs, resuming unfinished
 * ones), then writes `table.md`, `table.csv`, `table.json` (statistics and
 * paired Wilcoxon tests of the reference against each baseline) and
 * `report/index.html` under `out`.
 *
 * @param options Methods, backbones, config builder, runner.
 * @returns Runs, table, tests and file paths.
 * @throws {RangeError} When there is no method or backbone, or the reference is not among the methods.
 * @throws {Error} When a run fails or leaves no metrics.json.
 *
 * @example
 * ```ts ignore
 * import {
 *   mergeConfig,
 *   PRESETS,
 *   runAblation,
 *   runPipeline,
 * } from "@agcl/agcl/pipeline";
 * await runAblation({
 *   out: ".runs/ablation",
 *   backbones: [18],
 *   configure: ({ method, backbone }) =>
 *     mergeConfig(PRESETS.tiny, { model: { backbone }, pretrain: { method } }),
 *   runner: (config, o) => runPipeline(config as never, { ...o, quiet: true }),
 * });
 * ```
 */
export async function runAblation(
  options: AblationOptions,
): Promise<AblationResult> {
  const {
    out,
    methods = ["none", "sscl", "ce", "supcon", "agcl"],
    backbones,
    reference = "agcl",
    temperatures = [],
    print = (l: string) => console.log(l),
  } = options;
  if (methods.length === 0 || backbones.length === 0) {
    throw new RangeError(
      `Cannot run the ablation as 'methods' and 'backbones' must not be empty: current values are [${methods}] and [${backbones}]`,
    );
  }
  if (!methods.includes(reference)) {
    throw new RangeError(
      `Cannot run the ablation as the reference method '${reference}' is not among the methods [${methods}]`,
    );
  }
  await Deno.mkdir(out, { recursive: true });
  const runs: AblationResult["runs"] = [];
  const seeds: (number | undefined)[] = options.seeds?.length
    ? options.seeds
    : [undefined];
  const share = options.shareStage1 ?? true;
  for (const seed of seeds) {
    for (const backbone of backbones) {
      let masks: string | undefined;
      for (const method of methods) {
        const runDir = seed === undefined
          ? join(out, `r${backbone}-${method}`)
          : join(out, `s${seed}`, `r${backbone}-${method}`);
        const r = await runOne(
          runDir,
          () =>
            options.configure({
              method,
              backbone,
              ...(seed !== undefined ? { seed } : {}),
              ...(masks !== undefined ? { masks } : {}),
            }),
          options.runner,
          print,
        );
        if (share && masks === undefined) masks = join(runDir, "attention");
        runs.push({
          method,
          backbone: `r${backbone}`,
          runDir,
          ...r,
          ...(seed !== undefined ? { seed } : {}),
        });
      }
    }
  }
  const sweep: TemperatureRow[] = [];
  for (const temperature of temperatures) {
    const backbone = backbones[0]!;
    const runDir = join(out, `r${backbone}-${reference}-t${temperature}`);
    const r = await runOne(
      runDir,
      () => options.configure({ method: reference, backbone, temperature }),
      options.runner,
      print,
    );
    sweep.push({
      temperature,
      dice: r.metrics.mean.dice,
      method: `${reference} r${backbone}`,
    });
  }
  // Per run (the backbone label carries the seed, so tests pair within a seed).
  const withMetrics: AblationMetrics[] = runs.map((r) => ({
    method: r.method,
    backbone: r.seed === undefined ? r.backbone : `${r.backbone} s${r.seed}`,
    metrics: r.metrics,
  }));
  const table = ablationTable(withMetrics);
  const tests = pairedTests(withMetrics, { reference });
  const overSeeds = seedTable(
    runs.map((r) => ({
      method: r.method,
      backbone: r.backbone,
      metrics: r.metrics,
      seed: r.seed ?? 0,
    })),
    { reference },
  );
  const files = {
    markdown: join(out, "table.md"),
    csv: join(out, "table.csv"),
    json: join(out, "table.json"),
    perRun: join(out, "runs.md"),
    report: join(out, "report", "index.html"),
  };
  await writeFileAtomic(files.markdown, overSeeds.markdown);
  await writeFileAtomic(files.csv, overSeeds.csv);
  await writeFileAtomic(files.perRun, table.markdown);
  await writeFileAtomic(
    files.json,
    JSON.stringify(
      {
        targets: table.targets,
        seedRows: overSeeds.rows,
        rows: table.rows,
        tests,
        sweep,
        runs: runs.map((r) => ({
          method: r.method,
          backbone: r.backbone,
          seed: r.seed ?? null,
          runDir: r.runDir,
        })),
      },
      null,
      2,
    ) + "\n",
  );
  const labelled = runs.map((r) => ({
    method: r.method,
    backbone: r.seed === undefined ? r.backbone : `${r.backbone} s${r.seed}`,
    runDir: r.runDir,
  }));
  await writeAblationReport(join(out, "report"), labelled, {
    table: overSeeds.text,
    tableTitle:
      "Dice per method (mean ± std over seeds), gain over none, paired Wilcoxon test against the reference over (seed, case, target) pairs, and the stage evidence",
    tests,
    sweep,
    seed: options.seed ?? 0,
  });
  return { runs, table, seedTable: overSeeds, tests, sweep, files };
}
