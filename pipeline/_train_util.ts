/** Small helpers shared by the training stages. */
import * as tf from "@tensorflow/tfjs";
import type { PatchBatch } from "../data/mod.ts";
import type { Optimizer } from "./optim.ts";

/**
 * One optimisation step: computes `loss()` and its gradients with respect
 * to `trainable` (by name), applies them with `lr`, and returns the loss.
 */
export async function optimizeStep(
  loss: () => tf.Scalar,
  trainable: Record<string, tf.Variable>,
  optimizer: Optimizer,
  lr: number,
): Promise<number> {
  const byTfName = new Map<string, string>();
  for (const [k, v] of Object.entries(trainable)) byTfName.set(v.name, k);
  const { value, grads } = tf.variableGrads(loss, Object.values(trainable));
  try {
    const named: Record<string, tf.Tensor> = {};
    for (const [tfName, g] of Object.entries(grads)) {
      const key = byTfName.get(tfName);
      if (key) named[key] = g;
    }
    optimizer.apply(named, lr);
    const v = (await value.data())[0]!;
    if (!Number.isFinite(v)) {
      throw new Error(
        `Training diverged: the loss is ${v}; lower the learning rate`,
      );
    }
    return v;
  } finally {
    tf.dispose([value, ...Object.values(grads)]);
  }
}

/** Rounds `n` up to a multiple of `m`. */
export function roundUp(n: number, m: number): number {
  return Math.ceil(n / m) * m;
}

/** Tensors of one patch batch, views flattened sample-major. */
export interface BatchTensors {
  /** `[size * views, p, p, channels]`; row `s * views + v` is view `v` of patch `s`. */
  x: tf.Tensor4D;
  /** `[size * views, p, p]` float32 binary labels, same row order. */
  y: tf.Tensor3D;
}

/** Uploads a batch's `x` and `y`; the caller disposes them. */
export function batchTensors(batch: PatchBatch): BatchTensors {
  const { size, views, patchSize: p, channels } = batch;
  const n = size * views;
  return {
    x: tf.tensor4d(batch.x, [n, p, p, channels], "float32"),
    y: tf.tensor3d(Float32Array.from(batch.y), [n, p, p], "float32"),
  };
}

/**
 * A stage's epochs as the stages run them: a number, once `"auto"` has been
 * sized (`applyBudgets`).
 *
 * @throws {RangeError} For `"auto"`.
 */
export function stageEpochs(
  epochs: number | "auto",
  where: "coarse" | "pretrain" | "segment",
): number {
  if (epochs === "auto") {
    throw new RangeError(
      `Cannot build the ${where} stage as '${where}.epochs' is "auto": size it from the data first (sizeBudgets, applyBudgets)`,
    );
  }
  return epochs;
}
