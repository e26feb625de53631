/**
 * Building blocks shared by the models: seeded initialisers, a builder that
 * names variables the torchvision way, and the conv + batch-norm unit in
 * training and eval form.
 */
import * as tf from "@tensorflow/tfjs";
import type { Prng } from "../random/prng.ts";
import {
  batchNormTraining,
  batchNormTrainingGrad,
  batchNormTrainingRouted,
} from "../backends/_batch_norm.ts";
import { atrousConv2d } from "./atrous.ts";

/** PyTorch's `BatchNorm2d` defaults. */
export const BN_MOMENTUM = 0.1;
/** PyTorch's `BatchNorm2d` epsilon. */
export const BN_EPS = 1e-5;

/** Batch-norm variables of one layer. */
export interface BatchNormVars {
  gamma: tf.Variable;
  beta: tf.Variable;
  runningMean: tf.Variable;
  runningVar: tf.Variable;
  /** `num_batches_tracked`, int32 here, int64 in a checkpoint. */
  count: tf.Variable;
}

/** A bias-free convolution followed by batch norm (torchvision's conv + bn pair). */
export interface ConvBn {
  /** `[kh, kw, in, out]` (HWIO). */
  weight: tf.Variable;
  bn: BatchNormVars;
  stride: number;
  dilation: number;
}

/** A dense layer: `weight` `[in, out]` (stored `[out, in]` in checkpoints), `bias` `[out]`. */
export interface Dense {
  weight: tf.Variable;
  bias: tf.Variable;
}

/** Fills `n` standard normal samples from `prng` (Box-Muller, both outputs). */
function normals(prng: Prng, n: number, std: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    let u = prng.next();
    while (u === 0) u = prng.next();
    const r = std * Math.sqrt(-2 * Math.log(u));
    const a = 2 * Math.PI * prng.next();
    out[i] = r * Math.cos(a);
    if (i + 1 < n) out[i + 1] = r * Math.sin(a);
  }
  return out;
}

function uniforms(prng: Prng, n: number, bound: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = bound * (2 * prng.next() - 1);
  return out;
}

function variable(
  values: Float32Array | Int32Array,
  shape: number[],
  trainable: boolean,
): tf.Variable {
  const t = tf.tensor(
    values,
    shape,
    values instanceof Int32Array ? "int32" : "float32",
  );
  const v = tf.variable(t, trainable);
  t.dispose();
  return v;
}

/** Creates variables under torchvision names, initialised from one {@linkcode Prng}. */
export class ParamBuilder {
  /** Trainable variables by name. */
  readonly params: Record<string, tf.Variable> = {};
  /** BN running statistics by name. */
  readonly state: Record<string, tf.Variable> = {};
  #prng: Prng;

  constructor(prng: Prng) {
    this.#prng = prng;
  }

