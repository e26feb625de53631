/**
 * Training budgets that follow the data. Each stage whose epochs are
 * `"auto"` gets its length from the number of training slices (stage 1)
 * or (target, slice) patches (stages 2 and 3) by one explicit rule,
 * {@linkcode BUDGET_RULE} through {@linkcode sizeBudgets}; a wall-clock
 * budget (`--minutes`) then scales those stages to the step times measured
 * at the start of the run ({@linkcode fitMinutes}). Both are pure, so a run
 * records what they chose (and why) in `config.json`, and `--resume`
 * reuses it.
 *
 * @module
 */
import type { PipelineConfig } from "./config.ts";

/** The stages that train, in run order. */
export type BudgetStage = "coarse" | "pretrain" | "segment";

/** {@linkcode BudgetStage}s in run order. */
export const BUDGET_STAGES: readonly BudgetStage[] = Object.freeze(
  [
    "coarse",
    "pretrain",
    "segment",
  ] as const,
);

/** What the rule counts, from the training cases' labels. */
export interface DataSize {
  /** Training slices: axial slices of the training volumes, or 2D images. */
  trainingSlices: number;
  /** Target labels (background excluded). */
  targets: number;
  /**
   * (target, slice) pairs whose training truth contains the target: the
   * slices stages 2 and 3 cut patches around, one group per target.
   */
  targetSlices: number;
}

/** The rule of one stage: sample visits, clamped to a range of steps. */
export interface StageRule {
  /**
   * Visits per training sample: per training slice (stage 1, so this is
   * its epochs) or per patch centre (stages 2 and 3: `perTarget` centres
   * per (target, slice) pair).
   */
  visits: number;
  /** Fewest optimisation steps, however small the data. */
  minSteps: number;
  /** Most optimisation steps, however large the data. */
  maxSteps: number;
}

/**
 * The sizing rule. Steps = ⌈visits × samples / batch⌉, clamped to
 * `[minSteps, maxSteps]`, then rounded up to whole epochs (down when that
 * would pass `maxSteps`). The floors of stages 2 and 3 are the fixed counts
 * the `tiny` preset used before budgets were sized (on its 8-case phantom:
 * 4 × 100 pre-training steps, 20 × 50 decoder steps). Stage 1 visits each
 * training slice 40 times, at least 720 steps (the phantom's 40 epochs of
 * 18): at the former 10 visits its loss was still falling at the end on
 * the phantom and on Task104 digits, and with a cosine learning rate
 * (`coarse.schedule`) 30 visits raised the final coarse network's Dice on
 * held-out cases from 0.747 to 0.855 (phantom) and, on digits, from 0.720
 * to 0.880 (cases with the digit; seed 0, stage 1 alone). At 60 visits the
 * `tiny` coarse network of width 0.125 still under-fitted its training
 * slices (the brain atlas's deep grey: Dice 0.76 on its own training
 * cases), and the network twice as wide at 40 visits did better in less
 * time (phantom, seed 0: stage 1 0.893 against 0.862, 6.8 against 7.3
 * minutes); the `tiny` preset pays for stage 1 with two cross-fit folds
 * instead of three (`coarse.folds`). More slices or targets train longer,
 * up to the ceilings, which keep a default run on 2 cores within tens of
 * minutes.
 */
export const BUDGET_RULE: Readonly<Record<BudgetStage, Readonly<StageRule>>> =
  Object.freeze({
    coarse: Object.freeze({ visits: 40, minSteps: 720, maxSteps: 3000 }),
    pretrain: Object.freeze({ visits: 2, minSteps: 400, maxSteps: 3000 }),
    segment: Object.freeze({ visits: 5, minSteps: 1000, maxSteps: 5000 }),
  });

/** How a stage's budget was set. */
export type BudgetSource = "rule" | "config" | "minutes" | "off";

/** One stage's budget. */
export interface StageBudget {
  /** Epochs. */
  epochs: number;
  /** Steps per epoch (of the final network, for stage 1). */
  stepsPerEpoch: number;
  /** `epochs × stepsPerEpoch`: the length of the learning-rate schedule. */
  steps: number;
  /**
   * `rule` (`"auto"` epochs sized from the data), `config` (a number in
   * the config or `--set`), `minutes` (the rule's budget fitted to
   * `budget.minutes`) or `off` (the stage does not train).
   */
  setBy: BudgetSource;
  /** The numbers behind it, in words. */
  why: string;
}

