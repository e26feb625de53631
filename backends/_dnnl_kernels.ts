/**
 * Wasm convolution kernels that run on oneDNN (through FFI, directly on the
 * wasm heap): Conv2D, FusedConv2D (oneDNN's convolution, then the bias and
 * activation in place), Conv2DBackpropInput and Conv2DBackpropFilter, with
 * strides, explicit or computed padding and dilations (a `dilations`
 * attribute is honoured by both gradients, as by the BLAS kernels). Tiny
 * convolutions, other data formats and shapes oneDNN refuses fall through
 * to the kernel below (the BLAS layer when installed, else the wasm
 * backend's own). {@linkcode installDnnlKernels} layers them over the wasm
 * backend's kernels (see `_patches.ts`), above the BLAS layers;
 * {@linkcode uninstallDnnlKernels} removes exactly those layers.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import type { Dnnl, DnnlConv, Pointer } from "./_dnnl.ts";
import {
  biasActivation,
  convInfoFromAttrs,
  geometry,
  isActivation,
} from "./_im2col.ts";
import { limits } from "./_limits.ts";
import { applyPatches, type KernelPatch } from "./_patches.ts";
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
 * backend's (and over the BLAS layers, when installed first). Idempotent.
 *
 * @throws {Error} When wasm lacks one of the kernels (nothing is installed).
 */
export function installDnnlKernels(dnnl: Dnnl): void {
  if (uninstall) return;
  uninstall = applyPatches("wasm", dnnlKernelPatches(dnnl));
}

/** Removes the oneDNN layers, leaving the kernels below them as they were. */
export function uninstallDnnlKernels(): void {
  uninstall?.();
  uninstall = undefined;
}