  #param(name: string, values: Float32Array, shape: number[]): tf.Variable {
    if (name in this.params) {
      throw new Error(`Duplicate parameter name '${name}'`);
    }
    return this.params[name] = variable(values, shape, true);
  }

  /**
   * A `kh×kw` convolution weight `<name>.weight` `[kh, kw, in, out]`, He-normal
   * with fan-out (torchvision's `kaiming_normal_(mode="fan_out")`).
   */
  convWeight(name: string, k: number, cin: number, cout: number): tf.Variable {
    const std = Math.sqrt(2 / (cout * k * k));
    return this.#param(
      `${name}.weight`,
      normals(this.#prng, k * k * cin * cout, std),
      [k, k, cin, cout],
    );
  }

  /** A convolution bias `<name>.bias`, PyTorch's default `U(±1/√fanIn)`. */
  convBias(name: string, fanIn: number, cout: number): tf.Variable {
    return this.#param(
      `${name}.bias`,
      uniforms(this.#prng, cout, 1 / Math.sqrt(fanIn)),
      [cout],
    );
  }

  /** Batch norm `<name>.{weight,bias,running_mean,running_var,num_batches_tracked}`. */
  batchNorm(name: string, c: number): BatchNormVars {
    const gamma = this.#param(`${name}.weight`, new Float32Array(c).fill(1), [
      c,
    ]);
    const beta = this.#param(`${name}.bias`, new Float32Array(c), [c]);
    const s = this.state;
    s[`${name}.running_mean`] = variable(new Float32Array(c), [c], false);
    s[`${name}.running_var`] = variable(
      new Float32Array(c).fill(1),
      [c],
      false,
    );
    s[`${name}.num_batches_tracked`] = variable(new Int32Array(1), [], false);
    return {
      gamma,
      beta,
      runningMean: s[`${name}.running_mean`]!,
      runningVar: s[`${name}.running_var`]!,
      count: s[`${name}.num_batches_tracked`]!,
    };
  }

  /** Conv `<conv>.weight` plus BN `<bn>.*`. */
  convBn(
    conv: string,
    bn: string,
    spec: {
      k: number;
      cin: number;
      cout: number;
      stride?: number;
      dilation?: number;
    },
  ): ConvBn {
    return {
      weight: this.convWeight(conv, spec.k, spec.cin, spec.cout),
      bn: this.batchNorm(bn, spec.cout),
      stride: spec.stride ?? 1,
      dilation: spec.dilation ?? 1,
    };
  }

  /** A dense layer `<name>.{weight,bias}`, PyTorch's default `U(±1/√in)`. */
  dense(name: string, cin: number, cout: number): Dense {
    const bound = 1 / Math.sqrt(cin);
    return {
      weight: this.#param(
        `${name}.weight`,
        uniforms(this.#prng, cin * cout, bound),
        [cin, cout],
      ),
      bias: this.#param(`${name}.bias`, uniforms(this.#prng, cout, bound), [
        cout,
      ]),
    };
  }
}

/** Disposes every variable of `vars` not yet disposed. */
export function disposeAll(...groups: Record<string, tf.Variable>[]): void {
  for (const g of groups) {
    for (const v of Object.values(g)) if (!v.isDisposed) v.dispose();
  }
}

/**
 * Convolution with PyTorch's padding (`dilation * (k - 1) / 2` on every
 * side). Stride-1 dilated convolutions go through {@linkcode atrousConv2d}
 * so that they have gradients.
 */
export function conv(
  x: tf.Tensor4D,
  weight: tf.Tensor4D,
  stride: number,
  dilation: number,
): tf.Tensor4D {
  const k = weight.shape[0];
  if (dilation > 1) {
    if (stride !== 1) {
      throw new RangeError("Strided dilated convolutions are not supported");
    }
    return atrousConv2d(x, weight, { rate: dilation });
  }
  return tf.conv2d(x, weight, stride, convPad(k, stride, dilation));
}

/** PyTorch-equivalent padding argument for tfjs. */
export function convPad(
  k: number,
  stride: number,
  dilation: number,
): "valid" | "same" | [[0, 0], [number, number], [number, number], [0, 0]] {
  if (k === 1) return "valid";
  // tfjs 'same' pads asymmetrically when strided; PyTorch pads both sides.
  if (stride === 1) return "same";
  const p = (dilation * (k - 1)) / 2;
  return [[0, 0], [p, p], [p, p], [0, 0]];
}

/** Moves the running statistics towards a batch's, as PyTorch does. */
function updateRunningStats(
  bn: BatchNormVars,
  mean: tf.Tensor,
  variance: tf.Tensor,
  n: number,
): void {
  tf.tidy(() => {
    const m = BN_MOMENTUM;
    bn.runningMean.assign(
      tf.add(tf.mul(bn.runningMean, 1 - m), tf.mul(mean, m)),
    );
    // PyTorch stores the unbiased variance (it normalises with the biased one).
    const unbiased = n > 1 ? tf.mul(variance, n / (n - 1)) : variance;
    bn.runningVar.assign(
      tf.add(tf.mul(bn.runningVar, 1 - m), tf.mul(unbiased, m)),
    );
    bn.count.assign(tf.add(bn.count, tf.scalar(1, "int32")));
  });
}

