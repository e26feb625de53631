/**
 * Gradient kernels the upstream wasm backend lacks, composed from kernels it
 * has (its matrix product) and loops over its heap
 * ({@linkcode WASM_TRAINING_KERNELS}: Conv2DBackpropFilter, both depthwise
 * gradients, UnsortedSegmentSum), and patches of its own kernels
 * ({@linkcode WASM_FIX_PATCHES}: BatchMatMul, _FusedMatMul, Conv2D,
 * FusedConv2D, Conv2DBackpropInput). Both are applied when the wasm backend
 * loads (`wasm.ts`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  biasActivation,
  col2imRows,
  type ConvGeometry,
  convInfoFromAttrs,
  geometry,
  im2colCols,
  im2colRows,
  isActivation,
  isPointwise,
} from "./_im2col.ts";
import { chunkRows } from "./_limits.ts";
import type { KernelPatch } from "./_patches.ts";
import {
  assertFloat32,
  assertNHWC,
  heapF32,
  heapI32,
  type KernelArgs,
  offsetOf,
  sizeOf,
  type WasmBackendLike,
} from "./_wasm_heap.ts";

type Attrs = Record<string, unknown>;

function attrs(args: KernelArgs): Attrs {
  return (args.attrs ?? {}) as Attrs;
}

function callKernel(
  name: string,
  backend: WasmBackendLike,
  inputs: tf.NamedTensorInfoMap,
  attrs: Attrs,
): tf.TensorInfo {
  const k = tf.getKernel(name, "wasm");
  if (!k) throw new Error(`Cannot run ${name} on wasm: kernel not registered`);
  return k.kernelFunc({
    inputs,
    backend: backend as unknown as tf.KernelBackend,
    attrs: attrs as tf.NamedAttrMap,
  }) as tf.TensorInfo;
}

/**
 * Filter gradient of a 2-D convolution: dW[K, co] = colsᵀ[K, P] · dy[P, co],
 * with the transposed patch matrix built on the heap in chunks of pixels and
 * the products run by the wasm backend's own (XNNPACK) matrix product.
 */
export function conv2dBackpropFilterPortable(
  backend: WasmBackendLike,
  x: tf.TensorInfo,
  dy: tf.TensorInfo,
  g: ConvGeometry,
  filterShape: number[],
): tf.TensorInfo {
  const P = g.n * g.oh * g.ow;
  const K = g.kh * g.kw * g.c;
  const chunk = chunkRows(K, P);
  let result: tf.TensorInfo | undefined;
  for (let p0 = 0; p0 < P; p0 += chunk) {
    const p1 = Math.min(P, p0 + chunk);
    const len = p1 - p0;
    const cols = backend.makeOutput([K, len], "float32");
    let dyPart: tf.TensorInfo;
    let ownDy = false;
    if (len === P) {
      dyPart = { dataId: dy.dataId, shape: [P, g.co], dtype: "float32" };
    } else {
      dyPart = backend.makeOutput([len, g.co], "float32");
      ownDy = true;
    }
    const heap = heapF32(backend);
    im2colCols(
      heap,
      offsetOf(backend, x),
      g,
      p0,
      p1,
      heap,
      offsetOf(backend, cols),
      len,
    );
    if (ownDy) {
      const s = offsetOf(backend, dy) + p0 * g.co;
      heap.copyWithin(offsetOf(backend, dyPart), s, s + len * g.co);
    }
    const part = callKernel("BatchMatMul", backend, { a: cols, b: dyPart }, {
      transposeA: false,
      transposeB: false,
    });
    backend.disposeData(cols.dataId);
    if (ownDy) backend.disposeData(dyPart.dataId);
    if (!result) {
      result = part;
    } else {
      const h = heapF32(backend);
      const r = offsetOf(backend, result);
      const q = offsetOf(backend, part);
      for (let i = 0; i < K * g.co; i++) h[r + i] = h[r + i]! + h[q + i]!;
      backend.disposeData(part.dataId);
    }
  }
  if (!result) {
    result = backend.makeOutput(filterShape, "float32");
    const h = heapF32(backend);
    const r = offsetOf(backend, result);
    h.fill(0, r, r + sizeOf(filterShape));
  }
  return { dataId: result.dataId, shape: filterShape, dtype: "float32" };
}