/** A budget per stage. */
export type StageBudgets = Record<BudgetStage, StageBudget>;

/**
 * Counts the training slices and the (target, slice) pairs with truth.
 *
 * @param cases Training cases: `dims` `[nx, ny, nz]` and `[nz, ny, nx]` labels.
 * @param options The target label ids (other values, such as VOC's 255, are
 * not targets).
 * @returns The counts.
 *
 * @example
 * ```ts
 * import { countDataSize } from "@agcl/agcl/pipeline";
 * import assert from "node:assert/strict";
 *
 * // One 2×1×2 volume: slice 0 holds target 1, slice 1 holds 1 and 2.
 * const c = { dims: [2, 1, 2] as [number, number, number], label: new Uint8Array([1, 0, 1, 2]) };
 * assert.deepEqual(countDataSize([c], { targets: [1, 2] }), {
 *   trainingSlices: 2,
 *   targets: 2,
 *   targetSlices: 3,
 * });
 * ```
 */
export function countDataSize(
  cases: { dims: [number, number, number]; label?: ArrayLike<number> }[],
  options: { targets: number[] },
): DataSize {
  const ids = new Set(options.targets);
  let trainingSlices = 0, targetSlices = 0;
  const seen = new Set<number>();
  for (const c of cases) {
    const [nx, ny, nz] = c.dims;
    trainingSlices += nz;
    if (!c.label) continue;
    const plane = nx * ny;
    for (let z = 0; z < nz; z++) {
      seen.clear();
      for (let i = z * plane; i < (z + 1) * plane; i++) {
        const v = c.label[i]!;
        if (v > 0 && ids.has(v)) seen.add(v);
      }
      targetSlices += seen.size;
    }
  }
  return { trainingSlices, targets: ids.size, targetSlices };
}

function positive(v: number, arg: string, fn: string): void {
  if (!(Number.isFinite(v) && v > 0)) {
    throw new RangeError(
      `Cannot ${fn} as '${arg}' must be a finite number > 0: current value is ${v}`,
    );
  }
}

/** Epochs of `stepsPerEpoch` that reach `steps`, without passing `max`. */
function epochsFor(steps: number, stepsPerEpoch: number, max: number): number {
  const up = Math.ceil(steps / stepsPerEpoch);
  return up * stepsPerEpoch <= max
    ? up
    : Math.max(1, Math.floor(max / stepsPerEpoch));
}

function sized(
  stage: BudgetStage,
  options: {
    epochs: number | "auto";
    stepsPerEpoch: number;
    samples: number;
    batchSize: number;
    unit: string;
    rule: Readonly<StageRule>;
  },
): StageBudget {
  const { epochs, stepsPerEpoch: spe, samples, batchSize, unit, rule } =
    options;
  if (epochs !== "auto") {
    return {
      epochs,
      stepsPerEpoch: spe,
      steps: epochs * spe,
      setBy: "config",
      why: `${stage}.epochs = ${epochs} in the config`,
    };
  }
  const want = Math.ceil(rule.visits * samples / batchSize);
  const steps = Math.min(rule.maxSteps, Math.max(rule.minSteps, want));
  const e = epochsFor(steps, spe, rule.maxSteps);
  return {
    epochs: e,
    stepsPerEpoch: spe,
    steps: e * spe,
    setBy: "rule",
    why:
      `${rule.visits} visits × ${samples} ${unit} / batch ${batchSize} = ${want} steps, within [${rule.minSteps}, ${rule.maxSteps}]: ${e} epochs of ${spe} steps`,
  };
}

