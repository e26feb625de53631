/**
 * A run's budgets, chosen once at its start: sized from the data
 * (`sizeBudgets`) and, with `budget.minutes`, fitted to step times
 * measured here on throwaway copies of each stage's network
 * (`fitMinutes`). The record goes to `config.json` as `budgets`, which
 * `--resume` reads back instead of measuring again.
 */
import * as tf from "@tensorflow/tfjs";
import {
  BatchStream,
  type LabelMap,
  samplePatches,
  type SamplingCase,
} from "../data/mod.ts";
import {
  BUDGET_RULE,
  BUDGET_STAGES,
  type BudgetStage,
  countDataSize,
  type DataSize,
  fitMinutes,
  sizeBudgets,
  type StageBudget,
  type StageBudgets,
  type StageRule,
  type StageTiming,
} from "./budget.ts";
import { applyBudgets } from "./budget.ts";
import type { PipelineConfig } from "./config.ts";
import {
  coarseLabels,
  coarseStage,
  downsampleSlices,
  paddingMultiple,
} from "./coarse.ts";
import type { PreparedData } from "./prepare.ts";
import { pretrainStage } from "./pretrain.ts";
import { foregroundProbability, segmentStage } from "./segment.ts";
import type { Stage1Plan } from "./stage1.ts";
import { windowStarts } from "./sliding_window.ts";
import type { StageSpec } from "./_stage_runner.ts";
import {
  buildCoarseNet,
  buildEncoder,
  buildHead,
  buildSegNet,
  coarseInChannels,
} from "./_models.ts";
import { roundUp } from "./_train_util.ts";

/** Step times measured at the start of a run. */
export interface MeasuredTimes {
  /** Mean ms per optimisation step of each stage that trains. */
  msPerStep: Partial<Record<BudgetStage, number>>;
  /** ms per slice of stage-1 prediction, both passes with `coarse.tta` (`null`: stage 1 does not train). */
  coarseForwardMsPerSlice: number | null;
  /** ms per window of a stage-3 forward pass (inference). */
  inferenceMsPerTile: number;
  /** Steps timed per stage, after one untimed warm-up step. */
  steps: number;
  /** Seconds the measuring took. */
  seconds: number;
}

/** What `config.json` records under `budgets`. */
export interface BudgetRecord {
  /** The counts the rule used. */
  data: DataSize;
  /** The rule. */
  rule: Readonly<Record<BudgetStage, Readonly<StageRule>>>;
  /** The budgets the stages ran with (and, when measured, ms per step). */
  stages: Record<BudgetStage, StageBudget & { msPerStep?: number }>;
  /** How `budget.minutes` set them (`null`: no wall-clock budget). */
  minutes: {
    minutes: number;
    fill: boolean;
    measured: MeasuredTimes;
    /** Steps per epoch over all of a stage's networks (cross-fit folds). */
    stepsPerEpoch: Record<BudgetStage, number>;
    /** Estimated seconds outside the training steps. */
    fixedSeconds: {
      elapsed: number;
      coarsePredict: number;
      inference: number;
      inferenceTiles: number;
      reserve: number;
      total: number;
    };
    /** The data-sized budgets before fitting. */
    dataSized: StageBudgets;
    factor: number | null;
    estimatedSeconds: number;
    warning: string | null;
  } | null;
}

/** Runs `steps` + 1 steps of `spec` and returns the mean ms of all but the first. */
async function timeSteps(spec: StageSpec, steps: number): Promise<number> {
  let ms = 0;
  for (let i = 0; i <= steps; i++) {
    const t0 = performance.now();
    await spec.step(Math.floor(i / spec.stepsPerEpoch), i);
    if (i > 0) ms += performance.now() - t0;
  }
  return ms / steps;
}

/** Mean ms of `steps` forward passes after one warm-up. */
async function timeForward(
  run: () => tf.Tensor,
  steps: number,
): Promise<number> {
  let ms = 0;
  for (let i = 0; i <= steps; i++) {
    const t0 = performance.now();
    const out = run();
    await out.data();
    out.dispose();
    if (i > 0) ms += performance.now() - t0;
  }
  return ms / steps;
}

