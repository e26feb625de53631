/**
 * Stage 3: the encoder is frozen (eval mode, not optimised) and the ASPP
 * decoder is trained with soft Dice on the foreground of a 2-class softmax,
 * mapping [image, attention] patches to the binary mask of the attended
 * target. Adam.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { BatchStream, BatchStreamState } from "../data/mod.ts";
import { diceLoss } from "../losses/mod.ts";
import type { PipelineConfig } from "./config.ts";
import { createAdam, scheduledLr } from "./optim.ts";
import type { StageSpec } from "./_stage_runner.ts";
import { type DeepLab, namedVariables, pickTrainable } from "./_models.ts";
import { batchTensors, optimizeStep, stageEpochs } from "./_train_util.ts";

/**
 * Foreground probability of the stage-3 network for a batch of patches.
 *
 * @param net The stage-3 network.
 * @param x `[n, p, p, channels]` patches.
 * @returns `[n, p, p]` probabilities.
 */
export function foregroundProbability(
  net: DeepLab,
  x: tf.Tensor4D,
): tf.Tensor3D {
  return tf.tidy(() => {
    const logits = net.apply(x, { training: false });
    const [n, h, w] = logits.shape;
    return tf.softmax(logits).slice([0, 0, 0, 1], [n, h, w, 1])
      .reshape([n, h, w]) as tf.Tensor3D;
  });
}

/** Builds the stage-3 spec over a stream of single-view patches. */
export function segmentStage(
  config: PipelineConfig,
  net: DeepLab,
  options: { stream: BatchStream },
): StageSpec {
  const { stream } = options;
  const s = config.segment;
  // Every variable is saved; only the decoder's are optimised.
  const variables = namedVariables({ "": net }); // the encoder is under backbone.*
  const trainable = pickTrainable(variables, net.decoderVariables());
  const optimizer = createAdam(trainable);
  const stepsPerEpoch = s.stepsPerEpoch || stream.batchesPerEpoch;
  const epochs = stageEpochs(s.epochs, "segment");
  const total = epochs * stepsPerEpoch;
  return {
    stage: "segment",
    epochs,
    stepsPerEpoch,
    variables,
    optimizer,
    getExtra: () => ({ stream: stream.getState() }),
    setExtra(extra) {
      stream.setState((extra as { stream: BatchStreamState }).stream);
    },
    async step(_epoch, step) {
      const batch = stream.next();
      const lr = scheduledLr(step, { schedule: s.schedule, lr: s.lr, total });
      const t = batchTensors(batch);
      try {
        const loss = await optimizeStep(
          () =>
            tf.tidy(() => {
              const logits = net.apply(t.x, {
                training: true,
                freezeEncoder: true,
              });
              const [n, h, w] = logits.shape;
              const fg = tf.softmax(logits).slice([0, 0, 0, 1], [n, h, w, 1])
                .reshape([n, h, w]) as tf.Tensor3D;
              if (s.loss === "dice") return diceLoss(fg, t.y);
              if (s.loss === "target-dice") {
                return targetDice(fg, t.y as tf.Tensor3D, {
                  targets: batch.target,
                });
              }
              const dice = diceLoss(fg, t.y, { reduction: "batch" });
              if (s.loss === "batch-dice") return dice;
              const onehot = tf.stack([tf.sub(1, t.y), t.y], -1);
              return tf.add(
                dice,
                tf.losses.softmaxCrossEntropy(onehot, logits),
              ) as tf.Scalar;
            }),
          trainable,
          optimizer,
          lr,
        );
        return { loss, lr };
      } finally {
        tf.dispose([t.x, t.y]);
      }
    },
  };
}

/**
 * Batch Dice within each target of the batch, averaged over the batch's
 * targets: every target weighs the same, however small its masks, while
 * patches of one target still pool their pixels as batch Dice does
 * (`segment.loss: "target-dice"`).
 *
 * @param fg Foreground probabilities `[batch, height, width]`.
 * @param y Binary truth, the shape of `fg`.
 * @param options The target of each patch (`batch` values).
 * @returns The loss, a scalar in [0, 1].
 */
export function targetDice(
  fg: tf.Tensor3D,
  y: tf.Tensor3D,
  options: { targets: ArrayLike<number> },
): tf.Scalar {
  const { targets } = options;
  const groups = new Map<number, number[]>();
  for (let i = 0; i < targets.length; i++) {
    const g = groups.get(targets[i]!) ?? [];
    g.push(i);
    groups.set(targets[i]!, g);
  }
  return tf.tidy(() => {
    const losses = [...groups.values()].map((idx) => {
      const at = tf.tensor1d(idx, "int32");
      return diceLoss(
        tf.gather(fg, at) as tf.Tensor3D,
        tf.gather(y, at) as tf.Tensor3D,
        { reduction: "batch" },
      );
    });
    return tf.addN(losses).div(losses.length) as tf.Scalar;
  });
}
