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
 * The output class that is each target's foreground under a stage-3
 * network: 1 for every target of a two-class network (`segment.head:
 * "binary"`), 1 + the target's rank among `targets` for a network with one
 * class per target (`"targets"`).
 *
 * @param net The stage-3 network.
 * @param targets The run's target label ids, ascending.
 * @returns Target id → output class.
 * @throws {RangeError} When the network has neither 2 classes nor one per
 * target plus background.
 */
export function targetClasses(
  net: DeepLab,
  targets: readonly number[],
): Map<number, number> {
  const n = net.config.nClasses;
  if (n !== 2 && n !== targets.length + 1) {
    throw new RangeError(
      `The stage-3 network has ${n} output classes; expected 2 or ${
        targets.length + 1
      } (background and one per target of [${targets.join(", ")}])`,
    );
  }
  return new Map(targets.map((t, i) => [t, n === 2 ? 1 : i + 1]));
}

/**
 * The probability of each patch's own foreground class, from logits.
 *
 * @param logits `[n, p, p, classes]` logits.
 * @param classes Each patch's foreground class (length n).
 * @returns `[n, p, p]` probabilities.
 */
function classProbability(
  logits: tf.Tensor4D,
  classes: ArrayLike<number>,
): tf.Tensor3D {
  return tf.tidy(() => {
    const [n, h, w, c] = logits.shape;
    if (classes.length !== n) {
      throw new RangeError(
        `foregroundProbability: ${classes.length} class(es) for ${n} patch(es)`,
      );
    }
    const probs = tf.softmax(logits);
    if (c === 2) {
      return probs.slice([0, 0, 0, 1], [n, h, w, 1]).reshape([n, h, w]);
    }
    const pick = tf.oneHot(tf.tensor1d(Array.from(classes), "int32"), c)
      .reshape([n, 1, 1, c]);
    return tf.sum(tf.mul(probs, pick), -1);
  }) as tf.Tensor3D;
}

/** Options for {@linkcode foregroundProbability}. */
export interface ForegroundProbabilityOptions {
  /**
   * Each patch's foreground class ({@linkcode targetClasses}); may be left
   * out for a two-class network.
   */
  classes?: ArrayLike<number>;
}

/**
 * Foreground probability of the stage-3 network for a batch of patches.
 *
 * @param net The stage-3 network.
 * @param x `[n, p, p, channels]` patches.
 * @param options Each patch's foreground class.
 * @returns `[n, p, p]` probabilities.
 */
export function foregroundProbability(
  net: DeepLab,
  x: tf.Tensor4D,
  options: ForegroundProbabilityOptions = {},
): tf.Tensor3D {
  const { classes } = options;
  return tf.tidy(() => {
    const logits = net.apply(x, { training: false });
    if (!classes && net.config.nClasses !== 2) {
      throw new RangeError(
        `foregroundProbability: a network with ${net.config.nClasses} classes needs each patch's class`,
      );
    }
    return classProbability(logits, classes ?? new Array(x.shape[0]).fill(1));
  });
}

/** Builds the stage-3 spec over a stream of single-view patches. */
export function segmentStage(
  config: PipelineConfig,
  net: DeepLab,
  options: { stream: BatchStream; targets: readonly number[] },
): StageSpec {
  const { stream } = options;
  const classOf = targetClasses(net, options.targets);
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
      const classes = Array.from(batch.target, (id) => {
        const c = classOf.get(id);
        if (c === undefined) {
          throw new RangeError(`segment: a patch of unknown target ${id}`);
        }
        return c;
      });
      const t = batchTensors(batch);
      try {
        const loss = await optimizeStep(
          () =>
            tf.tidy(() => {
              const logits = net.apply(t.x, {
                training: true,
                freezeEncoder: true,
              });
              const fg = classProbability(logits, classes);
              if (s.loss === "dice") return diceLoss(fg, t.y);
              if (s.loss === "target-dice") {
                return targetDice(fg, t.y as tf.Tensor3D, {
                  targets: batch.target,
                });
              }
              const dice = diceLoss(fg, t.y, { reduction: "batch" });
              if (s.loss === "batch-dice") return dice;
              const [n, h, w, k] = logits.shape;
              const own = tf.oneHot(tf.tensor1d(classes, "int32"), k)
                .reshape([n, 1, 1, k]);
              const y = t.y.reshape([n, h, w, 1]);
              const onehot = tf.add(
                tf.mul(y, own),
                tf.mul(tf.sub(1, y), tf.oneHot([0], k).reshape([1, 1, 1, k])),
              );
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
