/**
 * Wasm kernels whose matrix products run in a native BLAS (through FFI,
 * directly on the wasm heap): Conv2D, FusedConv2D, Conv2DBackpropInput,
 * Conv2DBackpropFilter (patch matrix + sgemm), BatchMatMul and _FusedMatMul.
 * {@linkcode installBlasKernels} swaps them in over the wasm backend's own;
 * {@linkcode uninstallBlasKernels} restores those.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Blas } from "./_blas.ts";
import {
  biasActivation,
  col2imRows,
  type ConvGeometry,
  convInfoFromAttrs,
  geometry,
  im2colRows,
  isActivation,
  isPointwise,
} from "./_im2col.ts";
import {
  heapF32,
  offsetOf,
  sizeOf,
  type WasmBackendLike,
} from "./_wasm_heap.ts";
import { limits } from "./_wasm_kernels.ts";

/** Kernel names {@linkcode installBlasKernels} replaces on wasm. */
export const BLAS_KERNELS: readonly string[] = [
  "Conv2D",
  "FusedConv2D",
  "Conv2DBackpropInput",
  "Conv2DBackpropFilter",
  "BatchMatMul",
  "_FusedMatMul",
  "Sum",
  "Mean",
];

/** Products smaller than this many multiply-adds stay on XNNPACK. */
const MIN_MACS = 1 << 14;

let scratch = new Float32Array(0);

function scratchOf(n: number): Float32Array {
  if (scratch.length < n) scratch = new Float32Array(Math.max(n, 1 << 16));
  return scratch;
}

type Attrs = Record<string, unknown>;

function nhwc(a: Attrs): boolean {
  return a.dataFormat === undefined || a.dataFormat === "NHWC";
}

function chunkRows(K: number, P: number): number {
  return Math.max(1, Math.min(P, Math.floor(limits.chunkFloats / K)));
}

/** out[P, co] = patches(x)[P, K] · W[K, co], written to the heap at `oo`. */
function convForward(
  blas: Blas,
  h: Float32Array,
  xo: number,
  fo: number,
  oo: number,
  g: ConvGeometry,
): void {
  const P = g.n * g.oh * g.ow;
  const K = g.kh * g.kw * g.c;
  if (P === 0) return;
  if (K === 0) {
    h.fill(0, oo, oo + P * g.co);
    return;
  }
  const w = h.subarray(fo);
  if (isPointwise(g)) {
    blas.sgemm(
      false,
      false,
      P,
      g.co,
      K,
      1,
      h.subarray(xo),
      K,
      w,
      g.co,
      0,
      h.subarray(oo),
      g.co,
    );
    return;
  }
  const rows = chunkRows(K, P);
  const s = scratchOf(rows * K);
  for (let p0 = 0; p0 < P; p0 += rows) {
    const p1 = Math.min(P, p0 + rows);
    im2colRows(h, xo, g, p0, p1, s, 0);
    blas.sgemm(
      false,
      false,
      p1 - p0,
      g.co,
      K,
      1,
      s,
      K,
      w,
      g.co,
      0,
      h.subarray(oo + p0 * g.co),
      g.co,
    );
  }
}

function conv2d(
  blas: Blas,
  original: tf.KernelFunc,
  fused: boolean,
): tf.KernelFunc {
  return (args) => {
    const a = (args.attrs ?? {}) as Attrs;
    const { x, filter, bias, preluActivationWeights } = args.inputs as Record<
      string,
      tf.TensorInfo | undefined
    >;
    if (!x || !filter || x.dtype !== "float32" || !nhwc(a)) {
      return original(args);
    }
    const g = geometry(convInfoFromAttrs(x.shape, filter.shape, a));
    if (fused) {
      if (preluActivationWeights || !isActivation(a.activation)) {
        return original(args);
      }
      if (bias && (sizeOf(bias.shape) !== g.co || bias.shape.length !== 1)) {
        return original(args);
      }
    }
    if (g.n * g.oh * g.ow * g.kh * g.kw * g.c * g.co < MIN_MACS) {
      const broken = g.sh > g.kh || g.sw > g.kw; // XNNPACK's zero-output case
      if (!broken) return original(args);
    }
    const backend = args.backend as unknown as WasmBackendLike;
    const out = backend.makeOutput([g.n, g.oh, g.ow, g.co], "float32");
    const h = heapF32(backend);
    const oo = offsetOf(backend, out);
    convForward(
      blas,
      h,
      offsetOf(backend, x),
      offsetOf(backend, filter),
      oo,
      g,
    );
    if (fused) {
      biasActivation(
        h,
        oo,
        g.n * g.oh * g.ow,
        g.co,
        bias ? offsetOf(backend, bias) : -1,
        a.activation as "relu",
        a.leakyreluAlpha as number | undefined,
      );
    }
    return out;
  };
}

