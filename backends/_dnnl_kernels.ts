/**
 * Wasm convolution kernels that run on oneDNN (through FFI, directly on the
 * wasm heap): Conv2D, FusedConv2D (oneDNN's convolution, then the bias and
 * activation in place), Conv2DBackpropInput and Conv2DBackpropFilter, with
 * strides, explicit or computed padding and dilations (a `dilations`
 * attribute is honoured by both gradients, as by the BLAS kernels). Tiny
 * convolutions, other data formats and shapes oneDNN refuses fall through
 * to the kernel below (the BLAS layer when installed, else the wasm
 * backend's own). {@linkcode installDnnlKernels} layers them over the wasm
 * backend's kernels (see `_patches.ts`), above the BLAS layers, and
 * registers the training batch norm kernels of `_batch_norm.ts` on oneDNN's
 * batch normalisation; {@linkcode uninstallDnnlKernels} removes exactly
 * those layers and kernels.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  BATCH_NORM_TRAINING,
  BATCH_NORM_TRAINING_GRAD,
  type BatchNormTrainingAttrs,
} from "./_batch_norm.ts";
import type { Dnnl, DnnlBatchNorm, DnnlConv, Pointer } from "./_dnnl.ts";
import {
  biasActivation,
  convInfoFromAttrs,
  geometry,
  isActivation,
} from "./_im2col.ts";
import { limits } from "./_limits.ts";
import { applyPatches, type KernelPatch, registerMissing } from "./_patches.ts";
import {
  heapF32,
  heapU8,
  offsetOf,
  sizeOf,
  type WasmBackendLike,
} from "./_wasm_heap.ts";

type Attrs = Record<string, unknown>;

function nhwc(a: Attrs): boolean {
  return a.dataFormat === undefined || a.dataFormat === "NHWC";
}

/** The oneDNN description of a tfjs convolution (NHWC, HWIO). */
export function dnnlConv(info: tf.backend_util.Conv2DInfo): DnnlConv {
  return {
    ...geometry(info),
    bottom: info.padInfo.bottom,
    right: info.padInfo.right,
  };
}

/**
 * Whether oneDNN should take the convolution: not empty, not tiny (below
 * {@linkcode limits}`.dnnlMinWork` multiply-adds, where the call costs more
 * than it saves), and with padding consistent with the output size (as
 * oneDNN checks it; tfjs's `ceil` rounding can break that).
 */
function takes(g: DnnlConv): boolean {
  if (g.n * g.h * g.w * g.c * g.co * g.oh * g.ow === 0) return false;
  if (g.top < 0 || g.bottom < 0 || g.left < 0 || g.right < 0) return false;
  const work = g.n * g.oh * g.ow * g.kh * g.kw * g.c * g.co;
  if (work < limits.dnnlMinWork) return false;
  const span = (k: number, d: number) => (k - 1) * d + 1;
  const rows = Math.floor(
    (g.h + g.top + g.bottom - span(g.kh, g.dh)) / g.sh,
  ) + 1;
  const cols = Math.floor(
    (g.w + g.left + g.right - span(g.kw, g.dw)) / g.sw,
  ) + 1;
  return rows === g.oh && cols === g.ow;
}

/**
 * A strided 1×1 convolution (ResNet's downsampling shortcut). oneDNN 2.6.3's
 * `jit_1x1:avx512_core` backward-weights kernel corrupts the heap on NHWC
 * data for some of these (x [1, 16, 40, 8], 1×1, stride 2, 16 outputs:
 * "double free or corruption" from Deno, a hang from the same calls in C),
 * so both gradients of these stay on the kernels below; they are cheap.
 */
function stridedPointwise(g: DnnlConv): boolean {
  return g.kh === 1 && g.kw === 1 && (g.sh > 1 || g.sw > 1);
}

/** Addresses on the wasm heap, taken afresh per call (the heap can move). */
function addresses(backend: WasmBackendLike): (t: tf.TensorInfo) => Pointer {
  const base = Deno.UnsafePointer.of(heapU8(backend));
  return (t) => Deno.UnsafePointer.offset(base!, 4 * offsetOf(backend, t));
}

