/**
 * Stage 2: pre-training of the encoder on attention-guided patches
 * ([image, attention], two augmented views each) with the chosen method:
 * `agcl` (modal-target contrastive, Eq. 3), `supcon` (target only), `sscl`
 * (NT-Xent, Eq. 2), `ce` (target classification) or `none` (no training).
 * SGD with momentum, weight decay and a cosine or constant lr schedule.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { BatchStream, BatchStreamState } from "../data/mod.ts";
import { modalTargetLoss, ntXentLoss, supConLoss } from "../losses/mod.ts";
import type { PipelineConfig } from "./config.ts";
import { createSgd, scheduledLr } from "./optim.ts";
import type { StageSpec } from "./_stage_runner.ts";
import {
  type Encoder,
  type Head,
  namedVariables,
  pickTrainable,
} from "./_models.ts";
import { batchTensors, optimizeStep, stageEpochs } from "./_train_util.ts";

/** Options for {@linkcode pretrainStage}. */
export interface PretrainStageOptions {
  /** The projection (or, for `ce`, classification) head. */
  head: Head;
  /** The patch stream; `null` for `none` (no training). */
  stream: BatchStream | null;
  /** Class index of each target label, for the `ce` head. */
  targetIndex: Map<number, number>;
}

/**
 * Builds the stage-2 spec. Targets are mapped to class indices by
 * `targetIndex` for the `ce` head.
 */
export function pretrainStage(
  config: PipelineConfig,
  encoder: Encoder,
  options: PretrainStageOptions,
): StageSpec {
  const { head, stream, targetIndex } = options;
  const p = config.pretrain;
  const variables = namedVariables({ encoder, "": head });
  const trainable = pickTrainable(variables, [
    ...encoder.trainableVariables(),
    ...head.trainableVariables(),
  ]);
  const none = p.method === "none" || stream === null;
  const epochs = none ? 0 : stageEpochs(p.epochs, "pretrain");
  const stepsPerEpoch = none ? 0 : (p.stepsPerEpoch || stream!.batchesPerEpoch);
  const total = epochs * stepsPerEpoch;
  const optimizer = createSgd(trainable, {
    momentum: p.momentum,
    weightDecay: p.weightDecay,
  });
  return {
    stage: "pretrain",
    epochs,
    stepsPerEpoch,
    variables,
    optimizer,
    getExtra: () => ({ stream: stream?.getState() ?? null }),
    setExtra(extra) {
      const e = extra as { stream: BatchStreamState | null };
      if (stream && e.stream) stream.setState(e.stream);
    },
    async step(_epoch, step) {
      const batch = stream!.next();
      const lr = scheduledLr(step, { schedule: p.schedule, lr: p.lr, total });
      const t = batchTensors(batch);
      try {
        const cls = p.method === "ce"
          ? tf.tensor1d(
            Array.from(batch.target, (v) => targetIndex.get(v) ?? 0),
            "int32",
          )
          : null;
        const loss = await optimizeStep(
          () =>
            tf.tidy(() => {
              const { pooled } = encoder.apply(t.x, { training: true });
              if (p.method === "ce") {
                // Every view of a patch carries its patch's target.
                const logits = head.apply(pooled, {
                  training: true,
                }) as tf.Tensor2D;
                const labels = tf.oneHot(
                  cls!.reshape([batch.size, 1]).tile([1, batch.views]).reshape([
                    -1,
                  ]) as tf.Tensor1D,
                  targetIndex.size,
                );
                return tf.losses.softmaxCrossEntropy(
                  labels,
                  logits,
                ) as tf.Scalar;
              }
              const z = (head.apply(pooled, { training: true }) as tf.Tensor2D)
                .reshape([batch.size, batch.views, -1]) as tf.Tensor3D; // [size, views, dim]
              const opts = { temperature: p.temperature };
              if (p.method === "agcl") {
                return modalTargetLoss(z, {
                  domain: batch.domain,
                  target: batch.target,
                }, opts);
              }
              if (p.method === "supcon") {
                return supConLoss(z, batch.target, opts);
              }
              return ntXentLoss(z, opts);
            }),
          trainable,
          optimizer,
          lr,
        );
        cls?.dispose();
        return { loss, lr };
      } finally {
        tf.dispose([t.x, t.y]);
      }
    },
  };
}

/** One point of `embeddings.json`, as the report reads it. */
export type { EmbeddingVector as EmbeddingPoint } from "../report/figures.ts";