function conv2dBackpropFilter(args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const a = attrs(args);
  assertFloat32("Conv2DBackpropFilter", x);
  assertNHWC("Conv2DBackpropFilter", a.dataFormat);
  const filterShape = a.filterShape as [number, number, number, number];
  const info = convInfoFromAttrs(x.shape, filterShape, a);
  return conv2dBackpropFilterPortable(backend, x, dy, geometry(info), [
    ...filterShape,
  ]);
}

/** Visits every (output pixel, filter tap) pair whose input lies inside. */
function forEachTap(
  g: ConvGeometry,
  fn: (
    b: number,
    oy: number,
    ox: number,
    iy: number,
    ix: number,
    tap: number,
  ) => void,
): void {
  for (let b = 0; b < g.n; b++) {
    for (let oy = 0; oy < g.oh; oy++) {
      for (let ky = 0; ky < g.kh; ky++) {
        const iy = oy * g.sh - g.top + ky * g.dh;
        if (iy < 0 || iy >= g.h) continue;
        for (let ox = 0; ox < g.ow; ox++) {
          for (let kx = 0; kx < g.kw; kx++) {
            const ix = ox * g.sw - g.left + kx * g.dw;
            if (ix < 0 || ix >= g.w) continue;
            fn(b, oy, ox, iy, ix, ky * g.kw + kx);
          }
        }
      }
    }
  }
}

function depthwiseBackpropInput(args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const { dy, filter } = args.inputs as {
    dy: tf.TensorInfo;
    filter: tf.TensorInfo;
  };
  const a = attrs(args);
  assertFloat32("DepthwiseConv2dNativeBackpropInput", dy);
  const inputShape = a.inputShape as number[];
  const info = convInfoFromAttrs(inputShape, filter.shape, a, true);
  const g = geometry(info);
  const mult = filter.shape[3]!;
  const out = backend.makeOutput([...inputShape], "float32");
  const h = heapF32(backend);
  const dx = offsetOf(backend, out);
  const dyo = offsetOf(backend, dy);
  const fo = offsetOf(backend, filter);
  h.fill(0, dx, dx + sizeOf(inputShape));
  const { c, co } = g;
  forEachTap(g, (b, oy, ox, iy, ix, tap) => {
    const xi = dx + ((b * g.h + iy) * g.w + ix) * c;
    const yi = dyo + ((b * g.oh + oy) * g.ow + ox) * co;
    const fi = fo + tap * c * mult;
    for (let ci = 0; ci < c; ci++) {
      let s = 0;
      for (let m = 0; m < mult; m++) {
        s += h[yi + ci * mult + m]! * h[fi + ci * mult + m]!;
      }
      h[xi + ci] = h[xi + ci]! + s;
    }
  });
  return out;
}

function depthwiseBackpropFilter(args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const a = attrs(args);
  assertFloat32("DepthwiseConv2dNativeBackpropFilter", x);
  const filterShape = a.filterShape as number[];
  const info = convInfoFromAttrs(x.shape, filterShape, a, true);
  const g = geometry(info);
  const mult = filterShape[3]!;
  const out = backend.makeOutput([...filterShape], "float32");
  const h = heapF32(backend);
  const dw = offsetOf(backend, out);
  const xo = offsetOf(backend, x);
  const dyo = offsetOf(backend, dy);
  h.fill(0, dw, dw + sizeOf(filterShape));
  const { c, co } = g;
  forEachTap(g, (b, oy, ox, iy, ix, tap) => {
    const xi = xo + ((b * g.h + iy) * g.w + ix) * c;
    const yi = dyo + ((b * g.oh + oy) * g.ow + ox) * co;
    const fi = dw + tap * c * mult;
    for (let ci = 0; ci < c; ci++) {
      const xv = h[xi + ci]!;
      for (let m = 0; m < mult; m++) {
        h[fi + ci * mult + m] = h[fi + ci * mult + m]! +
          xv * h[yi + ci * mult + m]!;
      }
    }
  });
  return out;
}

function unsortedSegmentSum(args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const { x, segmentIds } = args.inputs as {
    x: tf.TensorInfo;
    segmentIds: tf.TensorInfo;
  };
  const numSegments = attrs(args).numSegments as number;
  if (x.dtype !== "float32" && x.dtype !== "int32") {
    throw new TypeError(
      `UnsortedSegmentSum on wasm expects float32 or int32 data: found ${x.dtype}`,
    );
  }
  const nIds = sizeOf(segmentIds.shape);
  const inner = nIds === 0 ? 0 : sizeOf(x.shape) / nIds;
  const outShape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
  const out = backend.makeOutput(outShape, x.dtype);
  const h = x.dtype === "float32" ? heapF32(backend) : heapI32(backend);
  const ids = heapI32(backend);
  const o = offsetOf(backend, out);
  const xo = offsetOf(backend, x);
  const io = offsetOf(backend, segmentIds);
  h.fill(0, o, o + numSegments * inner);
  for (let i = 0; i < nIds; i++) {
    const s = ids[io + i]!;
    if (s < 0 || s >= numSegments) continue;
    const d = o + s * inner;
    const src = xo + i * inner;
    for (let j = 0; j < inner; j++) h[d + j] = h[d + j]! + h[src + j]!;
  }
  return out;
}

