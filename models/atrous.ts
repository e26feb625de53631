/**
 * Atrous (dilated) convolution with gradients on every backend.
 *
 * TensorFlow.js 4.22 computes a dilated `conv2d` forward but refuses its
 * gradient ("dilation rates greater than 1 are not yet supported in
 * gradients"). Here the gradient is written out with standard ops: a
 * dilated 3×3 convolution is the sum of nine 1×1 convolutions of shifted
 * copies of the input, one per kernel tap, so
 *
 * - `dFilter[tap] = shift(x, tap)ᵀ · dy` (one matrix product per tap), and
 * - `dx` is the dilated convolution of `dy` with the flipped, transposed
 *   kernel (a forward op every backend has), or the shifted tap sum when
 *   taps are skipped.
 *
 * Taps whose shift is at least the map size only ever read zero padding:
 * they are skipped (on a 16×16 map the rate-18 branch reduces to its centre
 * tap, a 1×1 convolution).
 *
 * Where the backend's own gradient kernels honour dilations (wasm with its
 * oneDNN or BLAS layers, see `backends/_dilated_grads.ts`), both gradients
 * are those kernels' instead: one dilated convolution gradient each, over
 * the block of live taps, in place of a matrix product per tap.
 */
import * as tf from "@tensorflow/tfjs";
import {
  dilatedConvGrads,
  dilatedGradsRouted,
} from "../backends/_dilated_grads.ts";

/** Options for {@linkcode atrousConv2d}. */
export interface AtrousConv2dOptions {
  /** Dilation rate, a positive integer (1 is an ordinary convolution). */
  rate: number;
}

interface Tap {
  /** Kernel row and column. */
  ky: number;
  kx: number;
  /** Offset of the input pixel the tap reads, relative to the output pixel. */
  oy: number;
  ox: number;
}

/** Taps of a `kh×kw` kernel at `rate` that read at least one real pixel. */
function liveTaps(
  h: number,
  w: number,
  kh: number,
  kw: number,
  rate: number,
): Tap[] {
  const taps: Tap[] = [];
  for (let ky = 0; ky < kh; ky++) {
    for (let kx = 0; kx < kw; kx++) {
      const oy = (ky - (kh - 1) / 2) * rate;
      const ox = (kx - (kw - 1) / 2) * rate;
      if (Math.abs(oy) < h && Math.abs(ox) < w) taps.push({ ky, kx, oy, ox });
    }
  }
  return taps;
}

/** `out[:, p, q] = t[:, p + oy, q + ox]`, zero where that falls outside. */
function shift(t: tf.Tensor4D, oy: number, ox: number): tf.Tensor4D {
  if (oy === 0 && ox === 0) return t;
  const [b, h, w, c] = t.shape;
  return t
    .slice(
      [0, Math.max(0, oy), Math.max(0, ox), 0],
      [b, h - Math.abs(oy), w - Math.abs(ox), c],
    )
    .pad([[0, 0], [Math.max(0, -oy), Math.max(0, oy)], [
      Math.max(0, -ox),
      Math.max(0, ox),
    ], [0, 0]]);
}

/** The `[ci, co]` matrix of one tap of a `[kh, kw, ci, co]` filter. */
function tapMatrix(filter: tf.Tensor4D, tap: Tap): tf.Tensor2D {
  const [, , ci, co] = filter.shape;
  return filter.slice([tap.ky, tap.kx, 0, 0], [1, 1, ci, co])
    .reshape([ci, co]);
}

/** `Σ_tap shift(x, tap) · filter[tap]`, over the live taps. */
function tapSum(x: tf.Tensor4D, filter: tf.Tensor4D, taps: Tap[]): tf.Tensor4D {
  const [b, h, w, ci] = x.shape;
  const co = filter.shape[3];
  const parts = taps.map((tap) =>
    tf.matMul(
      shift(x, tap.oy, tap.ox).reshape([b * h * w, ci]),
      tapMatrix(filter, tap),
    )
  );
  const sum = parts.length === 1 ? parts[0]! : tf.addN(parts);
  return sum.reshape([b, h, w, co]);
}

