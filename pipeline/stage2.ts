/**
 * Stage 2 as a product: the pre-trained encoder and head, the health of
 * the training (final loss against its chance level, the share of anchors
 * with a positive), and probes of what the encoder learnt (k-NN accuracy
 * and silhouette of held-out patches by target, domain and (domain,
 * target), beside the raw input patches).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  BatchStream,
  type PatchBatch,
  samplePatches,
  type SamplingCase,
} from "../data/mod.ts";
import { knnAccuracy, silhouetteScore } from "../metrics/separation.ts";
import type { PipelineConfig, PretrainMethod } from "./config.ts";
import { type EmbeddingPoint, pretrainStage } from "./pretrain.ts";
import type { RunDir } from "./run_dir.ts";
import { type StageContext, trainOrRestore } from "./_stage_runner.ts";
import {
  buildEncoder,
  buildHead,
  type Encoder,
  type Head,
  namedVariables,
} from "./_models.ts";
import { batchTensors } from "./_train_util.ts";

/** How stage 2's training went. */
export interface Stage2Health {
  /** The method. */
  method: PretrainMethod;
  /** Optimisation steps run. */
  steps: number;
  /** Mean loss over the first tenth of the steps (`null` without steps). */
  initialLoss: number | null;
  /** Mean loss over the last tenth of the steps (`null` without steps). */
  finalLoss: number | null;
  /**
   * The loss of an encoder that has learnt nothing: ln(N·V − 1) for the
   * contrastive losses (every other sample equally likely), ln(targets)
   * for `ce`; `null` for `none`.
   */
  chance: number | null;
  /**
   * The loss of a perfect encoder, which no training can go below: for the
   * contrastive losses the mean over anchors of ln(positives), as the loss
   * averages −log softmax over an anchor's positives and is smallest when
   * they share the whole probability (ln 1 = 0 for `sscl`'s single twin;
   * ln 3 for `agcl` batches drawn as pairs of two views); 0 for `ce`;
   * `null` for `none`. Estimated on the first 20 batches training sees.
   */
  floor: number | null;
  /**
   * Share of samples whose batch holds another sample with the method's
   * label (`agcl`: (domain, target); `supcon`: target): anchors with a
   * positive besides their twin view. 0 for `sscl`; `null` for `ce`/`none`.
   */
  positiveFraction: number | null;
  /** Batches of BN calibration (`none`), else 0. */
  calibrationBatches: number;
}

/** Separation scores of one embedding. */
export interface SeparationScores {
  /** Leave-one-out 5-NN accuracy by target, domain and (domain, target). */
  knn: {
    target: number | null;
    domain: number | null;
    domainTarget: number | null;
  };
  /** Mean silhouette by target, domain and (domain, target). */
  silhouette: {
    target: number | null;
    domain: number | null;
    domainTarget: number | null;
  };
}

/** Probes of held-out patches through the stage-2 networks. */
export interface Stage2Probe {
  /** Patches probed. */
  n: number;
  /** The raw [image, attention] patches (the baseline). */
  input: SeparationScores;
  /** The frozen encoder's pooled features (what stage 3 builds on). */
  encoder: SeparationScores;
  /** The projection head's output (or `ce` logits). */
  projection: SeparationScores;
}

/** What stage 2 hands on. */
export interface Stage2Product {
  /** The encoder (disposed by the caller). */
  encoder: Encoder;
  /** The projection or classification head (disposed by the caller). */
  head: Head;
  /** Training health. */
  health: Stage2Health;
}

/** The group key of a sample under a method (`null`: no labels). */
function keyOf(
  method: PretrainMethod,
  batch: PatchBatch,
  s: number,
): string | null {
  if (method === "agcl") return `${batch.domain[s]}:${batch.target[s]}`;
  if (method === "supcon") return String(batch.target[s]);
  return null;
}

/**
 * For each sample of `batch`, how many samples of the batch share its key
 * (itself included; 1 for a sample without a key).
 */
function groupSizes(method: PretrainMethod, batch: PatchBatch): number[] {
  const keys = Array.from(
    { length: batch.size },
    (_, s) => keyOf(method, batch, s),
  );
  const count = new Map<string, number>();
  for (const k of keys) if (k !== null) count.set(k, (count.get(k) ?? 0) + 1);
  return keys.map((k) => (k === null ? 1 : count.get(k)!));
}

/**
 * Share of the samples of `batches` that have another sample with their
 * key in the same batch.
 */
