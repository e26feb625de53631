/**
 * The four modes the model benches time ({@linkcode MODES}), built from the
 * shipped models and the shipped {@linkcode supConLoss}: the TypeScript side
 * of `bench_steps` in bench/torch_ref/agcl_torch.py, input for input.
 */
import * as tf from "@tensorflow/tfjs";
import { supConLoss } from "../losses/mod.ts";
import type { DeepLab, Head } from "../models/mod.ts";
import type { Mode } from "./_common.ts";

/** One optimiser per training mode, each over the variables its mode trains. */
export interface StepOptimizers {
  /** Full step: every variable of the network. */
  full: tf.Optimizer;
  /** Frozen-encoder step (stage 3): the decoder's variables. */
  frozen: tf.Optimizer;
  /** Contrastive step (stage 2): the encoder's and the head's variables. */
  contrastive: tf.Optimizer;
}

/** Options for {@linkcode benchSteps}. */
export interface BenchStepsOptions {
  /** The optimisers; the same one three times is fine. */
  optimizers: StepOptimizers;
  /** Samples per step (the contrastive step sees 2 views of each). @default {4} */
  batch?: number;
  /** Height and width of the random input. @default {128} */
  size?: number;
  /** Seed of the random inputs. @default {0} */
  seed?: number;
  /** SupCon temperature. @default {0.1} */
  temperature?: number;
}

/** The modes of one network, ready to time. */
export interface BenchSteps {
  /** Runs one step of `mode` and waits for its result to be read back. */
  run(mode: Mode): Promise<void>;
  /** Frees the inputs and the optimisers (not the network or the head). */
  dispose(): void;
}

/**
 * Builds the four modes on random inputs with `net`'s input channels:
 * inference (eval mode), a full step and a frozen-encoder step
 * (softmax cross-entropy against random two-class labels), and a
 * contrastive step (`batch` samples × 2 views, view-major, through the
 * encoder, global pooling and `head`, then {@linkcode supConLoss} with each
 * sample its own class).
 */
export function benchSteps(
  net: DeepLab,
  head: Head,
  options: BenchStepsOptions,
): BenchSteps {
  const { optimizers, batch = 4, size = 128, seed = 0, temperature = 0.1 } =
    options;
  const channels = net.encoder.config.inChannels;
  const x = tf.randomNormal(
    [batch, size, size, channels],
    0,
    1,
    "float32",
    seed,
  ) as tf.Tensor4D;
  // View-major: sample i's views at i and batch + i.
  const x2 = tf.randomNormal(
    [2 * batch, size, size, channels],
    0,
    1,
    "float32",
    seed + 1,
  ) as tf.Tensor4D;
  const y = tf.tidy(() =>
    tf.oneHot(
      tf.randomUniform([batch, size, size], 0, 2, "int32", seed + 2),
      2,
    )
  ) as tf.Tensor4D;
  const labels = tf.range(0, batch, 1, "int32") as tf.Tensor1D;
  const all = net.trainableVariables();
  const decoder = net.decoderVariables();
  const contrastive = [
    ...net.encoder.trainableVariables(),
    ...head.trainableVariables(),
  ];
  const ce = (logits: tf.Tensor4D) =>
    tf.losses.softmaxCrossEntropy(y, logits) as tf.Scalar;
  const read = async (t: tf.Tensor | null) => {
    await t!.data();
    t!.dispose();
  };
  return {
    run(mode: Mode): Promise<void> {
      switch (mode) {
        case "inference":
          return read(net.apply(x));
        case "full step":
          return read(optimizers.full.minimize(
            () => ce(net.apply(x, { training: true })),
            true,
            all,
          ));
        case "frozen-encoder step":
          return read(optimizers.frozen.minimize(
            () => ce(net.apply(x, { training: true, freezeEncoder: true })),
            true,
            decoder,
          ));
        case "contrastive step":
          return read(optimizers.contrastive.minimize(
            () => {
              const { pooled } = net.encoder.apply(x2, { training: true });
              const z = head.apply(pooled, { training: true }) // [2 batch, dim]
                .reshape([2, batch, -1])
                .transpose([1, 0, 2]) as tf.Tensor3D; // [batch, views, dim]
              return supConLoss(z, labels, { temperature });
            },
            true,
            contrastive,
          ));
      }
    },
    dispose() {
      tf.dispose([x, x2, y, labels]);
      for (
        const o of new Set([
          optimizers.full,
          optimizers.frozen,
          optimizers.contrastive,
        ])
      ) o.dispose();
    },
  };
}