function forward(
  x: tf.Tensor4D,
  filter: tf.Tensor4D,
  rate: number,
  taps: Tap[],
): tf.Tensor4D {
  const [kh, kw] = filter.shape;
  // With every tap live, the backend's own dilated kernel is the fastest.
  if (taps.length === kh * kw) {
    return tf.conv2d(x, filter, 1, "same", "NHWC", rate);
  }
  return tapSum(x, filter, taps);
}

/**
 * Both gradients from the backend's dilated gradient kernels, or
 * `undefined` where it has none. The live taps are a block centred in the
 * kernel (a tap is live when its row's and its column's shifts both fit in
 * the map), so they run as a smaller 'same' convolution: the dead taps'
 * gradient is the zero padding around the block's.
 */
function kernelBackward(
  dy: tf.Tensor4D,
  x: tf.Tensor4D,
  filter: tf.Tensor4D,
  rate: number,
  taps: Tap[],
): [tf.Tensor4D, tf.Tensor4D] | undefined {
  // Checked first, so other backends cut no live block they cannot use.
  if (!dilatedGradsRouted()) return undefined;
  const [kh, kw, ci, co] = filter.shape;
  const ky0 = Math.min(...taps.map((t) => t.ky));
  const kx0 = Math.min(...taps.map((t) => t.kx));
  const live = ky0 === 0 && kx0 === 0
    ? filter
    : filter.slice([ky0, kx0, 0, 0], [kh - 2 * ky0, kw - 2 * kx0, ci, co]);
  const grads = dilatedConvGrads({ dy, x, filter: live }, rate);
  if (!grads) return undefined;
  const [dx, dLive] = grads;
  if (live === filter) return [dx, dLive];
  return [dx, dLive.pad([[ky0, ky0], [kx0, kx0], [0, 0], [0, 0]])];
}

function backward(
  dy: tf.Tensor4D,
  x: tf.Tensor4D,
  filter: tf.Tensor4D,
  rate: number,
  taps: Tap[],
): [tf.Tensor4D, tf.Tensor4D] {
  const fast = kernelBackward(dy, x, filter, rate, taps);
  if (fast) return fast;
  const [b, h, w, ci] = x.shape;
  const [kh, kw, , co] = filter.shape;
  const dy2 = dy.reshape([b * h * w, co]); // [N, co]
  // dFilter[tap] = Σ_p x[p + o]ᵀ dy[p]; dead taps get zero.
  const byTap = new Map(taps.map((t) => [t.ky * kw + t.kx, t]));
  const tapGrads: tf.Tensor2D[] = [];
  for (let k = 0; k < kh * kw; k++) {
    const tap = byTap.get(k);
    tapGrads.push(
      tap
        ? tf.matMul(
          shift(x, tap.oy, tap.ox).reshape([b * h * w, ci]),
          dy2,
          true,
          false,
        )
        : tf.zeros([ci, co]),
    );
  }
  const dFilter = tf.stack(tapGrads).reshape([kh, kw, ci, co]) as tf.Tensor4D;
  let dx: tf.Tensor4D;
  if (taps.length === kh * kw) {
    // The adjoint of a stride-1 'same' dilated convolution is the same
    // convolution with the kernel flipped in space and its channels swapped.
    const adjoint = tf.reverse(filter, [0, 1]).transpose([
      0,
      1,
      3,
      2,
    ]) as tf.Tensor4D;
    dx = tf.conv2d(dy, adjoint, 1, "same", "NHWC", rate);
  } else {
    const parts = taps.map((tap) =>
      shift(
        tf.matMul(dy2, tapMatrix(filter, tap), false, true).reshape([
          b,
          h,
          w,
          ci,
        ]),
        -tap.oy,
        -tap.ox,
      )
    );
    dx = parts.length === 1 ? parts[0]! : tf.addN(parts);
  }
  return [dx, dFilter];
}