function conv2d(
  dnnl: Dnnl,
  original: tf.KernelFunc,
  fused: boolean,
): tf.KernelFunc {
  return (args) => {
    const a = (args.attrs ?? {}) as Attrs;
    const { x, filter, bias, preluActivationWeights } = args.inputs as Record<
      string,
      tf.TensorInfo | undefined
    >;
    if (
      !x || !filter || x.dtype !== "float32" || filter.dtype !== "float32" ||
      !nhwc(a)
    ) {
      return original(args);
    }
    const g = dnnlConv(convInfoFromAttrs(x.shape, filter.shape, a));
    if (fused) {
      if (preluActivationWeights || !isActivation(a.activation)) {
        return original(args);
      }
      if (
        bias &&
        (bias.dtype !== "float32" || bias.shape.length !== 1 ||
          sizeOf(bias.shape) !== g.co)
      ) {
        return original(args);
      }
    }
    if (!takes(g)) return original(args);
    const backend = args.backend as unknown as WasmBackendLike;
    const out = backend.makeOutput([g.n, g.oh, g.ow, g.co], "float32");
    try {
      const at = addresses(backend);
      dnnl.convForward(
        g,
        at(x),
        at(filter),
        fused && bias ? at(bias) : null,
        at(out),
      );
    } catch (e) {
      backend.disposeData(out.dataId);
      throw e;
    }
    if (fused && (a.activation ?? "linear") !== "linear") {
      biasActivation(
        heapF32(backend),
        offsetOf(backend, out),
        g.n * g.oh * g.ow,
        g.co,
        -1,
        a.activation as "relu",
        a.leakyreluAlpha as number | undefined,
      );
    }
    return out;
  };
}

function backpropInput(dnnl: Dnnl, original: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const a = (args.attrs ?? {}) as Attrs;
    const { dy, filter } = args.inputs as {
      dy: tf.TensorInfo;
      filter: tf.TensorInfo;
    };
    if (
      dy.dtype !== "float32" || filter.dtype !== "float32" || !nhwc(a)
    ) {
      return original(args);
    }
    const inputShape = a.inputShape as number[];
    const g = dnnlConv(convInfoFromAttrs(inputShape, filter.shape, a));
    if (!takes(g) || stridedPointwise(g)) return original(args);
    const backend = args.backend as unknown as WasmBackendLike;
    const out = backend.makeOutput([...inputShape], "float32");
    try {
      const at = addresses(backend);
      dnnl.convBackwardData(g, at(dy), at(filter), at(out));
    } catch (e) {
      backend.disposeData(out.dataId);
      throw e;
    }
    return out;
  };
}

function backpropFilter(dnnl: Dnnl, original: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const a = (args.attrs ?? {}) as Attrs;
    const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
    if (x.dtype !== "float32" || dy.dtype !== "float32" || !nhwc(a)) {
      return original(args);
    }
    const filterShape = a.filterShape as number[];
    const g = dnnlConv(convInfoFromAttrs(x.shape, filterShape, a));
    if (!takes(g) || stridedPointwise(g)) return original(args);
    const backend = args.backend as unknown as WasmBackendLike;
    const out = backend.makeOutput([...filterShape], "float32");
    try {
      const at = addresses(backend);
      dnnl.convBackwardWeights(g, at(x), at(dy), at(out));
    } catch (e) {
      backend.disposeData(out.dataId);
      throw e;
    }
    return out;
  };
}

/** γ and β packed as oneDNN's `[2, c]` scale-and-shift argument. */
let scaleShift = new Float32Array(0);

function packScaleShift(
  heap: Float32Array,
  gammaOff: number,
  betaOff: number,
  c: number,
): Pointer {
  if (scaleShift.length < 2 * c) scaleShift = new Float32Array(2 * c);
  scaleShift.set(heap.subarray(gammaOff, gammaOff + c), 0);
  if (betaOff >= 0) scaleShift.set(heap.subarray(betaOff, betaOff + c), c);
  else scaleShift.fill(0, c, 2 * c);
  return Deno.UnsafePointer.of(scaleShift);
}

