/**
 * {@linkcode runPipeline}: the three stages, inference, label fusion and
 * metrics into a run directory, resumable after a crash.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { selectBackend } from "../backends/mod.ts";
import type { LabelMap, SamplingCase } from "../data/mod.ts";
import { Prng } from "../random/prng.ts";
import { metricsCsv, type MetricsSummary } from "../metrics/mod.ts";
import { writeFileAtomic } from "../data/_io.ts";
import { writeRunReport } from "../report/mod.ts";
import { type PipelineConfig, validateConfig } from "./config.ts";
import { applyBudgets } from "./budget.ts";
import { describeBudgets, runBudgets } from "./_budgets.ts";
import { readRunConfig, recordedPath } from "./run_config.ts";
import { resolveCoarseFlip, resolveJitter } from "./coarse.ts";
import {
  describeStage1,
  describeStage2,
  evaluateCases,
  formatMetricsTable,
  formatStageTable,
  stage1Evidence,
  stage2Warning,
  underTrainedWarnings,
} from "./evaluate.ts";
import { prepareData, type PreparedCase, resolveDataPath } from "./prepare.ts";
import { Progress, type ProgressMode } from "./progress.ts";
import { type LastPointer, RunDir } from "./run_dir.ts";
import { planStage1, runStage1, type Stage1Product } from "./stage1.ts";
import { probeStage2, runStage2 } from "./stage2.ts";
import { runStage3 } from "./stage3.ts";
import type { StageContext } from "./_stage_runner.ts";
import { writeCaseLabels } from "./_label_io.ts";
import { writeModelDir } from "./_model_dir.ts";
import { runEnvironment } from "./environment.ts";

/** Options for {@linkcode runPipeline}. */
export interface RunOptions {
  /** The run directory. */
  out: string;
  /** Continue the run in `out` from its last complete checkpoint. */
  resume?: boolean;
  /** No progress bars. */
  quiet?: boolean;
  /** Backend: `auto`, `cpu`, `wasm`, `webgpu`. @default {"auto"} */
  backend?: string;
  /** Where result lines go. @default {console.log} */
  print?: (line: string) => void;
}

/** What {@linkcode runPipeline} returns. */
export interface RunResult {
  /** The run directory. */
  runDir: string;
  /** The metrics written to `metrics.json`. */
  metrics: MetricsSummary;
  /** Wall time per part, in seconds. */
  timings: Record<
    "prepare" | "coarse" | "pretrain" | "segment" | "inference",
    number
  >;
  /** The backend that ran. */
  backend: string;
}

export { readRunConfig, recordedPath, runDataPath } from "./run_config.ts";

function seeds(seed: number) {
  const root = new Prng(seed);
  const next = () => root.nextUint32();
  return {
    coarseInit: next(),
    coarseShuffle: next(),
    encoder: next(),
    head: next(),
    decoder: next(),
    sample2: next(),
    stream2: next(),
    sample3: next(),
    stream3: next(),
    embed: next(),
    folds: next(),
    budget: next(),
    validate: next(),
  };
}

function samplingCases(
  cases: PreparedCase[],
  attention: Map<string, LabelMap>,
): SamplingCase[] {
  return cases.map((c) => {
    const s: SamplingCase = {
      id: c.id,
      domain: c.domain,
      dims: c.dims,
      channels: c.channels,
      image: c.image,
      attention: attention.get(c.id)!,
    };
    if (c.label) s.label = c.label;
    return s;
  });
}