function transposeLast2(
  backend: WasmBackendLike,
  t: tf.TensorInfo,
): tf.TensorInfo {
  const rank = t.shape.length;
  const perm = [...Array(rank).keys()];
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  return callKernel("Transpose", backend, { x: t }, { perm });
}

/**
 * Matrix product that never asks XNNPACK for a transposed operand where it
 * misbehaves: a transposed left operand (a slow path, 25× slower) and, for
 * the fused product, a transposed right one (wrong results for small
 * matrices). Transposes those operands first with the Transpose kernel.
 */
function matMulExplicitTranspose(
  original: tf.KernelFunc,
  fused: boolean,
): tf.KernelFunc {
  return (args) => {
    const a = attrs(args as KernelArgs);
    const tA = Boolean(a.transposeA);
    const tB = fused && Boolean(a.transposeB);
    if (!tA && !tB) return original(args);
    const backend = args.backend as unknown as WasmBackendLike;
    const made: tf.TensorInfo[] = [];
    const inputs = { ...args.inputs };
    if (tA) made.push(inputs.a = transposeLast2(backend, inputs.a!));
    if (tB) made.push(inputs.b = transposeLast2(backend, inputs.b!));
    try {
      return original({
        ...args,
        inputs,
        attrs: {
          ...a,
          transposeA: false,
          transposeB: tB ? false : Boolean(a.transposeB),
        } as tf.NamedAttrMap,
      });
    } finally {
      for (const t of made) backend.disposeData(t.dataId);
    }
  };
}

/** Forward convolution as patch matrix × filter, by the wasm matrix product. */
function conv2dPortable(
  backend: WasmBackendLike,
  x: tf.TensorInfo,
  filter: tf.TensorInfo,
  g: ConvGeometry,
): tf.TensorInfo {
  const P = g.n * g.oh * g.ow;
  const K = g.kh * g.kw * g.c;
  const cols = backend.makeOutput([P, K], "float32");
  const heap = heapF32(backend);
  im2colRows(
    heap,
    offsetOf(backend, x),
    g,
    0,
    P,
    heap,
    offsetOf(backend, cols),
  );
  const out = callKernel("BatchMatMul", backend, {
    a: cols,
    b: { dataId: filter.dataId, shape: [K, g.co], dtype: "float32" },
  }, { transposeA: false, transposeB: false });
  backend.disposeData(cols.dataId);
  return {
    dataId: out.dataId,
    shape: [g.n, g.oh, g.ow, g.co],
    dtype: "float32",
  };
}

/** XNNPACK returns zeros for a padded convolution whose stride exceeds the filter. */
function xnnpackMisbehaves(g: ConvGeometry): boolean {
  return g.sh > g.kh || g.sw > g.kw;
}

