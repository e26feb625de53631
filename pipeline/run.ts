/**
 * {@linkcode runPipeline}: the three stages, inference, label fusion and
 * metrics into a run directory, resumable after a crash.
 *
 * @module
 */
import { join } from "node:path";
import { selectBackend } from "../backends/mod.ts";
import {
  BatchStream,
  fromCanonical,
  type LabelMap,
  readNifti,
  samplePatches,
  type SamplingCase,
  toCanonical,
  VOC_IGNORE,
  writeNifti,
} from "../data/mod.ts";
import { Prng } from "../random/prng.ts";
import { type PipelineConfig, validateConfig } from "./config.ts";
import {
  coarseStage,
  paddingMultiple,
  predictCoarse,
  resolveCoarseFlip,
  resolveCoarseJitter,
} from "./coarse.ts";
import { growLabels } from "./attention.ts";
import {
  type CaseMetrics,
  confusionMatrix,
  evaluateLabelMaps,
  meanIoUFromConfusion,
  type MetricsSummary,
  summarizeMetrics,
} from "../metrics/mod.ts";
import { writeRunReport } from "../report/mod.ts";
import { formatMetricsTable } from "./evaluate.ts";
import { segmentVolume } from "./infer.ts";
import { prepareData, type PreparedCase, resolveDataPath } from "./prepare.ts";
import { embedPatches, pretrainStage } from "./pretrain.ts";
import { Progress, type ProgressMode } from "./progress.ts";
import { type LastPointer, RunDir, type Stage } from "./run_dir.ts";
import { segmentStage } from "./segment.ts";
import {
  assignVariables,
  loadStageCheckpoint,
  runStage,
  type StageContext,
} from "./_stage_runner.ts";
import {
  buildCoarseNet,
  buildEncoder,
  buildHead,
  buildSegNet,
  namedVariables,
} from "./_models.ts";

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
  timings: Record<"prepare" | Stage | "inference", number>;
  /** The backend that ran. */
  backend: string;
}

/** Keys `config.json` adds to the merged config. */
const RUN_KEYS = [
  "dataPath",
  "split",
  "labels",
  "domains",
  "intensityResolved",
  "channels",
  "coarseFlipResolved",
  "coarseJitterResolved",
] as const;

/** Reads a run's config back (without the keys the run added). */
export async function readRunConfig(runDir: string): Promise<{
  config: PipelineConfig;
  saved: Record<string, unknown>;
}> {
  const path = join(runDir, "config.json");
  let saved: Record<string, unknown>;
  try {
    saved = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new Error(
      `Cannot read run config ${path}: ${e instanceof Error ? e.message : e}`,
    );
  }
  const plain = { ...saved };
  for (const k of RUN_KEYS) delete plain[k];
  validateConfig(plain);
  return { config: plain, saved };
}

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
  };
}

async function readCoarseMasks(
  dir: string,
  c: PreparedCase,
): Promise<LabelMap> {
  let path = join(dir, `${c.id}.nii.gz`);
  try {
    await Deno.stat(path);
  } catch {
    path = join(dir, `${c.id}.nii`);
  }
  const v = toCanonical(await readNifti(path));
  if (v.dims.some((d, i) => d !== c.dims[i])) {
    throw new Error(
      `Cannot use coarse mask ${path}: dims [${v.dims}] differ from image ${c.entry.image} [${c.dims}]`,
    );
  }
  let max = 0;
  for (const x of v.data) max = Math.max(max, x);
  return max <= 255 ? Uint8Array.from(v.data) : Int16Array.from(v.data);
}

/** Mean Dice over targets and cases of the attention maps (`null` without labels). */
function meanCoarseDice(
  cases: PreparedCase[],
  attention: Map<string, LabelMap>,
  targets: { id: number; name: string }[],
): number | null {
  let sum = 0, n = 0;
  for (const c of cases) {
    const a = attention.get(c.id);
    if (!a || !c.label) continue;
    for (const t of targets) {
      let tp = 0, np = 0, nt = 0;
      for (let i = 0; i < a.length; i++) {
        const p = a[i] === t.id, q = c.label[i] === t.id;
        if (p) np++;
        if (q) nt++;
        if (p && q) tp++;
      }
      sum += np + nt === 0 ? 1 : (2 * tp) / (np + nt);
      n++;
    }
  }
  return n ? sum / n : null;
}