/**
 * Sizes each stage's budget from the data: a stage whose epochs are
 * `"auto"` follows {@linkcode BUDGET_RULE} (stage 1 over training slices,
 * stages 2 and 3 over patch centres = (target, slice) pairs × `perTarget`);
 * a number in the config is kept. A `pretrainStage` or `segmentStage` with
 * `stepsPerEpoch` 0 (one pass over the patch index) gets the pass its
 * patch centres make. Stage 1 with `coarse.masks`, and stage 2 with method
 * `none`, do not train (`off`, 0 epochs).
 *
 * @param config The run's config.
 * @param size The counts of {@linkcode countDataSize}.
 * @param options A rule other than {@linkcode BUDGET_RULE}.
 * @returns A budget per stage.
 * @throws {RangeError} When the data hold no training slice.
 *
 * @example The embedded phantom
 * ```ts
 * import { PRESETS, sizeBudgets } from "@agcl/agcl/pipeline";
 * import assert from "node:assert/strict";
 *
 * // 6 training cases of 12 slices, 9 organs in 360 (organ, slice) pairs.
 * const b = sizeBudgets(PRESETS.tiny, { trainingSlices: 72, targets: 9, targetSlices: 360 });
 * assert.deepEqual([b.coarse.epochs, b.coarse.steps], [40, 720]);
 * assert.deepEqual([b.pretrain.epochs, b.pretrain.stepsPerEpoch], [4, 100]);
 * assert.deepEqual([b.segment.epochs, b.segment.stepsPerEpoch], [20, 50]);
 * ```
 */
export function sizeBudgets(
  config: PipelineConfig,
  size: DataSize,
  options: { rule?: Readonly<Record<BudgetStage, Readonly<StageRule>>> } = {},
): StageBudgets {
  const { rule = BUDGET_RULE } = options;
  const fn = "size budgets";
  positive(size.trainingSlices, "trainingSlices", fn);
  const { coarse: c, pretrain: p } = config;
  const coarseSpe = Math.ceil(size.trainingSlices / c.batchSize);
  const coarse: StageBudget = c.masks !== null
    ? {
      epochs: 0,
      stepsPerEpoch: coarseSpe,
      steps: 0,
      setBy: "off",
      why: "coarse.masks given: stage 1 does not train",
    }
    : sized("coarse", {
      epochs: c.epochs,
      stepsPerEpoch: coarseSpe,
      samples: size.trainingSlices,
      batchSize: c.batchSize,
      unit: "training slices",
      rule: rule.coarse,
    });
  const patches = (stage: "pretrain" | "segment") => {
    const cfg = config[stage];
    const samples = Math.max(1, size.targetSlices) * cfg.perTarget;
    return sized(stage, {
      epochs: cfg.epochs,
      stepsPerEpoch: cfg.stepsPerEpoch ||
        Math.ceil(samples / cfg.batchSize),
      samples,
      batchSize: cfg.batchSize,
      unit:
        `patch centres (${size.targetSlices} (target, slice) pairs × ${cfg.perTarget})`,
      rule: rule[stage],
    });
  };
  const pretrain: StageBudget = p.method === "none"
    ? {
      epochs: 0,
      stepsPerEpoch: p.stepsPerEpoch,
      steps: 0,
      setBy: "off",
      why: 'pretrain.method "none": stage 2 does not train',
    }
    : patches("pretrain");
  return { coarse, pretrain, segment: patches("segment") };
}

/**
 * The config with each stage's budget in place of `"auto"`: the numbers
 * the stages run with.
 *
 * @param config The run's config (not modified).
 * @param budgets From {@linkcode sizeBudgets} or {@linkcode fitMinutes}.
 * @returns A new config whose epochs are all numbers.
 */
export function applyBudgets(
  config: PipelineConfig,
  budgets: StageBudgets,
): PipelineConfig {
  const out = structuredClone(config);
  out.coarse.epochs = budgets.coarse.epochs;
  for (const stage of ["pretrain", "segment"] as const) {
    const b = budgets[stage];
    out[stage].epochs = b.epochs;
    if (b.setBy === "rule" || b.setBy === "minutes") {
      out[stage].stepsPerEpoch = b.stepsPerEpoch;
    }
  }
  return out;
}

/** A stage's measured cost, for {@linkcode fitMinutes}. */
export interface StageTiming {
  /** Milliseconds per optimisation step, measured. */
  msPerStep: number;
  /**
   * Optimisation steps per epoch over all the stage's networks (stage 1:
   * the cross-fit folds' and the final network's).
   */
  stepsPerEpoch: number;
}