/**
 * Runs the whole pipeline into `options.out`: data preparation, stage 1
 * (coarse segmentation with cross-fitted training attention, or masks from
 * `config.coarse.masks`), stage 2 (pre-training, probed on held-out
 * patches), stage 3 (frozen-encoder segmentation), then inference with
 * label fusion on the evaluation cases. The run directory receives
 * `attention/` (stage 1's coarse maps), `model/` (the trained networks as
 * PyTorch state dicts: `coarse`, `encoder` and `segment.safetensors`, and
 * a `config.json` that rebuilds them), `predictions/`, `metrics.json`
 * (with the stage evidence under `stages`, the stage wall times under
 * `timings` and the backend, versions and git commit under `environment`), `metrics.csv` (one row per case × target), `embeddings.json` and a report.
 * Each epoch ends with an atomic checkpoint; with `resume` the run
 * continues from the last complete one and, on the cpu backend, reaches
 * the same weights as an uninterrupted run.
 *
 * @param config The merged config (ignored on resume: the run's own is used).
 * @param options Run directory, resume, quiet, backend.
 * @returns Metrics, timings and backend.
 * @throws {Error} For data problems, a run directory that already holds a
 * run (without `resume`), or a missing run (with `resume`).
 */
export async function runPipeline(
  config: PipelineConfig,
  options: RunOptions,
): Promise<RunResult> {
  const { out, resume = false, quiet = false, backend = "auto" } = options;
  const clock = () => performance.now() / 1000;
  const started = clock();
  const print = options.print ?? ((l: string) => console.log(l));
  const warn = (m: string) => {
    if (!quiet) console.error(`warning: ${m}`);
  };
  const run = new RunDir(out);
  const opened = await openRun(run, absolutePaths(config), resume);
  config = opened.config;
  await run.init();
  const chosen = await selectBackend(backend, { purpose: "train" });
  print(`backend: ${chosen.name} (${chosen.reason})`);
  // Read at the start: the checkout may move on while the run trains.
  const environment = await runEnvironment(chosen);
  if (chosen.hint) print(`hint: ${chosen.hint}`);
  const progress: ProgressMode = quiet
    ? "quiet"
    : Deno.stderr.isTerminal()
    ? "tty"
    : "plain";
  const timings = {
    prepare: 0,
    coarse: 0,
    pretrain: 0,
    segment: 0,
    inference: 0,
  };

  // Data, and the choices that depend on it.
  let t0 = clock();
  const dataPath = await resolveDataPath(config, join(out, "data"));
  let prepBar: Progress | undefined;
  const data = await prepareData(dataPath, config, {
    onCase: (done, total) => {
      prepBar ??= new Progress("prepare", total, { mode: progress });
      prepBar.tick();
      if (done === total) prepBar.done();
    },
    onWarning: warn,
  });
  const s = seeds(config.seed);
  const plan = planStage1(config, data, { seed: s.folds });
  const pretrainJitter = resolveJitter(config.pretrain.jitter, data.intensity);
  const pretrainFlip = resolveCoarseFlip(config.pretrain.flip, {
    labelNames: data.targets.map((t) => t.name),
    cases: data.train,
  });
  if (plan.fallback) warn(plan.fallback);
  // Budgets: sized from the data (and fitted to budget.minutes) once, at
  // the start; a resumed run reuses the recorded ones.
  const { record: budgets, recorded } = await runBudgets(config, data, {
    plan,
    seed: s.budget,
    elapsed: () => clock() - started,
    saved: resume ? opened.saved ?? {} : null,
  });
  if (recorded) print("budget: as recorded in config.json (resumed run)");
  for (const line of describeBudgets(budgets)) print(line);
  // Shown even when quiet: the run will not keep to its minutes.
  if (budgets.minutes?.warning) {
    console.error(`warning: ${budgets.minutes.warning}`);
  }
  const saved = {
    ...config,
    dataPath: recordedPath(out, dataPath),
    split: data.split,
    labels: Object.fromEntries(data.targets.map((t) => [t.id, t.name])),
    domains: data.domains,
    intensityResolved: data.intensity,
    channels: data.train[0]!.channels,
    coarseFlipResolved: plan.flip,
    coarseTtaResolved: plan.tta,
    coarseJitterResolved: plan.jitter,
    trainAttentionResolved: plan.trainSource,
    coarseLargestComponentResolved: plan.largestComponent,
    pretrainJitterResolved: pretrainJitter,
    pretrainFlipResolved: pretrainFlip,
    crossfitFolds: plan.folds ?? null,
    budgets,
  };
  // The stages run with numbers where the config says "auto".
  config = applyBudgets(config, budgets.stages);
  if (!resume) {
    print(`config: ${JSON.stringify(saved, null, 2)}`);
    await run.writeJson("config.json", saved);
  }
  print(
    `data: ${data.train.length} training, ${data.evaluation.length} evaluation cases (${data.split.source}); targets ${
      data.targets.map((t) => t.name).join(", ")
    }`,
  );
  timings.prepare = clock() - t0;
  const ctx: StageContext = {
    run,
    progress,
    finished: { ...(opened.last?.finished ?? {}) },
  };
  if (opened.last) ctx.last = opened.last;
  const targets = data.targets.map((t) => t.id);
  const channels = data.train[0]!.channels;
  const names = {
    target: (id: number) =>
      data.targets.find((t) => t.id === id)?.name ?? String(id),
    domain: (i: number) => data.domains[i] ?? String(i),
  };

  // Stage 1: coarse maps and attention of every case.
  t0 = clock();
  const s1 = await runStage1(ctx, config, {
    data,
    plan,
    seeds: { init: s.coarseInit, shuffle: s.coarseShuffle },
  });
  await writeAttention(run, [...data.train, ...data.evaluation], s1);
  const evidence = stage1Evidence(data, s1, {
    margin: config.inference.margin,
  });
  timings.coarse = clock() - t0;
  if (evidence.stage1.mean.dice !== null) print(describeStage1(evidence));

  // Stage 2: the encoder, pre-trained and probed.
  t0 = clock();
  const trainCases = samplingCases(data.train, s1.attention);
  const evalCases = samplingCases(data.evaluation, s1.attention);
  const s2 = await runStage2(ctx, config, {
    cases: trainCases,
    targets,
    channels,
    seeds: {
      encoder: s.encoder,
      head: s.head,
      sample: s.sample2,
      stream: s.stream2,
    },
    jitter: pretrainJitter,
    flip: pretrainFlip,
    warn,
  });
  let segNet: Awaited<ReturnType<typeof runStage3>> | undefined;
  try {
    let probe = null;
    try {
      const probed = await probeStage2(
        s2,
        evalCases.length ? evalCases : trainCases,
        { targets, patchSize: config.patchSize, seed: s.embed, names },
      );
      probe = probed.probe;
      await run.writeJson("embeddings.json", { points: probed.points });
    } catch (e) {
      warn(`no embeddings written: ${e instanceof Error ? e.message : e}`);
    }
    print(describeStage2(s2.health, probe));
    const weak = stage2Warning(s2.health);
    if (weak) warn(weak);
    timings.pretrain = clock() - t0;

    // Stage 3: the decoder on the frozen encoder.
    t0 = clock();
    segNet = await runStage3(ctx, config, {
      encoder: s2.encoder,
      cases: trainCases,
      targets,
      channels,
      seeds: { decoder: s.decoder, sample: s.sample3, stream: s.stream3 },
      warn,
      validation: {
        cases: evalCases,
        targets: data.targets.map(({ id, name }) => ({ id, name })),
        seed: s.validate,
      },
    });
    timings.segment = clock() - t0;
    for (const w of underTrainedWarnings(await run.readLog())) warn(w);
    // The trained networks as PyTorch state dicts, for predict and PyTorch.
    await writeModelDir(run, {
      config,
      finished: ctx.finished,
      encoder: s2.encoder,
      segment: segNet,
      targets: data.targets.map(({ id, name }) => ({ id, name })),
      channels,
      intensity: data.intensity,
      largestComponent: plan.largestComponent,
      coarseTta: plan.tta,
    });

    // Inference, label fusion, metrics and the stage evidence.
    t0 = clock();
    const found = await evaluateCases(segNet, data, {
      attention: s1.attention,
      config,
      dir: run.predictionDir,
      progress,
    });
    if (!found) {
      throw new Error(
        `Cannot evaluate the run in ${out}: no evaluation case has a label`,
      );
    }
    timings.inference = clock() - t0;
    const metrics = {
      ...found,
      stages: { ...evidence, stage2: { health: s2.health, probe } },
      timings,
      environment,
    };
    await run.writeJson("metrics.json", metrics);
    await writeFileAtomic(join(out, "metrics.csv"), metricsCsv(metrics));
    print(
      `\nDice on ${metrics.cases.length} evaluation case(s) (${data.split.source}):`,
    );
    print(formatMetricsTable(metrics));
    print(`\nWhat each stage contributed:`);
    print(
      formatStageTable(metrics, {
        stage1: evidence.stage1,
        reach: evidence.attention.evaluation,
        train: evidence.attention.train,
      }),
    );
    if (metrics.miou !== undefined) {
      print(`mIoU (VOC, 255 ignored): ${metrics.miou.toFixed(3)}`);
    }
    print(
      `\ntime (s): prepare ${timings.prepare.toFixed(1)}, coarse ${
        timings.coarse.toFixed(1)
      }, pretrain ${timings.pretrain.toFixed(1)}, segment ${
        timings.segment.toFixed(1)
      }, inference ${timings.inference.toFixed(1)}`,
    );
    await run.writeJson("timings.json", timings);
    try {
      const report = await writeRunReport(out, { seed: config.seed });
      print(`report: ${report.index}`);
    } catch (e) {
      warn(`no report written: ${e instanceof Error ? e.message : e}`);
    }
    print(`run directory: ${out}`);
    return { runDir: out, metrics, timings, backend: chosen.name };
  } finally {
    // The segmentation network shares (and disposes) the encoder.
    if (segNet) segNet.dispose();
    else s2.encoder.dispose();
    s2.head.dispose();
  }
}