/** Fills `map`'s background voxels with `truth`'s labels, in place. */
function fillBackground(map: LabelMap, truth: LabelMap): void {
  for (let i = 0; i < map.length; i++) {
    if (map[i] === 0 && truth[i] !== VOC_IGNORE) map[i] = truth[i]!;
  }
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
 * (coarse segmentation, or masks from `config.coarse.masks`), stage 2
 * (pre-training), stage 3 (frozen-encoder segmentation), then inference with
 * label fusion on the evaluation cases, `predictions/`, `metrics.json` and
 * `embeddings.json`. Each epoch ends with an atomic checkpoint; with
 * `resume` the run continues from the last complete one and, on the cpu
 * backend, reaches the same weights as an uninterrupted run.
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
  const print = options.print ?? ((l: string) => console.log(l));
  const progress: ProgressMode | undefined = quiet ? "quiet" : undefined;
  const run = new RunDir(out);
  let last: LastPointer | undefined;
  if (resume) {
    config = (await readRunConfig(out)).config;
    last = await run.readLast();
    // Steps logged after the last complete checkpoint will run again.
    await run.truncateLog(last?.stage ?? "coarse", last?.step ?? 0);
  } else {
    validateConfig(config);
    let exists = false;
    try {
      await Deno.stat(run.configPath);
      exists = true;
    } catch { /* a fresh directory */ }
    if (exists) {
      throw new Error(
        `Cannot start a run in ${out}: it already holds one (config.json); use --resume to continue it or another --out`,
      );
    }
  }
  await run.init();
  const chosen = await selectBackend(backend, { purpose: "train" });
  print(`backend: ${chosen.name} (${chosen.reason})`);
  const timings = {
    prepare: 0,
    coarse: 0,
    pretrain: 0,
    segment: 0,
    inference: 0,
  };
  const clock = () => performance.now() / 1000;

  // Data.
  let t0 = clock();
  const dataPath = await resolveDataPath(config, join(out, "data"));
  const warn = (m: string) => {
    if (!quiet) console.error(`warning: ${m}`);
  };
  let prepBar: Progress | undefined;
  const data = await prepareData(dataPath, config, (done, total) => {
    prepBar ??= new Progress(
      "prepare",
      total,
      progress ? { mode: progress } : {},
    );
    prepBar.tick();
    if (done === total) prepBar.done();
  }, warn);
  const coarseFlip = resolveCoarseFlip(
    config.coarse.flip,
    data.targets.map((t) => t.name),
    data.train,
  );
  const coarseJitter = resolveCoarseJitter(
    config.coarse.jitter,
    data.intensity,
  );
  const saved = {
    ...config,
    dataPath,
    split: data.split,
    labels: Object.fromEntries(data.targets.map((t) => [t.id, t.name])),
    domains: data.domains,
    intensityResolved: data.intensity,
    channels: data.train[0]!.channels,
    coarseFlipResolved: coarseFlip,
    coarseJitterResolved: coarseJitter,
  };
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

  const s = seeds(config.seed);
  const ctx: StageContext = {
    run,
    progress: progress ?? (Deno.stderr.isTerminal() ? "tty" : "plain"),
    finished: { ...(last?.finished ?? {}) },
  };
  const resumeFor = (stage: Stage) =>
    last && last.stage === stage && !last.stageDone ? last : undefined;
  const allCases = [...data.train, ...data.evaluation];
  const maxLabel = Math.max(...data.targets.map((t) => t.id));
  const channels = data.train[0]!.channels;
  const targetIds = data.targets.map((t) => t.id);

  // Stage 1.
  t0 = clock();
  const attention = new Map<string, LabelMap>();
  const trainIds = new Set(data.train.map((c) => c.id));
  if (config.coarse.masks !== null) {
    for (const c of allCases) {
      attention.set(
        c.id,
        growLabels(
          await readCoarseMasks(config.coarse.masks, c),
          c.dims,
          config.coarse.dilate,
        ),
      );
    }
  } else {
    const net = buildCoarseNet(config, channels, maxLabel + 1, s.coarseInit);
    try {
      if (ctx.finished.coarse) {
        const ck = await loadStageCheckpoint(run, ctx.finished.coarse);
        assignVariables(
          namedVariables({ coarse: net }),
          ck.variables,
          ck.meta.stage,
        );
      } else {
        const spec = coarseStage(
          config,
          net,
          data.train,
          maxLabel + 1,
          s.coarseShuffle,
          { flip: coarseFlip, jitter: coarseJitter },
        );
        try {
          await runStage(ctx, spec, resumeFor("coarse"));
        } finally {
          spec.optimizer?.dispose();
        }
      }
      const bar = new Progress("coarse attention", allCases.length, {
        mode: ctx.progress,
      });
      for (const c of allCases) {
        const map = await predictCoarse(net, c, {
          multiple: paddingMultiple(config),
          batchSize: config.coarse.batchSize,
          maxLabel,
        });
        if (
          config.coarse.trainAttention === "union" && c.label &&
          trainIds.has(c.id)
        ) {
          fillBackground(map, c.label);
        }
        attention.set(c.id, growLabels(map, c.dims, config.coarse.dilate));
        bar.tick();
      }
      bar.done();
    } finally {
      net.dispose();
    }
  }
  timings.coarse = clock() - t0;
  const coarseDice = meanCoarseDice(data.evaluation, attention, data.targets);
  if (coarseDice !== null) {
    print(
      `stage 1: mean Dice of the attention on the evaluation cases ${
        coarseDice.toFixed(3)
      }`,
    );
  }

  // Stage 2.
  t0 = clock();
  const trainCases = samplingCases(data.train, attention);
  const evalCases = samplingCases(data.evaluation, attention);
  const encoder = buildEncoder(config, channels + 1, s.encoder);
  const head = buildHead(
    config,
    encoder.featureChannels,
    targetIds.length,
    s.head,
  );
  let segNet: ReturnType<typeof buildSegNet> | undefined;
  try {
    if (ctx.finished.pretrain) {
      const ck = await loadStageCheckpoint(run, ctx.finished.pretrain);
      assignVariables(
        namedVariables({ encoder, head }),
        ck.variables,
        ck.meta.stage,
      );
    } else {
      const index = samplePatches(trainCases, {
        targets: targetIds,
        perTarget: config.pretrain.perTarget,
        patchSize: config.patchSize,
        seed: s.sample2,
        onWarning: warn,
      });
      const stream = new BatchStream(index, trainCases, {
        batchSize: config.pretrain.batchSize,
        views: config.views,
        seed: s.stream2,
        balance: config.pretrain.balance,
      });
      const spec = pretrainStage(
        config,
        encoder,
        head,
        stream,
        new Map(targetIds.map((t, i) => [t, i])),
      );
      try {
        await runStage(ctx, spec, resumeFor("pretrain"));
      } finally {
        spec.optimizer?.dispose();
      }
    }
    // Projections of held-out patches (Fig. 3).
    try {
      const index = samplePatches(evalCases.length ? evalCases : trainCases, {
        targets: targetIds,
        perTarget: 2,
        patchSize: config.patchSize,
        seed: s.embed,
        onWarning: () => {},
      });
      const stream = new BatchStream(
        index,
        evalCases.length ? evalCases : trainCases,
        {
          batchSize: 16,
          views: 1,
          seed: s.embed,
          balance: "target",
          augment: false,
        },
      );
      const points = await embedPatches(
        encoder,
        head,
        stream,
        Math.min(16, Math.ceil(index.records.length / 16)),
        {
          target: (id) =>
            data.targets.find((t) => t.id === id)?.name ?? String(id),
          domain: (i) => data.domains[i] ?? String(i),
        },
      );
      await run.writeJson("embeddings.json", { points });
    } catch (e) {
      warn(`no embeddings written: ${e instanceof Error ? e.message : e}`);
    }
    timings.pretrain = clock() - t0;

    // Stage 3.
    t0 = clock();
    segNet = buildSegNet(config, encoder, channels + 1, s.decoder);
    if (ctx.finished.segment) {
      const ck = await loadStageCheckpoint(run, ctx.finished.segment);
      assignVariables(
        namedVariables({ segment: segNet }),
        ck.variables,
        ck.meta.stage,
      );
    } else {
      const index = samplePatches(trainCases, {
        targets: targetIds,
        perTarget: config.segment.perTarget,
        patchSize: config.patchSize,
        seed: s.sample3,
        onWarning: warn,
      });
      const stream = new BatchStream(index, trainCases, {
        batchSize: config.segment.batchSize,
        views: 1,
        seed: s.stream3,
        balance: "target",
        augment: { crop: false, intensity: false, color: false },
      });
      const spec = segmentStage(config, segNet, stream);
      try {
        await runStage(ctx, spec, resumeFor("segment"));
      } finally {
        spec.optimizer?.dispose();
      }
    }
    timings.segment = clock() - t0;

    // Inference, label fusion, metrics.
    t0 = clock();
    const perCase: { image: string; metrics: CaseMetrics }[] = [];
    const labels = Object.fromEntries(data.targets.map((t) => [t.id, t.name]));
    const vocClasses = Object.keys(data.dataset.labels).length;
    const confusion = new Float64Array(vocClasses * vocClasses);
    const bar = new Progress("inference", data.evaluation.length, {
      mode: ctx.progress,
    });
    for (const c of data.evaluation) {
      const fused = await segmentVolume(segNet, c, attention.get(c.id)!, {
        ...config.inference,
        patchSize: config.patchSize,
        targets: targetIds,
      });
      await writePrediction(
        join(run.predictionDir, `${c.id}.nii.gz`),
        fused,
        c,
      );
      if (c.label) {
        if (data.voc) {
          // VOC: pixels labelled 255 are ignored by every metric.
          for (let i = 0; i < fused.length; i++) {
            if (c.label[i] === VOC_IGNORE) fused[i] = 0;
          }
          confusionMatrix(fused, c.label, {
            numClasses: vocClasses,
            into: confusion,
          });
        }
        perCase.push({
          image: c.entry.image,
          metrics: evaluateLabelMaps(fused, c.label, {
            dims: c.dims,
            spacing: c.spacing,
            labels,
          }),
        });
      }
      bar.tick();
    }
    bar.done();
    const metrics: MetricsSummary & { miou?: number } = summarizeMetrics(
      perCase,
    );
    if (data.voc) metrics.miou = meanIoUFromConfusion(confusion).miou;
    await run.writeJson("metrics.json", metrics);
    timings.inference = clock() - t0;
    print(
      `\nDice on ${perCase.length} evaluation case(s) (${data.split.source}):`,
    );
    print(formatMetricsTable(metrics));
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
    try {
      const report = await writeRunReport(out, { seed: config.seed });
      print(`report: ${report.index}`);
    } catch (e) {
      warn(`no report written: ${e instanceof Error ? e.message : e}`);
    }
    print(`run directory: ${out}`);
    return { runDir: out, metrics, timings, backend: chosen.name };
  } finally {
    segNet?.dispose();
    encoder.dispose();
    head.dispose();
  }
}

/** Writes a canonical label map in the original image's layout, header and affine. */
async function writePrediction(
  path: string,
  fused: LabelMap,
  c: PreparedCase,
): Promise<void> {
  const data = fromCanonical(fused, c.original);
  await writeNifti(path, { ...c.original, data }, {
    datatype: fused instanceof Int16Array ? "int16" : "uint8",
  });
}