/**
 * Batch norm over `[batch, height, width]` per channel, optionally followed
 * by ReLU. Training mode normalises with the batch's (biased) variance and
 * moves the running statistics towards the batch's mean and unbiased
 * variance by {@linkcode BN_MOMENTUM}, as PyTorch does.
 *
 * Training mode is one op with a hand-written gradient: autodiff through
 * `moments` → `batchNorm` → `relu` keeps three activation-sized tensors per
 * layer for the backward pass; this keeps the input and the output only
 * (the output is the next layer's input, so it costs nothing extra), about
 * halving a training step's memory, which decides whether ResNet-50 at
 * batch 4 fits the wasm backend's heap. On backends with a training batch
 * norm kernel pair (wasm with oneDNN, see `backends/_batch_norm.ts`), both
 * directions are those kernels.
 */
export function batchNorm(
  x: tf.Tensor4D,
  bn: BatchNormVars,
  options: { training: boolean; relu: boolean; residual?: tf.Tensor4D },
): tf.Tensor4D {
  const { training, relu, residual } = options;
  if (!training) {
    let y = tf.batchNorm(
      x,
      bn.runningMean,
      bn.runningVar,
      bn.beta,
      bn.gamma,
      BN_EPS,
    ) as tf.Tensor4D;
    if (residual) y = tf.add(y, residual);
    return relu ? tf.relu(y) : y;
  }
  const n = x.size / x.shape[3];
  const pass = batchNormTrainingRouted(x)
    ? kernelPass(bn, n, relu)
    : opsPass(bn, n, relu);
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, gamma, beta] = args as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D];
    const res = residual ? args[3] as tf.Tensor4D : undefined;
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const { y, mean, stat } = pass.forward(xi, gamma, beta, res);
    save(relu ? [xi, mean, stat, gamma, y] : [xi, mean, stat, gamma]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [dx, dGamma, dBeta, dResidual] = pass.backward(
            dy as tf.Tensor4D,
            saved as [
              tf.Tensor4D,
              tf.Tensor1D,
              tf.Tensor1D,
              tf.Tensor1D,
              tf.Tensor4D?,
            ],
          );
          return res ? [dx, dGamma, dBeta, dResidual] : [dx, dGamma, dBeta];
        }),
    };
  });
  return (residual
    ? op(x, bn.gamma, bn.beta, residual)
    : op(x, bn.gamma, bn.beta)) as tf.Tensor4D;
}

/**
 * The two directions of a training batch norm for {@linkcode batchNorm}'s
 * custom gradient. `forward` updates the running statistics and returns the
 * output, the batch mean and one more per-channel statistic; `backward`
 * gets `[x, mean, stat, γ]` (and the output, with a ReLU) and returns
 * `[dx, dγ, dβ, d]`, `d` being the gradient that reaches the ReLU's input
 * (the residual's).
 */
interface TrainingBatchNormPass {
  forward(
    x: tf.Tensor4D,
    gamma: tf.Tensor1D,
    beta: tf.Tensor1D,
    residual?: tf.Tensor4D,
  ): { y: tf.Tensor4D; mean: tf.Tensor1D; stat: tf.Tensor1D };
  backward(
    dy: tf.Tensor4D,
    saved: [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D, tf.Tensor4D?],
  ): [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
}

/** The pass written in tfjs ops; its `stat` is 1/σ. */
function opsPass(
  bn: BatchNormVars,
  n: number,
  relu: boolean,
): TrainingBatchNormPass {
  return {
    forward: (xi, gamma, beta, res) => {
      // tidy: a custom gradient's intermediates would otherwise live until
      // the whole forward (or backward) pass ends.
      const [y, mean, invStd] = tf.tidy(() => {
        const { mean, variance } = tf.moments(xi, [0, 1, 2]);
        updateRunningStats(bn, mean, variance, n);
        const invStd = tf.rsqrt(tf.add(variance, BN_EPS)); // [C]
        const scale = tf.mul(gamma, invStd);
        const shift = tf.sub(beta, tf.mul(mean, scale));
        let linear = tf.add(tf.mul(xi, scale), shift) as tf.Tensor4D;
        if (res) linear = tf.add(linear, res);
        return [relu ? tf.relu(linear) : linear, mean, invStd];
      }) as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D];
      return { y, mean, stat: invStd };
    },
    backward: (dy, [xs, mu, inv, g, out]) => {
      // ReLU passes the gradient where its output is positive.
      const d = out ? tf.mul(dy, tf.step(out)) : dy;
      const xHat = tf.mul(tf.sub(xs, mu), inv);
      const dBeta = tf.sum(d, [0, 1, 2]);
      const dGamma = tf.sum(tf.mul(d, xHat), [0, 1, 2]);
      // dx = γ/σ · (d − mean(d) − x̂ · mean(d · x̂))
      const dx = tf.mul(
        tf.mul(g, inv),
        tf.sub(
          d,
          tf.div(tf.add(dBeta, tf.mul(xHat, dGamma)), n),
        ),
      );
      return [dx, dGamma, dBeta, d];
    },
  };
}