function positiveShare(method: PretrainMethod, batches: PatchBatch[]): number {
  let have = 0, n = 0;
  for (const b of batches) {
    for (const size of groupSizes(method, b)) {
      n++;
      if (size > 1) have++;
    }
  }
  return n ? have / n : 0;
}

/**
 * Mean over the anchors (every view of every sample) of `batches` of
 * ln(positives): the other views of the anchor's sample plus every view of
 * the other samples with its key. The lowest value the method's loss can
 * reach (see {@linkcode Stage2Health.floor}).
 *
 * @param method The pre-training method (its key: (domain, target) for
 * `agcl`, target for `supcon`, none for `sscl`).
 * @param batches Batches as training draws them.
 * @returns The floor (0 without anchors).
 */
export function lossFloor(
  method: PretrainMethod,
  batches: PatchBatch[],
): number {
  let sum = 0, n = 0;
  for (const b of batches) {
    for (const size of groupSizes(method, b)) {
      sum += b.views * Math.log(b.views * size - 1);
      n += b.views;
    }
  }
  return n ? sum / n : 0;
}

/**
 * Estimates the encoder's BN running statistics on training patches:
 * forward passes in training mode, no gradients, no weight changes.
 */
export function calibrateBatchNorm(
  encoder: Encoder,
  stream: BatchStream,
  options: { batches: number },
): void {
  const { batches } = options;
  for (let b = 0; b < batches; b++) {
    const t = batchTensors(stream.next());
    tf.tidy(() => {
      encoder.apply(t.x, { training: true });
    });
    tf.dispose([t.x, t.y]);
  }
}

async function healthOf(
  run: RunDir,
  config: PipelineConfig,
  nTargets: number,
  positiveFraction: number | null,
  floor: number | null,
): Promise<Stage2Health> {
  const p = config.pretrain;
  const losses = (await run.readLog())
    .filter((e) => e.stage === "pretrain")
    .map((e) => e.loss);
  const tenth = Math.max(1, Math.floor(losses.length / 10));
  const mean = (v: number[]) =>
    v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
  return {
    method: p.method,
    steps: losses.length,
    initialLoss: mean(losses.slice(0, tenth)),
    finalLoss: mean(losses.slice(-tenth)),
    chance: p.method === "none"
      ? null
      : p.method === "ce"
      ? Math.log(nTargets)
      : Math.log(p.batchSize * config.views - 1),
    floor,
    positiveFraction,
    calibrationBatches: p.method === "none" ? p.calibrationBatches : 0,
  };
}

/**
 * Runs (or restores) stage 2 on object-centric patches of the training
 * cases: the chosen method's pre-training, or for `none` only a BN
 * calibration of the untrained encoder.
 *
 * @param ctx Run directory, progress, finished stages, resume point.
 * @param config The run's config.
 * @param options Training cases with their attention, target ids, image
 * channels, seeds, warnings.
 * @returns The encoder, head and training health.
 */
export async function runStage2(
  ctx: StageContext,
  config: PipelineConfig,
  options: {
    cases: SamplingCase[];
    targets: number[];
    channels: number;
    seeds: { encoder: number; head: number; sample: number; stream: number };
    /** Jitter the views' intensities or colours (`pretrain.jitter` resolved). */
    jitter: boolean;
    /** Mirror views left-right (`pretrain.flip` resolved). */
    flip: boolean;
    warn: (message: string) => void;
  },
): Promise<Stage2Product> {
  const { cases, targets, channels, seeds, jitter, flip, warn } = options;
  const p = config.pretrain;
  const encoder = buildEncoder(config, channels + 1, seeds.encoder);
  const head = buildHead(
    config,
    encoder.featureChannels,
    targets.length,
    seeds.head,
  );
  const makeStream = () => {
    const index = samplePatches(cases, {
      targets,
      perTarget: p.perTarget,
      patchSize: config.patchSize,
      seed: seeds.sample,
      onWarning: warn,
    });
    return new BatchStream(index, cases, {
      batchSize: p.batchSize,
      views: config.views,
      seed: seeds.stream,
      balance: p.balance,
      groupSize: p.groupSize,
      augment: {
        crop: { scale: p.cropScale },
        ...(flip ? {} : { flip: false }),
        ...(jitter ? {} : { intensity: false, color: false }),
      },
    });
  };
  let positiveFraction: number | null = null;
  let floor: number | null = p.method === "ce" ? 0 : null;
  if (p.method === "agcl" || p.method === "supcon" || p.method === "sscl") {
    // The batches training sees first, drawn from a twin of its stream.
    const twin = makeStream();
    const first = Array.from({ length: 20 }, () => twin.next());
    positiveFraction = p.method === "sscl" ? 0 : positiveShare(p.method, first);
    floor = lossFloor(p.method, first);
  }
  try {
    await trainOrRestore(
      ctx,
      "pretrain",
      namedVariables({ encoder, "": head }),
      () => {
        const stream = makeStream();
        if (p.method === "none") {
          calibrateBatchNorm(encoder, stream, {
            batches: p.calibrationBatches,
          });
        }
        return pretrainStage(config, encoder, {
          head,
          stream: p.method === "none" ? null : stream,
          targetIndex: new Map(targets.map((t, i) => [t, i])),
        });
      },
    );
  } catch (e) {
    encoder.dispose();
    head.dispose();
    throw e;
  }
  return {
    encoder,
    head,
    health: await healthOf(
      ctx.run,
      config,
      targets.length,
      positiveFraction,
      floor,
    ),
  };
}