function backpropInput(blas: Blas, original: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const a = (args.attrs ?? {}) as Attrs;
    const { dy, filter } = args.inputs as {
      dy: tf.TensorInfo;
      filter: tf.TensorInfo;
    };
    if (dy.dtype !== "float32" || !nhwc(a)) return original(args);
    const inputShape = a.inputShape as number[];
    const g = geometry(convInfoFromAttrs(inputShape, filter.shape, a));
    const P = g.n * g.oh * g.ow;
    const K = g.kh * g.kw * g.c;
    if (P * K * g.co < MIN_MACS && (a.dilations ?? 1) === 1) {
      return original(args);
    }
    const backend = args.backend as unknown as WasmBackendLike;
    const out = backend.makeOutput([...inputShape], "float32");
    const h = heapF32(backend);
    const dxo = offsetOf(backend, out);
    const dyo = offsetOf(backend, dy);
    const w = h.subarray(offsetOf(backend, filter));
    if (isPointwise(g) && P > 0) {
      blas.sgemm(
        false,
        true,
        P,
        g.c,
        g.co,
        1,
        h.subarray(dyo),
        g.co,
        w,
        g.co,
        0,
        h.subarray(dxo),
        g.c,
      );
      return out;
    }
    h.fill(0, dxo, dxo + sizeOf(inputShape));
    if (P === 0 || K === 0) return out;
    const rows = chunkRows(K, P);
    const s = scratchOf(rows * K);
    for (let p0 = 0; p0 < P; p0 += rows) {
      const p1 = Math.min(P, p0 + rows);
      blas.sgemm(
        false,
        true,
        p1 - p0,
        K,
        g.co,
        1,
        h.subarray(dyo + p0 * g.co),
        g.co,
        w,
        g.co,
        0,
        s,
        K,
      );
      col2imRows(s, 0, g, p0, p1, h, dxo);
    }
    return out;
  };
}

function backpropFilter(blas: Blas, original: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const a = (args.attrs ?? {}) as Attrs;
    const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
    if (x.dtype !== "float32" || !nhwc(a)) return original(args);
    const filterShape = a.filterShape as number[];
    const g = geometry(convInfoFromAttrs(x.shape, filterShape, a));
    const P = g.n * g.oh * g.ow;
    const K = g.kh * g.kw * g.c;
    const backend = args.backend as unknown as WasmBackendLike;
    const out = backend.makeOutput([...filterShape], "float32");
    const h = heapF32(backend);
    const dwo = offsetOf(backend, out);
    const dyo = offsetOf(backend, dy);
    const xo = offsetOf(backend, x);
    if (P === 0 || K === 0 || g.co === 0) {
      h.fill(0, dwo, dwo + sizeOf(filterShape));
      return out;
    }
    const dw = h.subarray(dwo);
    if (isPointwise(g)) {
      blas.sgemm(
        true,
        false,
        K,
        g.co,
        P,
        1,
        h.subarray(xo),
        K,
        h.subarray(dyo),
        g.co,
        0,
        dw,
        g.co,
      );
      return out;
    }
    const rows = chunkRows(K, P);
    const s = scratchOf(rows * K);
    for (let p0 = 0; p0 < P; p0 += rows) {
      const p1 = Math.min(P, p0 + rows);
      im2colRows(h, xo, g, p0, p1, s, 0);
      blas.sgemm(
        true,
        false,
        K,
        g.co,
        p1 - p0,
        1,
        s,
        K,
        h.subarray(dyo + p0 * g.co),
        g.co,
        p0 === 0 ? 0 : 1,
        dw,
        g.co,
      );
    }
    return out;
  };
}

function matMul(
  blas: Blas,
  original: tf.KernelFunc,
  fused: boolean,
): tf.KernelFunc {
  return (args) => {
    const at = (args.attrs ?? {}) as Attrs;
    const { a, b, bias, preluActivationWeights } = args.inputs as Record<
      string,
      tf.TensorInfo | undefined
    >;
    if (!a || !b || a.dtype !== "float32" || b.dtype !== "float32") {
      return original(args);
    }
    const tA = Boolean(at.transposeA);
    const tB = Boolean(at.transposeB);
    const ra = a.shape.length;
    const rb = b.shape.length;
    if (ra < 2 || rb < 2) return original(args);
    const m = tA ? a.shape[ra - 1]! : a.shape[ra - 2]!;
    const k = tA ? a.shape[ra - 2]! : a.shape[ra - 1]!;
    const kb = tB ? b.shape[rb - 1]! : b.shape[rb - 2]!;
    const n = tB ? b.shape[rb - 2]! : b.shape[rb - 1]!;
    if (k !== kb) return original(args); // let the original raise its error
    const batchA = sizeOf(a.shape.slice(0, -2));
    const batchB = sizeOf(b.shape.slice(0, -2));
    if (batchA !== batchB && batchA !== 1 && batchB !== 1) {
      return original(args);
    }
    const outer = tf.backend_util.assertAndGetBroadcastShape(
      a.shape.slice(0, -2),
      b.shape.slice(0, -2),
    );
    const batch = Math.max(batchA, batchB);
    if (sizeOf(outer) !== batch) return original(args);
    if (fused) {
      if (preluActivationWeights || !isActivation(at.activation)) {
        return original(args);
      }
      if (
        bias &&
        (sizeOf(bias.shape) !== n || bias.shape[bias.shape.length - 1] !== n)
      ) {
        return original(args);
      }
    }
    const backend = args.backend as unknown as WasmBackendLike;
    const out = backend.makeOutput([...outer, m, n], "float32");
    const h = heapF32(backend);
    const ao = offsetOf(backend, a);
    const bo = offsetOf(backend, b);
    const oo = offsetOf(backend, out);
    if (k === 0) {
      h.fill(0, oo, oo + batch * m * n);
    } else if (m > 0 && n > 0) {
      for (let i = 0; i < batch; i++) {
        blas.sgemm(
          tA,
          tB,
          m,
          n,
          k,
          1,
          h.subarray(ao + (batchA === 1 ? 0 : i * m * k)),
          tA ? m : k,
          h.subarray(bo + (batchB === 1 ? 0 : i * k * n)),
          tB ? k : n,
          0,
          h.subarray(oo + i * m * n),
          n,
        );
      }
    }
    if (fused) {
      biasActivation(
        h,
        oo,
        batch * m,
        n,
        bias ? offsetOf(backend, bias) : -1,
        at.activation as "relu",
        at.leakyreluAlpha as number | undefined,
      );
    }
    return out;
  };
}