/** Options of {@linkcode fitMinutes}. */
export interface FitMinutesOptions {
  /** The wall-clock budget of the whole run, in minutes. */
  minutes: number;
  /** Seconds the run spends outside the training steps (estimated). */
  fixedSeconds: number;
  /** Measured cost per stage (stages that are `off` may be absent). */
  timing: Partial<Record<BudgetStage, StageTiming>>;
  /** Scale `rule` stages above their data-sized budget too. @default {false} */
  fill?: boolean;
  /**
   * Share of each `rule` stage's data-sized epochs below which it is not
   * shortened (at least one epoch). @default {0.25}
   */
  floor?: number;
}

/** What {@linkcode fitMinutes} chose. */
export interface MinutesFit {
  /** Budgets: `rule` stages refitted (`setBy: "minutes"`), others as given. */
  budgets: StageBudgets;
  /**
   * Time the minutes leave for the `rule` stages over the time their
   * data-sized budgets need (before the floor, the `fill` cap and rounding
   * to epochs); `null` when no stage follows the rule.
   */
  factor: number | null;
  /** Estimated seconds: fixed, each stage, and the whole run. */
  seconds: {
    fixed: number;
    stages: Record<BudgetStage, number>;
    total: number;
  };
  /** The floor or the stages set in the config need more than the minutes. */
  tooSmall: boolean;
  /** Why the run will not fit, when it will not. */
  warning: string | null;
}

/**
 * Fits the run into `minutes` of wall time: the time left after the fixed
 * costs and the stages whose epochs the config sets is shared among the
 * `"auto"` (`rule`) stages in proportion to their data-sized time, each
 * getting ⌊epochs × factor⌋ epochs but at least `floor` of its data-sized
 * epochs, and never more than those unless `fill`; whole epochs still
 * left in the budget then go, one at a time, to the stage furthest below
 * its data-sized budget. Pure: the same measured times give the same
 * budgets.
 *
 * @param budgets Data-sized budgets from {@linkcode sizeBudgets}.
 * @param options Minutes, fixed seconds, measured step times, `fill`, `floor`.
 * @returns The fitted budgets, the factor, estimated seconds and a warning
 * when the minutes are too few to train sensibly.
 * @throws {RangeError} For minutes, step times or steps per epoch that are
 * not positive, or a floor outside (0, 1].
 *
 * @example Half the time the data-sized budget needs
 * ```ts
 * import { fitMinutes, PRESETS, sizeBudgets } from "@agcl/agcl/pipeline";
 * import assert from "node:assert/strict";
 *
 * const sized = sizeBudgets(PRESETS.tiny, { trainingSlices: 72, targets: 9, targetSlices: 360 });
 * // 720 + 400 + 1000 steps at 100 ms = 212 s; 60 s fixed; 3 min in all.
 * const step = { msPerStep: 100 };
 * const fit = fitMinutes(sized, {
 *   minutes: 3,
 *   fixedSeconds: 60,
 *   timing: {
 *     coarse: { ...step, stepsPerEpoch: 18 },
 *     pretrain: { ...step, stepsPerEpoch: 100 },
 *     segment: { ...step, stepsPerEpoch: 50 },
 *   },
 * });
 * assert.ok(fit.seconds.total <= 180);
 * assert.equal(fit.budgets.segment.setBy, "minutes");
 * assert.ok(fit.budgets.segment.epochs < 20);
 * ```
 */