/** Conv2D and FusedConv2D that route XNNPACK's broken case around it. */
function convFixed(original: tf.KernelFunc, fused: boolean): tf.KernelFunc {
  return (args) => {
    const a = attrs(args as KernelArgs);
    const { x, filter, bias, preluActivationWeights } = args.inputs as Record<
      string,
      tf.TensorInfo | undefined
    >;
    if (
      !x || !filter || x.dtype !== "float32" ||
      (a.dataFormat ?? "NHWC") !== "NHWC"
    ) {
      return original(args);
    }
    const g = geometry(convInfoFromAttrs(x.shape, filter.shape, a));
    if (!xnnpackMisbehaves(g)) return original(args);
    if (fused && (preluActivationWeights || !isActivation(a.activation))) {
      return original(args);
    }
    if (fused && bias && (bias.shape.length !== 1 || bias.shape[0] !== g.co)) {
      return original(args);
    }
    const backend = args.backend as unknown as WasmBackendLike;
    const out = conv2dPortable(backend, x, filter, g);
    if (fused) {
      const h = heapF32(backend);
      biasActivation(
        h,
        offsetOf(backend, out),
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

/**
 * Input gradient of a 2-D convolution as dcols[P, K] = dy[P, co] · Wᵀ by the
 * wasm matrix product, scattered back with col2im (upstream's kernel is a
 * direct loop, 40× slower on ResNet layers). Handles dilations.
 */
function backpropInputPortable(original: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const a = attrs(args as KernelArgs);
    const { dy, filter } = args.inputs as {
      dy: tf.TensorInfo;
      filter: tf.TensorInfo;
    };
    if (dy.dtype !== "float32" || (a.dataFormat ?? "NHWC") !== "NHWC") {
      return original(args);
    }
    const inputShape = a.inputShape as number[];
    const g = geometry(convInfoFromAttrs(inputShape, filter.shape, a));
    const backend = args.backend as unknown as WasmBackendLike;
    const P = g.n * g.oh * g.ow;
    const K = g.kh * g.kw * g.c;
    if (P === 0 || K === 0 || g.co === 0) return original(args);
    // Wᵀ [co, K], so that the products need no transposed operand.
    const wt = callKernel("Transpose", backend, {
      x: { dataId: filter.dataId, shape: [K, g.co], dtype: "float32" },
    }, { perm: [1, 0] });
    try {
      if (isPointwise(g)) {
        const out = callKernel("BatchMatMul", backend, {
          a: { dataId: dy.dataId, shape: [P, g.co], dtype: "float32" },
          b: wt,
        }, { transposeA: false, transposeB: false });
        return { dataId: out.dataId, shape: [...inputShape], dtype: "float32" };
      }
      const dx = backend.makeOutput([...inputShape], "float32");
      let h = heapF32(backend);
      const dxo = offsetOf(backend, dx);
      h.fill(0, dxo, dxo + sizeOf(inputShape));
      const chunk = chunkRows(K, P);
      for (let p0 = 0; p0 < P; p0 += chunk) {
        const p1 = Math.min(P, p0 + chunk);
        const len = p1 - p0;
        let part: tf.TensorInfo;
        if (len === P) {
          part = { dataId: dy.dataId, shape: [P, g.co], dtype: "float32" };
        } else {
          part = backend.makeOutput([len, g.co], "float32");
          h = heapF32(backend);
          const s = offsetOf(backend, dy) + p0 * g.co;
          h.copyWithin(offsetOf(backend, part), s, s + len * g.co);
        }
        const cols = callKernel("BatchMatMul", backend, { a: part, b: wt }, {
          transposeA: false,
          transposeB: false,
        });
        if (len !== P) backend.disposeData(part.dataId);
        h = heapF32(backend);
        col2imRows(
          h,
          offsetOf(backend, cols),
          g,
          p0,
          p1,
          h,
          offsetOf(backend, dx),
        );
        backend.disposeData(cols.dataId);
      }
      return dx;
    } finally {
      backend.disposeData(wt.dataId);
    }
  };
}

/**
 * Training kernels the wasm backend lacks upstream, as kernel configs (to
 * register where missing).
 */
export const WASM_TRAINING_KERNELS: readonly tf.KernelConfig[] = [
  ["Conv2DBackpropFilter", conv2dBackpropFilter],
  ["DepthwiseConv2dNativeBackpropInput", depthwiseBackpropInput],
  ["DepthwiseConv2dNativeBackpropFilter", depthwiseBackpropFilter],
  ["UnsortedSegmentSum", unsortedSegmentSum],
].map(([kernelName, f]) => ({
  kernelName: kernelName as string,
  backendName: "wasm",
  kernelFunc: f as unknown as tf.KernelFunc,
}));

/**
 * Patches over the wasm backend's own kernels: its matrix products'
 * transposed cases routed around XNNPACK's slow or wrong paths, its
 * convolutions with a stride larger than the filter (where XNNPACK returns
 * zeros) through a patch-matrix product, and its convolution input gradient
 * as a matrix product plus col2im.
 */
export const WASM_FIX_PATCHES: readonly KernelPatch[] = [
  {
    kernelName: "BatchMatMul",
    wrap: (below) => matMulExplicitTranspose(below, false),
  },
  {
    kernelName: "_FusedMatMul",
    wrap: (below) => matMulExplicitTranspose(below, true),
  },
  { kernelName: "Conv2D", wrap: (below) => convFixed(below, false) },
  { kernelName: "FusedConv2D", wrap: (below) => convFixed(below, true) },
  { kernelName: "Conv2DBackpropInput", wrap: backpropInputPortable },
];
