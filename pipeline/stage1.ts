/**
 * Stage 1 as a product: the coarse label map and the grown attention of
 * every case, with the attention of the training cases built so that it
 * carries the same kind of errors as at inference (cross-fitted by
 * default), or read from given coarse masks.
 *
 * @module
 */
import type { LabelMap } from "../data/mod.ts";
import { VOC_IGNORE } from "../data/mod.ts";
import { Prng } from "../random/prng.ts";
import {
  growLabels,
  keepLargestComponents,
  onePieceLabels,
} from "./attention.ts";
import {
  coarseStage,
  downsampleSlices,
  paddingMultiple,
  predictCoarse,
  resolveCoarseFlip,
  resolveCoarseTta,
  resolveJitter,
} from "./coarse.ts";
import type { PipelineConfig } from "./config.ts";
import type { PreparedCase, PreparedData } from "./prepare.ts";
import { Progress } from "./progress.ts";
import { type StageContext, trainOrRestore } from "./_stage_runner.ts";
import { buildCoarseNet, type DeepLab, namedVariables } from "./_models.ts";
import { readCaseLabels } from "./_label_io.ts";
import { coarseValidator } from "./validation.ts";

/** How the training cases' attention was made. */
export type TrainAttentionSource = "crossfit" | "predicted" | "union" | "given";

/** What stage 1 hands on. */
export interface Stage1Product {
  /** Every case's coarse label map (before growth), by case id. */
  coarse: Map<string, LabelMap>;
  /** Every case's attention: the coarse map grown by `coarse.dilate`. */
  attention: Map<string, LabelMap>;
  /** How the training cases' attention was made (`crossfit` resolved). */
  trainSource: TrainAttentionSource;
  /** The fold of each training case under `crossfit`. */
  folds?: Record<string, number>;
  /** Augmentation stage 1 chose (`auto` resolved). */
  flip: boolean;
  /** Intensity jitter stage 1 chose (`auto` resolved). */
  jitter: boolean;
}

/** Seeds of stage 1. */
export interface Stage1Seeds {
  /** Weights of the coarse network(s). */
  init: number;
  /** Slice order and augmentation. */
  shuffle: number;
}

/**
 * Splits cases into `k` folds for cross-fitting, stratified by domain:
 * each domain's cases are shuffled and dealt round-robin, continuing where
 * the previous domain stopped, so fold sizes differ by at most one.
 *
 * @param cases Case ids and domains.
 * @param options The number of `folds` and the shuffle `seed`.
 * @returns The fold of each case, or a reason why the split would let a
 * fold's network predict a domain it never trained on.
 *
 * @example
 * ```ts
 * import { crossfitFolds } from "@agcl/agcl/pipeline";
 * import assert from "node:assert/strict";
 *
 * const split = crossfitFolds([
 *   { id: "a", domain: 0 }, { id: "b", domain: 0 },
 *   { id: "c", domain: 1 }, { id: "d", domain: 1 },
 * ], { folds: 2, seed: 0 });
 * assert.ok("folds" in split);
 * assert.equal(new Set(Object.values(split.folds)).size, 2);
 * ```
 */
export function crossfitFolds(
  cases: { id: string; domain: number }[],
  options: { folds: number; seed: number },
): { folds: Record<string, number> } | { reason: string } {
  const { folds: k, seed } = options;
  if (cases.length < k) {
    return {
      reason: `${cases.length} training case(s) cannot fill ${k} folds`,
    };
  }
  const byDomain = new Map<number, string[]>();
  for (const c of cases) {
    const list = byDomain.get(c.domain) ?? [];
    list.push(c.id);
    byDomain.set(c.domain, list);
  }
  const lonely = [...byDomain].filter(([, ids]) => ids.length < 2);
  if (lonely.length > 0) {
    return {
      reason: `domain(s) ${
        lonely.map(([d, ids]) => `${d} (${ids[0]})`).join(", ")
      } have a single training case, which no other fold could predict from its own domain`,
    };
  }
  const prng = new Prng(seed);
  const folds: Record<string, number> = {};
  let next = 0;
  for (const d of [...byDomain.keys()].sort((a, b) => a - b)) {
    for (const id of prng.shuffle(byDomain.get(d)!.slice())) {
      folds[id] = next;
      next = (next + 1) % k;
    }
  }
  return { folds };
}