export function fitMinutes(
  budgets: StageBudgets,
  options: FitMinutesOptions,
): MinutesFit {
  const { minutes, fixedSeconds, timing, fill = false, floor = 0.25 } = options;
  const fn = "fit the run into its minutes";
  positive(minutes, "minutes", fn);
  if (!(Number.isFinite(fixedSeconds) && fixedSeconds >= 0)) {
    throw new RangeError(
      `Cannot ${fn} as 'fixedSeconds' must be a finite number >= 0: current value is ${fixedSeconds}`,
    );
  }
  if (!(floor > 0 && floor <= 1)) {
    throw new RangeError(
      `Cannot ${fn} as 'floor' must be in (0, 1]: current value is ${floor}`,
    );
  }
  const trains = BUDGET_STAGES.filter((s) => budgets[s].epochs > 0);
  for (const s of trains) {
    const t = timing[s];
    if (!t) {
      throw new RangeError(
        `Cannot ${fn} as 'timing.${s}' is missing: the stage trains ${
          budgets[s].epochs
        } epochs`,
      );
    }
    positive(t.msPerStep, `timing.${s}.msPerStep`, fn);
    positive(t.stepsPerEpoch, `timing.${s}.stepsPerEpoch`, fn);
  }
  const epochSeconds = (s: BudgetStage) =>
    timing[s] ? timing[s].stepsPerEpoch * timing[s].msPerStep / 1000 : 0;
  const scalable = trains.filter((s) => budgets[s].setBy === "rule");
  const setSeconds = trains.filter((s) => !scalable.includes(s))
    .reduce((a, s) => a + budgets[s].epochs * epochSeconds(s), 0);
  const available = minutes * 60 - fixedSeconds - setSeconds;
  const sizedSeconds = scalable.reduce(
    (a, s) => a + budgets[s].epochs * epochSeconds(s),
    0,
  );
  const factor = scalable.length ? available / sizedSeconds : null;
  const f = factor === null ? 1 : Math.min(fill ? Infinity : 1, factor);
  const epochs = {} as Record<BudgetStage, number>;
  const lowest = {} as Record<BudgetStage, number>;
  const cap = {} as Record<BudgetStage, number>;
  for (const s of BUDGET_STAGES) {
    const e = budgets[s].epochs;
    lowest[s] = Math.max(1, Math.ceil(floor * e));
    cap[s] = fill ? Math.floor(e * f) + BUDGET_STAGES.length : e;
    epochs[s] = scalable.includes(s)
      ? Math.min(cap[s], Math.max(lowest[s], Math.floor(e * f)))
      : e;
  }
  const spent = () =>
    BUDGET_STAGES.reduce((a, s) => a + epochs[s] * epochSeconds(s), 0);
  // Whole epochs the rounding left over, to the stage furthest behind.
  for (;;) {
    const left = minutes * 60 - fixedSeconds - spent();
    const next = scalable
      .filter((s) => epochs[s] < cap[s] && epochSeconds(s) <= left)
      .sort((a, b) =>
        epochs[a] / budgets[a].epochs - epochs[b] / budgets[b].epochs
      )[0];
    if (next === undefined) break;
    epochs[next]++;
  }
  const out = structuredClone(budgets);
  for (const s of scalable) {
    const b = out[s];
    if (epochs[s] === b.epochs) continue;
    b.why = `${b.why}; --minutes ${minutes}: ${epochs[s]} epochs (${
      Math.round(100 * epochs[s] / b.epochs)
    }% of ${b.epochs})`;
    b.epochs = epochs[s];
    b.steps = b.epochs * b.stepsPerEpoch;
    b.setBy = "minutes";
  }
  const stages = {} as Record<BudgetStage, number>;
  for (const s of BUDGET_STAGES) stages[s] = epochs[s] * epochSeconds(s);
  const total = fixedSeconds + BUDGET_STAGES.reduce((a, s) => a + stages[s], 0);
  const tooSmall = total > minutes * 60 + 1e-9;
  const min = (sec: number) => (sec / 60).toFixed(1);
  const warning = !tooSmall
    ? null
    : scalable.length === 0
    ? `--minutes ${minutes} is less than the run needs: every stage's epochs are set in the config, which --minutes does not change; expect about ${
      min(total)
    } minutes`
    : `--minutes ${minutes} is too small to train sensibly: about ${
      min(fixedSeconds + setSeconds)
    } minutes go to data, inference and the stages set in the config, and the "auto" stages need about ${
      min(total - fixedSeconds - setSeconds)
    } more at their floor (${
      Math.round(floor * 100)
    }% of their data-sized epochs); expect about ${
      min(total)
    } minutes, or raise --minutes`;
  return {
    budgets: out,
    factor,
    seconds: { fixed: fixedSeconds, stages, total },
    tooSmall,
    warning,
  };
}