function scores(
  points: Float32Array,
  dim: number,
  target: string[],
  domain: string[],
): SeparationScores {
  const dt = target.map((t, i) => `${domain[i]}:${t}`);
  const e = { data: points, dim };
  const knn = (labels: string[]) => knnAccuracy(e, labels, { k: 5 });
  const sil = (labels: string[]) => silhouetteScore(e, labels);
  return {
    knn: { target: knn(target), domain: knn(domain), domainTarget: knn(dt) },
    silhouette: {
      target: sil(target),
      domain: sil(domain),
      domainTarget: sil(dt),
    },
  };
}

/**
 * Probes stage 2 on held-out patches (one view each, no augmentation):
 * separation of the raw patches, the encoder's pooled features and the
 * head's output, and the projection points of `embeddings.json`.
 *
 * @param product The stage-2 networks.
 * @param cases Held-out cases with their attention (training cases when none).
 * @param options Targets, seed, patch size and name lookups.
 * @returns The probe and the embedding points.
 */
export async function probeStage2(
  product: { encoder: Encoder; head: Head },
  cases: SamplingCase[],
  options: {
    targets: number[];
    patchSize: number;
    seed: number;
    names: { target: (id: number) => string; domain: (i: number) => string };
  },
): Promise<{ probe: Stage2Probe; points: EmbeddingPoint[] }> {
  const { encoder, head } = product;
  const index = samplePatches(cases, {
    targets: options.targets,
    perTarget: 2,
    patchSize: options.patchSize,
    seed: options.seed,
    onWarning: () => {},
  });
  const stream = new BatchStream(index, cases, {
    batchSize: 16,
    views: 1,
    seed: options.seed,
    balance: "target",
    augment: false,
  });
  const batches = Math.min(16, Math.ceil(index.records.length / 16));
  const raw: number[][] = [], pooled: number[][] = [], proj: number[][] = [];
  const target: string[] = [], domain: string[] = [];
  for (let b = 0; b < batches; b++) {
    const batch = stream.next();
    const t = batchTensors(batch);
    const [f, z] = tf.tidy(() => {
      const { pooled } = encoder.apply(t.x, { training: false });
      return [pooled, head.apply(pooled, { training: false }) as tf.Tensor2D];
    });
    const fv = await f.array() as number[][];
    const zv = await z.array() as number[][];
    tf.dispose([f, z, t.x, t.y]);
    const per = batch.x.length / batch.size;
    for (let i = 0; i < batch.size; i++) {
      raw.push(Array.from(batch.x.subarray(i * per, (i + 1) * per)));
      pooled.push(fv[i]!);
      proj.push(zv[i]!);
      target.push(options.names.target(batch.target[i]!));
      domain.push(options.names.domain(batch.domain[i]!));
    }
  }
  const flat = (rows: number[][]) => {
    const dim = rows[0]?.length ?? 1;
    const out = new Float32Array(rows.length * dim);
    rows.forEach((r, i) => out.set(r, i * dim));
    return { out, dim };
  };
  const of = (rows: number[][]) => {
    const { out, dim } = flat(rows);
    return scores(out, dim, target, domain);
  };
  return {
    probe: {
      n: target.length,
      input: of(raw),
      encoder: of(pooled),
      projection: of(proj),
    },
    points: proj.map((z, i) => ({
      z: z.map((v) => Math.round(v * 1e5) / 1e5),
      target: target[i]!,
      domain: domain[i]!,
    })),
  };
}