/** `[dγ, dβ]` as oneDNN writes them (`[2, c]`). */
let diffScaleShift = new Float32Array(0);

function batchNormShape(x: tf.TensorInfo, epsilon: number): DnnlBatchNorm {
  const [n = 0, h = 0, w = 0, c = 0] = x.shape;
  return { n, h, w, c, epsilon };
}

/**
 * Throws a TypeError unless `x` is a float32 `[n, h, w, c]`, each of
 * `maps` float32 of its shape and each of `vectors` float32 `[c]`.
 */
function checkBatchNormInputs(
  kernel: string,
  x: tf.TensorInfo | undefined,
  maps: (tf.TensorInfo | undefined)[],
  vectors: (tf.TensorInfo | undefined)[],
): void {
  const fail = (what: string) => {
    throw new TypeError(`${kernel} on wasm (oneDNN) expects ${what}`);
  };
  if (!x || x.shape.length !== 4) fail(`a rank-4 x: found [${x?.shape}]`);
  const c = x!.shape[3];
  for (const t of [x, ...maps, ...vectors]) {
    if (t && t.dtype !== "float32") fail(`float32 tensors: found ${t.dtype}`);
  }
  for (const t of maps) {
    if (t && !tf.util.arraysEqual(t.shape, x!.shape)) {
      fail(`maps shaped as x [${x!.shape}]: found [${t.shape}]`);
    }
  }
  for (const t of vectors) {
    if (t && (t.shape.length !== 1 || t.shape[0] !== c)) {
      fail(`per-channel vectors [${c}]: found [${t.shape}]`);
    }
  }
}

/**
 * {@linkcode BATCH_NORM_TRAINING}: oneDNN's forward batch normalisation with
 * the batch statistics, then the residual sum and the ReLU in one more
 * oneDNN pass.
 */
function batchNormTraining(dnnl: Dnnl): tf.KernelFunc {
  return (args) => {
    const { x, gamma, beta, residual } = args.inputs as Record<
      string,
      tf.TensorInfo | undefined
    >;
    const { epsilon, relu } = args.attrs as unknown as BatchNormTrainingAttrs;
    if (!gamma || !beta) {
      throw new TypeError(`${BATCH_NORM_TRAINING} needs 'gamma' and 'beta'`);
    }
    checkBatchNormInputs(BATCH_NORM_TRAINING, x, [residual], [gamma, beta]);
    const bn = batchNormShape(x!, epsilon);
    const backend = args.backend as unknown as WasmBackendLike;
    const y = backend.makeOutput([...x!.shape], "float32");
    const mean = backend.makeOutput([bn.c], "float32");
    const variance = backend.makeOutput([bn.c], "float32");
    try {
      const heap = heapF32(backend);
      const ss = packScaleShift(
        heap,
        offsetOf(backend, gamma!),
        offsetOf(backend, beta!),
        bn.c,
      );
      const at = addresses(backend);
      dnnl.batchNormForward(bn, at(x!), ss, at(y), at(mean), at(variance));
      dnnl.addRelu(
        sizeOf(x!.shape),
        at(y),
        residual ? at(residual) : null,
        relu,
      );
    } catch (e) {
      for (const t of [y, mean, variance]) backend.disposeData(t.dataId);
      throw e;
    }
    return [y, mean, variance];
  };
}

/**
 * {@linkcode BATCH_NORM_TRAINING_GRAD}: with a ReLU, the incoming gradient
 * masked where the output is zero (oneDNN's ReLU backward; also returned:
 * the residual's gradient), then oneDNN's backward batch normalisation.
 */
