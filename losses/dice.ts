import * as tf from "@tensorflow/tfjs";
import { assertFeatures, assertPositive, describe } from "./_validate.ts";

/**
 * Ground truth for {@linkcode diceLoss}: a tensor, or a flat array in the
 * tensor's row-major order.
 */
export type DiceLabels =
  | tf.Tensor
  | number[]
  | Uint8Array
  | Int8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Float32Array;

/** How {@linkcode diceLoss} pools its sums. */
export type DiceReduction = "mean" | "batch";

/** Options for {@linkcode diceLoss}. */
export interface DiceLossOptions {
  /** Added to the numerator 2·Σpy. @default {1e-5} */
  smoothNr?: number;
  /** Added to the denominator; must be > 0 so empty masks give no NaN. @default {1e-5} */
  smoothDr?: number;
  /**
   * Denominator Σp² + Σy² (the authors' code, MONAI's `squared_pred`)
   * instead of Σp + Σy.
   * @default {false}
   */
  squared?: boolean;
  /**
   * `"mean"`: Dice per sample (and class), then the mean; `"batch"`: sums
   * pooled over the whole batch (MONAI's `batch=True`, the authors' code),
   * then the mean over classes.
   * @default {"mean"}
   */
  reduction?: DiceReduction;
  /** Multi-class input only: keep class 0 in the mean. @default {true} */
  includeBackground?: boolean;
}

/**
 * Soft Dice loss (Eq. 1 of Lee et al.; MONAI's `DiceLoss`):
 * `1 − (2·Σpy + smoothNr) / (Σp + Σy + smoothDr)`, sums over space (and over
 * the batch with `reduction: "batch"`), averaged over samples and classes.
 *
 * Binary input is foreground probabilities `[batch, height, width]` with
 * labels of the same shape (0/1, or soft values in [0, 1]). Multi-class
 * input is `[batch, height, width, classes]` (e.g. a softmax) with labels
 * either one-hot of the same shape or integer class ids
 * `[batch, height, width]` (an int32 tensor, or an array of that length).
 * Integer ids in an array are checked to lie in `[0, classes)`; an int32
 * tensor is not read back, and an id outside that range one-hot encodes to
 * no class.
 *
 * @example Binary Dice of a half-right prediction
 * ```ts
 * import assert from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { diceLoss } from "@agcl/agcl/losses";
 *
 * const p = tf.tensor3d([[[0.5, 1], [0, 0.5]]]); // [1, 2, 2]
 * const loss = diceLoss(p, [1, 1, 0, 0]);
 * // Σpy = 1.5, Σp = 2, Σy = 2: 1 − (3 + 1e-5) / (4 + 1e-5) ≈ 0.25
 * const [value] = await loss.data();
 * assert.ok(Math.abs(value! - 0.25) < 1e-5);
 * tf.dispose([p, loss]);
 * ```
 *
 * @param probs Probabilities `[batch, height, width]` (binary) or
 *   `[batch, height, width, classes]`, float32.
 * @param labels Ground truth: the shape of `probs`, or integer ids
 *   `[batch, height, width]` for multi-class input.
 * @param options Smoothing, squared denominator, reduction, background.
 * @returns The loss, a scalar in [0, 1] for probabilities and labels in [0, 1].
 * @throws {TypeError} If `probs` is not a rank-3 or rank-4 float32 tensor
 *   with no empty axis, or `labels` does not match its shape, or integer
 *   labels are not int32.
 * @throws {RangeError} If a smoothing term is out of range, `reduction` is
 *   unknown, label values are out of range, or `includeBackground` is false
 *   with fewer than 2 classes.
 */