let ones = new Float32Array(0);

/** Sum / Mean over every axis but the last as onesᵀ·X (sgemv, threaded). */
function reduceLeading(
  blas: Blas,
  original: tf.KernelFunc,
  mean: boolean,
): tf.KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const a = (args.attrs ?? {}) as Attrs;
    const axisAttr = a.axis as number | number[];
    const axes = (Array.isArray(axisAttr) ? axisAttr : [axisAttr]).map((v) =>
      v < 0 ? v + x.shape.length : v
    ).sort((p, q) => p - q);
    const rank = x.shape.length;
    const leading = rank >= 2 && axes.length === rank - 1 &&
      axes.every((v, i) => v === i);
    const c = x.shape[rank - 1] ?? 0;
    const rows = c > 0 ? sizeOf(x.shape) / c : 0;
    if (x.dtype !== "float32" || !leading || rows * c < 1 << 14) {
      return original(args);
    }
    const backend = args.backend as unknown as WasmBackendLike;
    const outShape = a.keepDims
      ? [...x.shape.slice(0, -1).map(() => 1), c]
      : [c];
    const out = backend.makeOutput(outShape, "float32");
    if (ones.length < rows) {
      ones = new Float32Array(Math.max(rows, 1 << 16)).fill(1);
    }
    const h = heapF32(backend);
    blas.sgemv(
      true,
      rows,
      c,
      mean ? 1 / rows : 1,
      h.subarray(offsetOf(backend, x)),
      c,
      ones,
      0,
      h.subarray(offsetOf(backend, out)),
    );
    return out;
  };
}

let originals: Map<string, tf.KernelConfig> | undefined;

/** Whether the BLAS kernels are currently installed. */
export function blasKernelsInstalled(): boolean {
  return originals !== undefined;
}

/**
 * Replaces the wasm backend's heavy kernels with BLAS-backed ones. Call after
 * the wasm backend is initialised (the originals' setup must have run, as
 * unsupported cases and tiny products fall back to them).
 */
export function installBlasKernels(blas: Blas): void {
  if (originals) return;
  const saved = new Map<string, tf.KernelConfig>();
  for (const name of BLAS_KERNELS) {
    const k = tf.getKernel(name, "wasm");
    if (!k) throw new Error(`Cannot install BLAS kernels: wasm lacks ${name}`);
    saved.set(name, k);
  }
  const make: Record<string, (o: tf.KernelFunc) => tf.KernelFunc> = {
    Conv2D: (o) => conv2d(blas, o, false),
    FusedConv2D: (o) => conv2d(blas, o, true),
    Conv2DBackpropInput: (o) => backpropInput(blas, o),
    Conv2DBackpropFilter: (o) => backpropFilter(blas, o),
    BatchMatMul: (o) => matMul(blas, o, false),
    _FusedMatMul: (o) => matMul(blas, o, true),
    Sum: (o) => reduceLeading(blas, o, false),
    Mean: (o) => reduceLeading(blas, o, true),
  };
  for (const [name, k] of saved) {
    tf.unregisterKernel(name, "wasm");
    tf.registerKernel({
      kernelName: name,
      backendName: "wasm",
      kernelFunc: make[name]!(k.kernelFunc),
    });
  }
  originals = saved;
}

/** Restores the wasm backend's own kernels. */
export function uninstallBlasKernels(): void {
  if (!originals) return;
  for (const [name, k] of originals) {
    tf.unregisterKernel(name, "wasm");
    tf.registerKernel(k);
  }
  originals = undefined;
}