/**
 * Stride-1 atrous convolution with 'same' zero padding (PyTorch's
 * `padding = rate * (k - 1) / 2`), differentiable with respect to both the
 * input and the filter on every backend. Its forward output equals
 * `tf.conv2d(x, filter, 1, "same", "NHWC", rate)`.
 *
 * @example A rate-2 convolution and its filter gradient
 * ```ts
 * import { atrousConv2d } from "@agcl/agcl/models";
 * import * as tf from "@tensorflow/tfjs";
 * import assert from "node:assert/strict";
 *
 * const x = tf.ones([1, 5, 5, 1]) as tf.Tensor4D;
 * const w = tf.ones([3, 3, 1, 1]) as tf.Tensor4D;
 * const y = atrousConv2d(x, w, { rate: 2 });
 * assert.deepEqual(y.shape, [1, 5, 5, 1]);
 * const g = tf.grad((f: tf.Tensor) => atrousConv2d(x, f as tf.Tensor4D, { rate: 2 }).sum())(w);
 * assert.equal((await g.data())[4], 25); // the centre tap sees every pixel
 * tf.dispose([x, w, y, g]);
 * ```
 *
 * @param x Input `[batch, height, width, inChannels]`.
 * @param filter Kernel `[kh, kw, inChannels, outChannels]` (HWIO), odd sizes.
 * @param options The dilation `rate`.
 * @returns `[batch, height, width, outChannels]`.
 * @throws {TypeError} If a rank, channel count or kernel size is wrong.
 * @throws {RangeError} If `rate` is not a positive integer.
 */
export function atrousConv2d(
  x: tf.Tensor4D,
  filter: tf.Tensor4D,
  options: AtrousConv2dOptions,
): tf.Tensor4D {
  const { rate } = options;
  if (!Number.isInteger(rate) || rate < 1) {
    throw new RangeError(
      `Cannot compute atrousConv2d as 'rate' must be a positive integer: current value is ${rate}`,
    );
  }
  if (x.rank !== 4) {
    throw new TypeError(
      `Cannot compute atrousConv2d as 'x' must be rank 4 [batch, height, width, channels]: current shape is [${x.shape}]`,
    );
  }
  if (filter.rank !== 4 || filter.shape[2] !== x.shape[3]) {
    throw new TypeError(
      `Cannot compute atrousConv2d as 'filter' must be [kh, kw, ${
        x.shape[3]
      }, outChannels]: current shape is [${filter.shape}]`,
    );
  }
  const [kh, kw] = filter.shape;
  if (kh % 2 !== 1 || kw % 2 !== 1) {
    throw new TypeError(
      `Cannot compute atrousConv2d as 'filter' must have odd kernel sizes: current shape is [${filter.shape}]`,
    );
  }
  if (rate === 1) return tf.conv2d(x, filter, 1, "same");
  const taps = liveTaps(x.shape[1], x.shape[2], kh, kw, rate);
  const op = tf.customGrad(
    (...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const [xi, fi, save] = args as [
        tf.Tensor4D,
        tf.Tensor4D,
        tf.GradSaveFunc,
      ];
      // Keep the inputs for the backward pass: intermediates of the forward
      // tidy are gone by the time gradients are computed.
      save([xi, fi]);
      return {
        // tidy: a custom gradient's intermediates would otherwise live
        // until the whole forward (or backward) pass ends.
        value: tf.tidy(() => forward(xi, fi, rate, taps)),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
          tf.tidy(() =>
            backward(
              dy as tf.Tensor4D,
              saved[0] as tf.Tensor4D,
              saved[1] as tf.Tensor4D,
              rate,
              taps,
            )
          ),
      };
    },
  );
  return op(x, filter) as tf.Tensor4D;
}