/**
 * Times a few training steps of each stage that trains, and the forward
 * passes of stage-1 prediction and inference, on throwaway networks (so
 * the run's own weights and random streams are untouched), with the
 * training truth standing in for the attention.
 */
export async function measureStepTimes(
  config: PipelineConfig,
  data: PreparedData,
  options: { plan: Stage1Plan; seed: number; steps?: number },
): Promise<MeasuredTimes> {
  const { plan, seed, steps = 3 } = options;
  const t0 = performance.now();
  const targets = data.targets.map((t) => t.id);
  const maxLabel = Math.max(...targets);
  const channels = data.train[0]!.channels;
  const msPerStep: Partial<Record<BudgetStage, number>> = {};
  let coarseForwardMsPerSlice: number | null = null;
  if (config.coarse.masks === null && config.coarse.epochs !== 0) {
    const net = buildCoarseNet(config, channels, maxLabel + 1, seed);
    const reduced = data.train.map((c) =>
      downsampleSlices(c, config.coarse.downsample)
    );
    const spec = coarseStage(config, net, {
      cases: reduced,
      nClasses: maxLabel + 1,
      seed,
      flip: plan.flip,
      jitter: plan.jitter,
    });
    try {
      msPerStep.coarse = await timeSteps(spec, steps);
      const m = paddingMultiple(config);
      const c = reduced[0]!;
      const b = config.coarse.batchSize;
      const shape: [number, number, number, number] = [
        b,
        roundUp(c.dims[1], m),
        roundUp(c.dims[0], m),
        coarseInChannels(config, channels),
      ];
      coarseForwardMsPerSlice = await timeForward(
        () =>
          tf.tidy(() => coarseLabels(net, tf.zeros(shape), { tta: plan.tta })),
        steps,
      ) / b;
    } finally {
      spec.optimizer?.dispose();
      net.dispose();
    }
  }
  const cases: SamplingCase[] = data.train.map((c) => ({
    id: c.id,
    domain: c.domain,
    dims: c.dims,
    channels: c.channels,
    image: c.image,
    attention: c.label as LabelMap,
    label: c.label as LabelMap,
  }));
  const index = (perTarget: number) =>
    samplePatches(cases, {
      targets,
      perTarget,
      patchSize: config.patchSize,
      seed,
      onWarning: () => {},
    });
  const encoder = buildEncoder(config, channels + 1, seed);
  const head = buildHead(config, encoder.featureChannels, targets.length, seed);
  const net = buildSegNet(config, encoder, {
    inChannels: channels + 1,
    nTargets: targets.length,
    seed,
  });
  try {
    const p = config.pretrain;
    if (p.method !== "none" && p.epochs !== 0) {
      const stream = new BatchStream(index(p.perTarget), cases, {
        batchSize: p.batchSize,
        views: config.views,
        seed,
        balance: p.balance,
        groupSize: p.groupSize,
        augment: { crop: { scale: p.cropScale } },
      });
      const spec = pretrainStage(config, encoder, {
        head,
        stream,
        targetIndex: new Map(targets.map((t, i) => [t, i])),
      });
      try {
        msPerStep.pretrain = await timeSteps(spec, steps);
      } finally {
        spec.optimizer?.dispose();
      }
    }
    const stream = new BatchStream(index(config.segment.perTarget), cases, {
      batchSize: config.segment.batchSize,
      views: 1,
      seed,
      balance: "target",
      augment: { crop: false, intensity: false, color: false },
    });
    const spec = segmentStage(config, net, { stream, targets });
    try {
      if (config.segment.epochs !== 0) {
        msPerStep.segment = await timeSteps(spec, steps);
      }
    } finally {
      spec.optimizer?.dispose();
    }
    const b = config.inference.batchSize;
    const ps = config.patchSize;
    const inferenceMsPerTile = await timeForward(
      () =>
        tf.tidy(() =>
          foregroundProbability(
            net,
            tf.zeros([b, ps, ps, channels + 1]) as tf.Tensor4D,
            { classes: new Array(b).fill(1) },
          )
        ),
      steps,
    ) / b;
    return {
      msPerStep,
      coarseForwardMsPerSlice,
      inferenceMsPerTile,
      steps,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    net.dispose(); // and the encoder it shares
    head.dispose();
  }
}

/**
 * Sliding windows inference would tile on the evaluation slices, estimated
 * from the training truth: each (target, slice) box grown by the attention
 * growth and the fusion margin, tiled as `slidingWindowInference` does,
 * per training slice, times the evaluation slices.
 */
export function estimateInferenceTiles(
  config: PipelineConfig,
  data: PreparedData,
): number {
  const p = config.patchSize;
  const grow = config.coarse.dilate + config.inference.margin;
  const ids = new Set(data.targets.map((t) => t.id));
  let tiles = 0, slices = 0;
  for (const c of data.train) {
    const [nx, ny, nz] = c.dims;
    slices += nz;
    if (!c.label) continue;
    for (let z = 0; z < nz; z++) {
      const box = new Map<number, [number, number, number, number]>();
      for (let y = 0; y < ny; y++) {
        for (let x = 0; x < nx; x++) {
          const v = c.label[(z * ny + y) * nx + x]!;
          if (!ids.has(v)) continue;
          const b = box.get(v);
          if (!b) box.set(v, [y, y + 1, x, x + 1]);
          else {
            b[0] = Math.min(b[0], y);
            b[1] = Math.max(b[1], y + 1);
            b[2] = Math.min(b[2], x);
            b[3] = Math.max(b[3], x + 1);
          }
        }
      }
      for (const [y0, y1, x0, x1] of box.values()) {
        const along = { size: p, overlap: config.inference.overlap };
        tiles += windowStarts(
          Math.max(0, y0 - grow),
          Math.min(ny, y1 + grow),
          along,
        ).length * windowStarts(
          Math.max(0, x0 - grow),
          Math.min(nx, x1 + grow),
          along,
        ).length;
      }
    }
  }
  const evalSlices = data.evaluation.reduce((a, c) => a + c.dims[2], 0);
  return slices ? Math.ceil(tiles / slices * evalSlices) : 0;
}

/**
 * Steps per epoch over all of each stage's networks: stage 1 trains the
 * final network and, under cross-fitting, one per fold on the other folds.
 */
export function networkStepsPerEpoch(
  config: PipelineConfig,
  data: PreparedData,
  options: { plan: Stage1Plan; budgets: StageBudgets },
): Record<BudgetStage, number> {
  const { plan, budgets } = options;
  const b = config.coarse.batchSize;
  const slices = (cases: PreparedData["train"]) =>
    cases.reduce((a, c) => a + c.dims[2], 0);
  let coarse = budgets.coarse.stepsPerEpoch;
  const folds = plan.folds;
  if (folds) {
    for (let f = 0; f < config.coarse.folds; f++) {
      coarse += Math.ceil(
        slices(data.train.filter((c) => folds[c.id] !== f)) / b,
      );
    }
  }
  return {
    coarse,
    pretrain: budgets.pretrain.stepsPerEpoch,
    segment: budgets.segment.stepsPerEpoch,
  };
}

/** Share of `budget.minutes` kept back for costs the measuring cannot see. */
export const RESERVE = 0.1;

/** Options of {@linkcode chooseBudgets}. */
export interface ChooseBudgetsOptions {
  /** Stage 1's plan (its cross-fit folds). */
  plan: Stage1Plan;
  /** Seed of the throwaway networks. */
  seed: number;
  /** Seconds the run has spent so far (backend, data). */
  elapsed: () => number;
  /** Measures step times (replaced in tests). @default {measureStepTimes} */
  measure?: typeof measureStepTimes;
}

/**
 * Sizes the budgets from the data and, with `budget.minutes`, measures the
 * step times and fits the run into them.
 *
 * @returns The record for `config.json`.
 */
export async function chooseBudgets(
  config: PipelineConfig,
  data: PreparedData,
  options: ChooseBudgetsOptions,
): Promise<BudgetRecord> {
  const { plan, seed, elapsed, measure = measureStepTimes } = options;
  const size = countDataSize(data.train, {
    targets: data.targets.map((t) => t.id),
  });
  const sized = sizeBudgets(config, size);
  const record: BudgetRecord = {
    data: size,
    rule: BUDGET_RULE,
    stages: structuredClone(sized),
    minutes: null,
  };
  const minutes = config.budget.minutes;
  if (minutes === null) return record;
  const measured = await measure(applyBudgets(config, sized), data, {
    plan,
    seed,
  });
  const spe = networkStepsPerEpoch(config, data, { plan, budgets: sized });
  const timing: Partial<Record<BudgetStage, StageTiming>> = {};
  for (const s of BUDGET_STAGES) {
    const ms = measured.msPerStep[s];
    if (ms !== undefined) timing[s] = { msPerStep: ms, stepsPerEpoch: spe[s] };
  }
  const slices = [...data.train, ...data.evaluation]
    .reduce((a, c) => a + c.dims[2], 0);
  const coarsePredict = (measured.coarseForwardMsPerSlice ?? 0) * slices /
    1000;
  const inferenceTiles = estimateInferenceTiles(config, data);
  const inference = inferenceTiles * measured.inferenceMsPerTile / 1000;
  const spent = elapsed();
  // What the measuring cannot see: checkpoints and log lines, the stage-2
  // probe, the report, and other load on the machine.
  const reserve = RESERVE * minutes * 60;
  const fixedSeconds = {
    elapsed: spent,
    coarsePredict,
    inference,
    inferenceTiles,
    reserve,
    total: spent + coarsePredict + inference + reserve,
  };
  const fit = fitMinutes(sized, {
    minutes,
    fill: config.budget.fill,
    fixedSeconds: fixedSeconds.total,
    timing,
  });
  record.stages = structuredClone(fit.budgets);
  for (const s of BUDGET_STAGES) {
    const ms = measured.msPerStep[s];
    if (ms !== undefined) record.stages[s].msPerStep = ms;
  }
  record.minutes = {
    minutes,
    fill: config.budget.fill,
    measured,
    stepsPerEpoch: spe,
    fixedSeconds,
    dataSized: sized,
    factor: fit.factor,
    estimatedSeconds: fit.seconds.total,
    warning: fit.warning,
  };
  return record;
}

/**
 * The budget record of a saved `config.json`, when it has a usable one.
 *
 * @param saved The saved object.
 * @returns The record, or `null` (runs from before budgets were recorded).
 */
export function recordedBudgets(
  saved: Record<string, unknown>,
): BudgetRecord | null {
  const r = saved.budgets as BudgetRecord | undefined;
  if (typeof r !== "object" || r === null || typeof r.stages !== "object") {
    return null;
  }
  for (const s of BUDGET_STAGES) {
    const b = r.stages[s];
    if (
      !b || !Number.isInteger(b.epochs) || !Number.isInteger(b.stepsPerEpoch)
    ) {
      return null;
    }
  }
  return r;
}

/**
 * The budgets a run trains with: on resume, those its `config.json`
 * recorded (no measuring: the resumed stages keep their epochs and
 * schedules); else chosen now by {@linkcode chooseBudgets}.
 *
 * @returns The record and whether it was read back.
 */
export async function runBudgets(
  config: PipelineConfig,
  data: PreparedData,
  options: ChooseBudgetsOptions & { saved: Record<string, unknown> | null },
): Promise<{ record: BudgetRecord; recorded: boolean }> {
  const recorded = options.saved ? recordedBudgets(options.saved) : null;
  if (recorded) return { record: recorded, recorded: true };
  return {
    record: await chooseBudgets(config, data, options),
    recorded: false,
  };
}

/** One line per stage for the run's output. */
export function describeBudgets(record: BudgetRecord): string[] {
  const d = record.data;
  const lines = [
    `budget: ${d.trainingSlices} training slices, ${d.targets} targets, ${d.targetSlices} (target, slice) pairs`,
  ];
  for (const s of BUDGET_STAGES) {
    const b = record.stages[s];
    const ms = b.msPerStep !== undefined
      ? `, ${b.msPerStep.toFixed(0)} ms/step`
      : "";
    lines.push(
      `  ${s}: ${b.epochs} epochs × ${b.stepsPerEpoch} steps (${b.setBy}${ms}): ${b.why}`,
    );
  }
  const m = record.minutes;
  if (m) {
    lines.push(
      `  --minutes ${m.minutes}: about ${
        (m.estimatedSeconds / 60).toFixed(1)
      } min estimated (${
        (m.fixedSeconds.total / 60).toFixed(1)
      } outside training steps)`,
    );
  }
  return lines;
}
