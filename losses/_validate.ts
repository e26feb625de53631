/**
 * Input checks shared by the losses. Every message names the loss, the
 * argument, what was expected and what was found, in the house style:
 * `Cannot compute supConLoss as 'temperature' must be a finite number > 0: current value is 0`.
 */
import * as tf from "@tensorflow/tfjs";

/** Integer labels as the losses accept them: `[batch]`. */
export type IntegerLabels = number[] | Int32Array | tf.Tensor1D;

/** Throws unless `t` is a float32 tensor of rank `rank` with no empty axis. */
export function assertFeatures(
  t: unknown,
  rank: number,
  layout: string,
  arg: string,
  fn: string,
): asserts t is tf.Tensor {
  if (!(t instanceof tf.Tensor)) {
    throw new TypeError(
      `Cannot compute ${fn} as '${arg}' must be a tf.Tensor ${layout}: current value is ${
        describe(t)
      }`,
    );
  }
  if (t.rank !== rank) {
    throw new TypeError(
      `Cannot compute ${fn} as '${arg}' must be rank ${rank} ${layout}: current shape is [${t.shape}]`,
    );
  }
  if (t.dtype !== "float32") {
    throw new TypeError(
      `Cannot compute ${fn} as '${arg}' must have dtype float32: current dtype is ${t.dtype}`,
    );
  }
  if ((t.shape as number[]).some((s) => s === 0)) {
    throw new TypeError(
      `Cannot compute ${fn} as '${arg}' must have no empty axis ${layout}: current shape is [${t.shape}]`,
    );
  }
}

/**
 * Checks integer class ids of length `batch` and returns them as an int32
 * tensor (the caller disposes it, or creates it inside `tf.tidy`). Arrays are
 * checked value by value; a tensor must have dtype int32, since reading it
 * back to check would be asynchronous on WebGPU.
 */
export function toLabelTensor(
  labels: unknown,
  batch: number,
  arg: string,
  fn: string,
): tf.Tensor1D {
  if (labels instanceof tf.Tensor) {
    if (labels.rank !== 1) {
      throw new TypeError(
        `Cannot compute ${fn} as '${arg}' must be rank 1 [batch]: current shape is [${labels.shape}]`,
      );
    }
    if (labels.dtype !== "int32") {
      throw new TypeError(
        `Cannot compute ${fn} as '${arg}' must have dtype int32: current dtype is ${labels.dtype}`,
      );
    }
    assertLength(labels.shape[0], batch, arg, fn);
    return tf.clone(labels as tf.Tensor1D);
  }
  if (!(Array.isArray(labels) || labels instanceof Int32Array)) {
    throw new TypeError(
      `Cannot compute ${fn} as '${arg}' must be a number[], Int32Array or int32 tf.Tensor1D: current value is ${
        describe(labels)
      }`,
    );
  }
  assertLength(labels.length, batch, arg, fn);
  for (let i = 0; i < labels.length; i++) {
    const v: unknown = labels[i];
    if (typeof v !== "number" || !Number.isSafeInteger(v)) {
      throw new RangeError(
        `Cannot compute ${fn} as '${arg}' must hold integers: current value at index ${i} is ${
          describe(v)
        }`,
      );
    }
    if (v < -(2 ** 31) || v >= 2 ** 31) {
      throw new RangeError(
        `Cannot compute ${fn} as '${arg}' must hold 32-bit integers: current value at index ${i} is ${v}`,
      );
    }
  }
  return tf.tensor1d(Array.from(labels), "int32");
}

function assertLength(
  length: number,
  batch: number,
  arg: string,
  fn: string,
): void {
  if (length === batch) return;
  throw new TypeError(
    `Cannot compute ${fn} as '${arg}' must have length ${batch} (the batch size of 'features'): current length is ${length}`,
  );
}

/** Throws a RangeError unless `value` is a finite number > 0. */
export function assertPositive(value: unknown, arg: string, fn: string): void {
  if (typeof value === "number" && Number.isFinite(value) && value > 0) return;
  throw new RangeError(
    `Cannot compute ${fn} as '${arg}' must be a finite number > 0: current value is ${
      describe(value)
    }`,
  );
}

/** Throws a RangeError unless `value` is a finite number in `[lo, hi]`. */
export function assertInRange(
  value: unknown,
  lo: number,
  hi: number,
  arg: string,
  fn: string,
): void {
  if (typeof value === "number" && value >= lo && value <= hi) return;
  throw new RangeError(
    `Cannot compute ${fn} as '${arg}' must be a number in [${lo}, ${hi}]: current value is ${
      describe(value)
    }`,
  );
}

/** Quotes strings and shows other values as they print. */
export function describe(v: unknown): string {
  if (typeof v === "string") return `"${v}"`;
  if (v instanceof tf.Tensor) return `a tf.Tensor of shape [${v.shape}]`;
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name}`;
  return String(v);
}