/**
 * The pass on the backend's kernel pair (wasm with oneDNN, see
 * `backends/_batch_norm.ts`); its `stat` is the batch variance.
 */
function kernelPass(
  bn: BatchNormVars,
  n: number,
  relu: boolean,
): TrainingBatchNormPass {
  const attrs = { epsilon: BN_EPS, relu };
  return {
    forward: (x, gamma, beta, residual) => {
      const { y, mean, variance } = batchNormTraining(
        residual ? { x, gamma, beta, residual } : { x, gamma, beta },
        attrs,
      );
      updateRunningStats(bn, mean, variance, n);
      return { y, mean, stat: variance };
    },
    backward: (dy, [x, mean, variance, gamma, y]) => {
      const d = batchNormTrainingGrad(
        { dy, x, mean, variance, gamma, ...(y ? { y } : {}) },
        attrs,
      );
      return [d.dx, d.dGamma, d.dBeta, d.dRelu ?? dy];
    },
  };
}

/**
 * conv → BN (→ + residual) (→ ReLU). In eval mode the BN is folded into the convolution
 * (`w·γ/σ`, `β − μγ/σ`) and run as one fused op.
 */
export function convBn(
  x: tf.Tensor4D,
  unit: ConvBn,
  options: { training: boolean; relu: boolean; residual?: tf.Tensor4D },
): tf.Tensor4D {
  const { training, relu, residual } = options;
  if (training) {
    return batchNorm(
      conv(x, unit.weight as tf.Tensor4D, unit.stride, unit.dilation),
      unit.bn,
      residual ? { training, relu, residual } : { training, relu },
    );
  }
  const { bn } = unit;
  const scale = tf.mul(bn.gamma, tf.rsqrt(tf.add(bn.runningVar, BN_EPS))); // [out]
  const weight = tf.mul(unit.weight, scale) as tf.Tensor4D; // scales the last (out) axis
  const bias = tf.sub(bn.beta, tf.mul(bn.runningMean, scale));
  let y: tf.Tensor4D;
  if (unit.dilation > 1) {
    y = tf.add(conv(x, weight, 1, unit.dilation), bias) as tf.Tensor4D;
  } else {
    y = tf.fused.conv2d({
      x,
      filter: weight,
      strides: unit.stride,
      pad: convPad(weight.shape[0], unit.stride, 1),
      bias,
      activation: relu && !residual ? "relu" : "linear",
    });
    if (!residual) return y;
  }
  if (residual) y = tf.add(y, residual);
  return relu ? tf.relu(y) : y;
}

/** `x · W + b` (`[b, in]` → `[b, out]`), optionally with ReLU. */
export function dense(x: tf.Tensor2D, layer: Dense, relu = false): tf.Tensor2D {
  return tf.fused.matMul({
    a: x,
    b: layer.weight as tf.Tensor2D,
    bias: layer.bias,
    activation: relu ? "relu" : "linear",
  }) as tf.Tensor2D;
}

/** Checks `x` is `[batch, height, width, channels]`. */
export function assertImage(x: tf.Tensor, channels: number, fn: string): void {
  if (x.rank !== 4 || x.shape[3] !== channels) {
    throw new TypeError(
      `Cannot apply ${fn} as 'x' must be [batch, height, width, ${channels}]: current shape is [${x.shape}]`,
    );
  }
  if (x.dtype !== "float32") {
    throw new TypeError(
      `Cannot apply ${fn} as 'x' must be float32: current dtype is ${x.dtype}`,
    );
  }
}