function batchNormTrainingGrad(dnnl: Dnnl): tf.KernelFunc {
  return (args) => {
    const { dy, x, mean, variance, gamma, y } = args.inputs as Record<
      string,
      tf.TensorInfo | undefined
    >;
    const { epsilon, relu } = args.attrs as unknown as BatchNormTrainingAttrs;
    if (!dy || !mean || !variance || !gamma || (relu && !y)) {
      throw new TypeError(
        `${BATCH_NORM_TRAINING_GRAD} needs 'dy', 'mean', 'variance', 'gamma' and, with a ReLU, the forward output 'y'`,
      );
    }
    checkBatchNormInputs(BATCH_NORM_TRAINING_GRAD, x, [dy, y], [
      mean,
      variance,
      gamma,
    ]);
    const bn = batchNormShape(x!, epsilon);
    const backend = args.backend as unknown as WasmBackendLike;
    const dx = backend.makeOutput([...x!.shape], "float32");
    const dGamma = backend.makeOutput([bn.c], "float32");
    const dBeta = backend.makeOutput([bn.c], "float32");
    const dRelu = relu ? backend.makeOutput([...x!.shape], "float32") : null;
    const outs = dRelu ? [dx, dGamma, dBeta, dRelu] : [dx, dGamma, dBeta];
    try {
      const heap = heapF32(backend);
      const at = addresses(backend);
      if (dRelu) {
        dnnl.reluBackward(sizeOf(x!.shape), at(y!), at(dy!), at(dRelu));
      }
      const ss = packScaleShift(heap, offsetOf(backend, gamma!), -1, bn.c);
      if (diffScaleShift.length < 2 * bn.c) {
        diffScaleShift = new Float32Array(2 * bn.c);
      }
      dnnl.batchNormBackward(
        bn,
        at(x!),
        at(mean!),
        at(variance!),
        at(dRelu ?? dy!),
        ss,
        at(dx),
        Deno.UnsafePointer.of(diffScaleShift),
      );
      heap.set(diffScaleShift.subarray(0, bn.c), offsetOf(backend, dGamma));
      heap.set(
        diffScaleShift.subarray(bn.c, 2 * bn.c),
        offsetOf(backend, dBeta),
      );
    } catch (e) {
      for (const t of outs) backend.disposeData(t.dataId);
      throw e;
    }
    return outs;
  };
}

/** The kernels oneDNN adds to wasm (it has no kernel of these names). */
function dnnlKernelConfigs(dnnl: Dnnl): tf.KernelConfig[] {
  return [
    {
      kernelName: BATCH_NORM_TRAINING,
      backendName: "wasm",
      kernelFunc: batchNormTraining(dnnl),
    },
    {
      kernelName: BATCH_NORM_TRAINING_GRAD,
      backendName: "wasm",
      kernelFunc: batchNormTrainingGrad(dnnl),
    },
  ];
}

/**
 * The oneDNN patch table: each wrap closes over the opened library, so the
 * table is built per library.
 */
export function dnnlKernelPatches(dnnl: Dnnl): KernelPatch[] {
  return [
    { kernelName: "Conv2D", wrap: (below) => conv2d(dnnl, below, false) },
    { kernelName: "FusedConv2D", wrap: (below) => conv2d(dnnl, below, true) },
    {
      kernelName: "Conv2DBackpropInput",
      wrap: (below) => backpropInput(dnnl, below),
    },
    {
      kernelName: "Conv2DBackpropFilter",
      wrap: (below) => backpropFilter(dnnl, below),
    },
  ];
}

let uninstall: (() => void) | undefined;

/** Whether the oneDNN kernels are currently installed. */
export function dnnlKernelsInstalled(): boolean {
  return uninstall !== undefined;
}

/**
 * Layers the oneDNN kernels ({@linkcode dnnlKernelPatches}) over the wasm
 * backend's (and over the BLAS layers, when installed first), and registers
 * the training batch norm kernels (`_batch_norm.ts`). Idempotent.
 *
 * @throws {Error} When wasm lacks one of the kernels (nothing is installed).
 */
export function installDnnlKernels(dnnl: Dnnl): void {
  if (uninstall) return;
  const unpatch = applyPatches("wasm", dnnlKernelPatches(dnnl));
  const added = registerMissing(dnnlKernelConfigs(dnnl));
  uninstall = () => {
    for (const name of added) tf.unregisterKernel(name, "wasm");
    unpatch();
  };
}

/**
 * Removes the oneDNN layers, leaving the kernels below them as they were,
 * and the batch norm kernels.
 */
export function uninstallDnnlKernels(): void {
  uninstall?.();
  uninstall = undefined;
}