/** Fills `map`'s background voxels with `truth`'s labels, in place. */
function fillBackground(map: LabelMap, truth: LabelMap): void {
  for (let i = 0; i < map.length; i++) {
    if (map[i] === 0 && truth[i] !== VOC_IGNORE) map[i] = truth[i]!;
  }
}

/** Stage 1's choices, made before it runs (recorded in `config.json`). */
export interface Stage1Plan {
  /** Mirroring of training slices (`coarse.flip` resolved). */
  flip: boolean;
  /** Test-time flip of every stage-1 prediction (`coarse.tta` resolved). */
  tta: boolean;
  /** Intensity jitter (`coarse.jitter` resolved). */
  jitter: boolean;
  /** How the training cases' attention is made (`crossfit` resolved). */
  trainSource: TrainAttentionSource;
  /** The fold of each training case under `crossfit`. */
  folds?: Record<string, number>;
  /** Why `crossfit` fell back to `predicted`. */
  fallback?: string;
  /**
   * Targets whose predicted maps keep only their largest 3D component: those
   * whose truth is one piece in every training case ({@linkcode onePieceLabels}).
   */
  largestComponent: readonly number[];
}

/**
 * Resolves stage 1's `auto` settings, cross-fit folds and one-piece targets
 * for the data.
 *
 * @param config The run's config.
 * @param data The prepared cases.
 * @param options The fold shuffle `seed`.
 * @returns The plan.
 */
export function planStage1(
  config: PipelineConfig,
  data: PreparedData,
  options: { seed: number },
): Stage1Plan {
  const flip = resolveCoarseFlip(config.coarse.flip, {
    labelNames: data.targets.map((t) => t.name),
    cases: data.train,
  });
  const plan: Stage1Plan = {
    flip,
    // Given coarse masks are read, never predicted.
    tta: config.coarse.masks === null &&
      resolveCoarseTta(config.coarse.tta, flip),
    jitter: resolveJitter(config.coarse.jitter, data.intensity),
    trainSource: config.coarse.masks !== null
      ? "given"
      : config.coarse.trainAttention,
    largestComponent: config.coarse.masks !== null
      ? []
      : onePieceLabels(data.train, {
        targets: data.targets.map((t) => t.id),
      }),
  };
  if (plan.trainSource === "crossfit") {
    const split = crossfitFolds(data.train, {
      folds: config.coarse.folds,
      seed: options.seed,
    });
    if ("reason" in split) {
      plan.trainSource = "predicted";
      plan.fallback =
        `coarse.trainAttention "crossfit" falls back to "predicted" (in-sample, so better than at inference): ${split.reason}`;
    } else {
      plan.folds = split.folds;
    }
  }
  return plan;
}

/**
 * Runs (or restores) stage 1 and returns every case's coarse map and
 * attention. With `coarse.masks` the maps are read from that folder. Else
 * the coarse network is trained on all training cases and predicts the
 * evaluation cases; the training cases get, by `coarse.trainAttention`:
 * out-of-fold predictions of `coarse.folds` networks each trained without
 * their fold (`crossfit`), the final network's own predictions
 * (`predicted`), or those with the truth filled in (`union`). Every
 * predicted map keeps only the largest 3D component of each one-piece
 * target (`plan.largestComponent`), as nnU-Net's post-processing. The final
 * network's validation Dice on a few slices of the labelled evaluation
 * cases goes into `log.jsonl` at each epoch end.
 *
 * @param ctx Run directory, progress, finished stages, resume point.
 * @param config The run's config.
 * @param options The prepared cases, the plan from {@linkcode planStage1} and the seeds.
 * @returns The product.
 */