/**
 * The config with its input paths (`data`, `coarse.masks`) absolute, so
 * that `config.json` and `--resume` read them from any working directory.
 */
function absolutePaths(config: PipelineConfig): PipelineConfig {
  const out = { ...config };
  if (out.data !== null) out.data = resolve(out.data);
  if (out.coarse.masks !== null) {
    out.coarse = { ...out.coarse, masks: resolve(out.coarse.masks) };
  }
  return out;
}

/**
 * Checks that `out` may hold this run: a fresh directory, or with `resume`
 * the run's own config and its last complete checkpoint (the log is cut
 * back to it).
 */
async function openRun(
  run: RunDir,
  config: PipelineConfig,
  resume: boolean,
): Promise<
  {
    config: PipelineConfig;
    last?: LastPointer;
    saved?: Record<string, unknown>;
  }
> {
  if (resume) {
    const { config: own, saved } = await readRunConfig(run.root);
    const last = await run.readLast();
    // Steps logged after the last complete checkpoint will run again.
    await run.truncateLog(last?.stage ?? "coarse", last?.step ?? 0);
    return last ? { config: own, last, saved } : { config: own, saved };
  }
  validateConfig(config);
  let exists = false;
  try {
    await Deno.stat(run.configPath);
    exists = true;
  } catch { /* a fresh directory */ }
  if (exists) {
    throw new Error(
      `Cannot start a run in ${run.root}: it already holds one (config.json); use --resume to continue it or another --out`,
    );
  }
  return { config };
}

/** Writes stage 1's coarse maps as `attention/<case id>.nii.gz` (reusable as `coarse.masks`). */
async function writeAttention(
  run: RunDir,
  cases: PreparedCase[],
  s1: Stage1Product,
): Promise<void> {
  const dir = join(run.root, "attention");
  await Deno.mkdir(dir, { recursive: true });
  for (const c of cases) {
    await writeCaseLabels(join(dir, `${c.id}.nii.gz`), s1.coarse.get(c.id)!, c);
  }
}