export function diceLoss(
  probs: tf.Tensor3D | tf.Tensor4D,
  labels: DiceLabels,
  options: DiceLossOptions = {},
): tf.Scalar {
  const fn = "diceLoss";
  const {
    smoothNr = 1e-5,
    smoothDr = 1e-5,
    squared = false,
    reduction = "mean",
    includeBackground = true,
  } = options;
  const layout = "[batch, height, width] or [batch, height, width, classes]";
  if (probs instanceof tf.Tensor && probs.rank === 3) {
    assertFeatures(probs, 3, layout, "probs", fn);
  } else {
    assertFeatures(probs, 4, layout, "probs", fn);
  }
  if (
    !(typeof smoothNr === "number" && Number.isFinite(smoothNr) &&
      smoothNr >= 0)
  ) {
    throw new RangeError(
      `Cannot compute ${fn} as 'smoothNr' must be a finite number >= 0: current value is ${
        describe(smoothNr)
      }`,
    );
  }
  assertPositive(smoothDr, "smoothDr", fn);
  if (reduction !== "mean" && reduction !== "batch") {
    throw new RangeError(
      `Cannot compute ${fn} as 'reduction' must be "mean" or "batch": current value is ${
        describe(reduction)
      }`,
    );
  }
  const classes = probs.rank === 4 ? probs.shape[3]! : 1;
  if (probs.rank === 4 && !includeBackground && classes < 2) {
    throw new RangeError(
      `Cannot compute ${fn} as 'includeBackground' false needs at least 2 classes: current shape is [${probs.shape}]`,
    );
  }
  return tf.tidy(() => {
    const truth = toTruth(labels, probs, fn); // probs' shape, float32
    let p: tf.Tensor = probs.rank === 3 ? tf.expandDims(probs, 3) : probs; // [b, h, w, c]
    let y: tf.Tensor = probs.rank === 3 ? tf.expandDims(truth, 3) : truth; // [b, h, w, c]
    if (probs.rank === 4 && !includeBackground) {
      p = tf.slice(p, [0, 0, 0, 1], [-1, -1, -1, classes - 1]);
      y = tf.slice(y, [0, 0, 0, 1], [-1, -1, -1, classes - 1]);
    }
    const axes = reduction === "batch" ? [0, 1, 2] : [1, 2];
    const intersection = tf.sum(tf.mul(p, y), axes); // [b, c] or [c]
    const denominator = squared
      ? tf.add(tf.sum(tf.square(p), axes), tf.sum(tf.square(y), axes))
      : tf.add(tf.sum(p, axes), tf.sum(y, axes));
    const dice = tf.div(
      tf.add(tf.mul(intersection, 2), smoothNr),
      tf.add(denominator, smoothDr),
    );
    return tf.mean(tf.sub(1, dice));
  });
}

/** `labels` as a float32 tensor of `probs`' shape (one-hot for classes). */
function toTruth(labels: DiceLabels, probs: tf.Tensor, fn: string): tf.Tensor {
  const shape = probs.shape;
  const spatial = shape.slice(0, 3) as [number, number, number]; // [b, h, w]
  const classes = probs.rank === 4 ? shape[3]! : 1;
  if (labels instanceof tf.Tensor) {
    if (sameShape(labels.shape, shape)) return tf.cast(labels, "float32");
    if (probs.rank === 4 && sameShape(labels.shape, spatial)) {
      if (labels.dtype !== "int32") {
        throw new TypeError(
          `Cannot compute ${fn} as integer 'labels' must have dtype int32: current dtype is ${labels.dtype}`,
        );
      }
      return tf.cast(tf.oneHot(labels as tf.Tensor3D, classes), "float32");
    }
    throw new TypeError(
      `Cannot compute ${fn} as 'labels' must have shape [${shape}]${
        probs.rank === 4 ? ` or [${spatial}]` : ""
      }: current shape is [${labels.shape}]`,
    );
  }
  if (!(Array.isArray(labels) || ArrayBuffer.isView(labels))) {
    throw new TypeError(
      `Cannot compute ${fn} as 'labels' must be a tf.Tensor, number[] or typed array: current value is ${
        describe(labels)
      }`,
    );
  }
  const size = shape.reduce((a, b) => a * b, 1);
  const pixels = size / classes;
  if (labels.length === size) {
    assertValues(labels, 0, 1, false, fn);
    return tf.tensor(Float32Array.from(labels), shape, "float32");
  }
  if (probs.rank === 4 && labels.length === pixels) {
    assertValues(labels, 0, classes - 1, true, fn);
    return tf.cast(
      tf.oneHot(
        tf.tensor(Int32Array.from(labels), spatial, "int32") as tf.Tensor3D,
        classes,
      ),
      "float32",
    );
  }
  throw new TypeError(
    `Cannot compute ${fn} as 'labels' must have length ${size}${
      probs.rank === 4 ? ` (one-hot) or ${pixels} (class ids)` : ""
    } for 'probs' of shape [${shape}]: current length is ${labels.length}`,
  );
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function assertValues(
  labels: ArrayLike<number>,
  lo: number,
  hi: number,
  integer: boolean,
  fn: string,
): void {
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i]!;
    if (v >= lo && v <= hi && (!integer || Number.isInteger(v))) continue;
    throw new RangeError(
      `Cannot compute ${fn} as 'labels' must hold ${
        integer ? `integers in [${lo}, ${hi}]` : `values in [${lo}, ${hi}]`
      }: current value at index ${i} is ${describe(v)}`,
    );
  }
}