export async function runStage1(
  ctx: StageContext,
  config: PipelineConfig,
  options: { data: PreparedData; plan: Stage1Plan; seeds: Stage1Seeds },
): Promise<Stage1Product> {
  const { data, plan, seeds } = options;
  const { flip, jitter, trainSource, folds } = plan;
  const all = [...data.train, ...data.evaluation];
  const coarse = new Map<string, LabelMap>();
  const grow = () =>
    new Map(
      all.map((c) => [
        c.id,
        growLabels(coarse.get(c.id)!, c.dims, {
          radius: config.coarse.dilate,
        }),
      ]),
    );
  if (config.coarse.masks !== null) {
    for (const c of all) {
      coarse.set(c.id, await readCaseLabels(config.coarse.masks, c));
    }
    return { coarse, attention: grow(), trainSource: "given", flip, jitter };
  }
  const maxLabel = Math.max(...data.targets.map((t) => t.id));
  const channels = data.train[0]!.channels;
  // The slices the network trains and is watched on (`coarse.downsample`),
  // each case reduced once.
  const reduced = new Map<string, PreparedCase>();
  const reduce = (c: PreparedCase): PreparedCase => {
    let r = reduced.get(c.id);
    if (!r) {
      r = downsampleSlices(c, config.coarse.downsample);
      reduced.set(c.id, r);
    }
    return r;
  };
  const predictInto = async (net: DeepLab, cases: PreparedCase[]) => {
    const bar = new Progress("coarse attention", cases.length, {
      mode: ctx.progress,
    });
    for (const c of cases) {
      const map = await predictCoarse(net, c, {
        multiple: paddingMultiple(config),
        batchSize: config.coarse.batchSize,
        maxLabel,
        tta: plan.tta,
        context: config.coarse.context,
        downsample: config.coarse.downsample,
      });
      coarse.set(
        c.id,
        plan.largestComponent.length > 0
          ? keepLargestComponents(map, c.dims, {
            labels: plan.largestComponent,
          })
          : map,
      );
      bar.tick();
    }
    bar.done();
  };
  const train = async (
    stage: "coarse" | `coarse-fold${number}`,
    cases: PreparedCase[],
    salt: number,
    predict: PreparedCase[],
  ) => {
    const net = buildCoarseNet(
      config,
      channels,
      maxLabel + 1,
      (seeds.init + salt) >>> 0,
    );
    try {
      await trainOrRestore(
        ctx,
        stage,
        namedVariables({ "": net }),
        () => {
          const spec = coarseStage(config, net, {
            cases: cases.map(reduce),
            nClasses: maxLabel + 1,
            seed: (seeds.shuffle + salt) >>> 0,
            flip,
            jitter,
            stage,
          });
          // The final network is watched on the evaluation cases' slices.
          const check = stage === "coarse"
            ? coarseValidator(net, data.evaluation.map(reduce), {
              multiple: paddingMultiple(config),
              targets: data.targets,
              context: config.coarse.context,
            })
            : null;
          if (check) spec.validate = check;
          return spec;
        },
      );
      await predictInto(net, predict);
    } finally {
      net.dispose();
    }
  };
  if (folds) {
    for (let f = 0; f < config.coarse.folds; f++) {
      const held = data.train.filter((c) => folds[c.id] === f);
      const rest = data.train.filter((c) => folds[c.id] !== f);
      await train(`coarse-fold${f}`, rest, 7919 * (f + 1), held);
    }
  }
  await train(
    "coarse",
    data.train,
    0,
    folds ? data.evaluation : all,
  );
  if (trainSource === "union") {
    for (const c of data.train) {
      if (c.label) fillBackground(coarse.get(c.id)!, c.label);
    }
  }
  const product: Stage1Product = {
    coarse,
    attention: grow(),
    trainSource,
    flip,
    jitter,
  };
  if (folds) product.folds = folds;
  return product;
}
