/**
 * Wasm kernels whose matrix products run in a native BLAS (through FFI,
 * directly on the wasm heap): Conv2D, FusedConv2D, Conv2DBackpropInput and
 * Conv2DBackpropFilter (patch matrix × filter by gemm), BatchMatMul and
 * _FusedMatMul (gemm per batch), and Sum and Mean over every axis but the
 * last (onesᵀ·X by gemv). Small products and unsupported cases fall through
 * to the kernel below. {@linkcode installBlasKernels} layers them over the
 * wasm backend's kernels (see `_patches.ts`);
 * {@linkcode uninstallBlasKernels} removes exactly those layers.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Blas } from "./_blas.ts";
import { routeDilatedGrads } from "./_dilated_grads.ts";
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
import { chunkRows, MIN_BLAS_WORK } from "./_limits.ts";
import { applyPatches, type KernelPatch, type KernelWrap } from "./_patches.ts";
import { reduceLeading } from "./_wasm_fast.ts";
import {
  heapF32,
  offsetOf,
  sizeOf,
  type WasmBackendLike,
} from "./_wasm_heap.ts";

let scratch = new Float32Array(0);

function scratchOf(n: number): Float32Array {
  if (scratch.length < n) scratch = new Float32Array(Math.max(n, 1 << 16));
  return scratch;
}

type Attrs = Record<string, unknown>;

function nhwc(a: Attrs): boolean {
  return a.dataFormat === undefined || a.dataFormat === "NHWC";
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
    blas.gemm({
      m: P,
      n: g.co,
      k: K,
      a: h.subarray(xo),
      b: w,
      c: h.subarray(oo),
    });
    return;
  }
  const rows = chunkRows(K, P);
  const s = scratchOf(rows * K);
  for (let p0 = 0; p0 < P; p0 += rows) {
    const p1 = Math.min(P, p0 + rows);
    im2colRows(h, xo, g, p0, p1, s, 0);
    blas.gemm({
      m: p1 - p0,
      n: g.co,
      k: K,
      a: s,
      b: w,
      c: h.subarray(oo + p0 * g.co),
    });
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
    if (g.n * g.oh * g.ow * g.kh * g.kw * g.c * g.co < MIN_BLAS_WORK) {
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
    if (P * K * g.co < MIN_BLAS_WORK && (a.dilations ?? 1) === 1) {
      return original(args);
    }
    const backend = args.backend as unknown as WasmBackendLike;
    const out = backend.makeOutput([...inputShape], "float32");
    const h = heapF32(backend);
    const dxo = offsetOf(backend, out);
    const dyo = offsetOf(backend, dy);
    const w = h.subarray(offsetOf(backend, filter));
    if (isPointwise(g) && P > 0) {
      // dx[P, c] = dy[P, co] · Wᵀ (W is [c, co] for a 1×1 filter)
      blas.gemm({
        transB: true,
        m: P,
        n: g.c,
        k: g.co,
        a: h.subarray(dyo),
        b: w,
        c: h.subarray(dxo),
      });
      return out;
    }
    h.fill(0, dxo, dxo + sizeOf(inputShape));
    if (P === 0 || K === 0) return out;
    const rows = chunkRows(K, P);
    const s = scratchOf(rows * K);
    for (let p0 = 0; p0 < P; p0 += rows) {
      const p1 = Math.min(P, p0 + rows);
      // dcols[rows, K] = dy[rows, co] · Wᵀ
      blas.gemm({
        transB: true,
        m: p1 - p0,
        n: K,
        k: g.co,
        a: h.subarray(dyo + p0 * g.co),
        b: w,
        c: s,
      });
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
      // dW[c, co] = xᵀ · dy (x is its own patch matrix for a 1×1 filter)
      blas.gemm({
        transA: true,
        m: K,
        n: g.co,
        k: P,
        a: h.subarray(xo),
        b: h.subarray(dyo),
        c: dw,
      });
      return out;
    }
    const rows = chunkRows(K, P);
    const s = scratchOf(rows * K);
    for (let p0 = 0; p0 < P; p0 += rows) {
      const p1 = Math.min(P, p0 + rows);
      im2colRows(h, xo, g, p0, p1, s, 0);
      // dW[K, co] += colsᵀ · dy over the chunks
      blas.gemm({
        transA: true,
        m: K,
        n: g.co,
        k: p1 - p0,
        a: s,
        b: h.subarray(dyo + p0 * g.co),
        c: dw,
        beta: p0 === 0 ? 0 : 1,
      });
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
        blas.gemm({
          transA: tA,
          transB: tB,
          m,
          n,
          k,
          a: h.subarray(ao + (batchA === 1 ? 0 : i * m * k)),
          b: h.subarray(bo + (batchB === 1 ? 0 : i * k * n)),
          c: h.subarray(oo + i * m * n),
        });
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

/** Sum / Mean over every axis but the last as onesᵀ·X (gemv, threaded). */
function reduceLeadingBlas(blas: Blas, mean: boolean): KernelWrap {
  return (below) =>
    reduceLeading(below, {
      mean,
      minElements: MIN_BLAS_WORK,
      sumRows({ x, out, rows, c, scale }) {
        if (ones.length < rows) {
          ones = new Float32Array(Math.max(rows, 1 << 16)).fill(1);
        }
        blas.gemv({
          transA: true,
          m: rows,
          n: c,
          alpha: scale,
          a: x,
          x: ones,
          y: out,
        });
      },
    });
}

/**
 * The BLAS patch table: each wrap closes over the opened library, so the
 * table is built per library.
 */
export function blasKernelPatches(blas: Blas): KernelPatch[] {
  return [
    { kernelName: "Conv2D", wrap: (below) => conv2d(blas, below, false) },
    { kernelName: "FusedConv2D", wrap: (below) => conv2d(blas, below, true) },
    {
      kernelName: "Conv2DBackpropInput",
      wrap: (below) => backpropInput(blas, below),
    },
    {
      kernelName: "Conv2DBackpropFilter",
      wrap: (below) => backpropFilter(blas, below),
    },
    { kernelName: "BatchMatMul", wrap: (below) => matMul(blas, below, false) },
    { kernelName: "_FusedMatMul", wrap: (below) => matMul(blas, below, true) },
    { kernelName: "Sum", wrap: reduceLeadingBlas(blas, false) },
    { kernelName: "Mean", wrap: reduceLeadingBlas(blas, true) },
  ];
}

let uninstall: (() => void) | undefined;

/** Whether the BLAS kernels are currently installed. */
export function blasKernelsInstalled(): boolean {
  return uninstall !== undefined;
}

/**
 * Layers the BLAS-backed kernels ({@linkcode blasKernelPatches}) over the
 * wasm backend's. Call after the wasm backend is initialised (the kernels
 * below must have run their setup, as unsupported cases and tiny products
 * fall back to them). Idempotent.
 *
 * @throws {Error} When wasm lacks one of the kernels (nothing is installed).
 */
export function installBlasKernels(blas: Blas): void {
  if (uninstall) return;
  uninstall = applyPatches("wasm", blasKernelPatches(blas));
  // Both convolution gradients now honour `dilations` in one product (and
  // the oneDNN layers, installed above these, too).
  routeDilatedGrads("wasm", true);
}

/** Removes the BLAS layers, leaving the kernels below them as they were. */
export function uninstallBlasKernels(): void {
  uninstall?.();
  uninstall = undefined;
  routeDilatedGrads("wasm", false);
}
