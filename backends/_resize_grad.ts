/**
 * Gradient kernels of bilinear and nearest-neighbour resizing
 * (`ResizeBilinearGrad`, `ResizeNearestNeighborGrad`), registered in place
 * of TensorFlow.js 4.22's where those are wrong:
 *
 * - cpu's `ResizeBilinearGrad` fills a correct `[batch, height, width,
 *   depth]` buffer but labels it `[batch, width, height, depth]`
 *   (tfjs-backend-cpu/src/kernels/ResizeBilinearGrad.ts, still so upstream),
 *   so the gradient of every resize of a non-square image fails the engine's
 *   shape check ("Error in gradient for op ResizeBilinear").
 * - Every backend's two kernels ignore `halfPixelCenters` and return the
 *   gradient of the legacy mapping instead (the forward kernels honour it).
 * - With `alignCorners` and an input axis of size 1 (resized to more than
 *   1), cpu's nearest-neighbour kernel never returns (an infinite search
 *   window), and wasm's nearest-neighbour and webgpu's two kernels return
 *   wrong values.
 *
 * cpu runs every call through the loops here; wasm and webgpu keep their
 * own kernels for the calls those get right and run the others through the
 * loops on the wasm heap or through two webgpu matrix products.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { patchKernel } from "./_patches.ts";
import {
  assertFloat32,
  heapF32,
  offsetOf,
  sizeOf,
  type WasmBackendLike,
} from "./_wasm_heap.ts";

/** Kernel names replaced by {@linkcode registerResizeGradKernels}. */
export const RESIZE_GRAD_KERNELS: readonly string[] = [
  "ResizeBilinearGrad",
  "ResizeNearestNeighborGrad",
];

/**
 * Where each output position of one axis reads from: up to two input
 * indices per output, `index[2o]`, `index[2o + 1]`, with weights
 * `weight[2o]`, `weight[2o + 1]`; `count[o]` (1 or 2) says how many.
 */
export interface AxisTaps {
  /** Input indices, two slots per output position. */
  index: Int32Array;
  /** Interpolation weights, two slots per output position. */
  weight: Float64Array;
  /** Taps used per output position (1 or 2). */
  count: Uint8Array;
}

/** How a resize maps output positions to input positions. */
export interface ResizeMode {
  /** Nearest neighbour instead of bilinear. */
  nearest: boolean;
  /** Corner pixels of input and output coincide. */
  alignCorners: boolean;
  /** Pixels are sampled at their centres (`(o + 0.5) · scale`). */
  halfPixelCenters: boolean;
}

/**
 * The taps of one axis resized from `inSize` to `outSize`, with the mapping
 * TensorFlow's forward kernels use: scale `(in-1)/(out-1)` when corners are
 * aligned (and `out > 1`), else `in/out`; the source coordinate of output
 * `o` is `o·scale`, or with half-pixel centres `(o+½)·scale` (nearest) and
 * `(o+½)·scale − ½` (bilinear); nearest rounds it (aligned corners) or
 * floors it, bilinear splits it between its floor and ceiling, both clamped
 * to the input.
 */
export function axisTaps(
  inSize: number,
  outSize: number,
  mode: ResizeMode,
): AxisTaps {
  const { nearest, alignCorners, halfPixelCenters } = mode;
  const corners = alignCorners && outSize > 1;
  const scale = corners ? (inSize - 1) / (outSize - 1) : inSize / outSize;
  const last = inSize - 1;
  const index = new Int32Array(2 * outSize);
  const weight = new Float64Array(2 * outSize);
  const count = new Uint8Array(outSize);
  for (let o = 0; o < outSize; o++) {
    if (nearest) {
      const src = halfPixelCenters ? (o + 0.5) * scale : o * scale;
      const i = Math.min(
        last,
        alignCorners ? Math.round(src) : Math.floor(src),
      );
      index[2 * o] = Math.max(0, i);
      weight[2 * o] = 1;
      count[o] = 1;
      continue;
    }
    const src = halfPixelCenters ? (o + 0.5) * scale - 0.5 : o * scale;
    const lo = Math.min(last, Math.max(0, Math.floor(src)));
    const hi = Math.min(last, Math.max(0, Math.ceil(src)));
    const frac = src - lo;
    index[2 * o] = lo;
    if (hi === lo || frac === 0) {
      weight[2 * o] = 1;
      count[o] = 1;
    } else {
      weight[2 * o] = 1 - frac;
      index[2 * o + 1] = hi;
      weight[2 * o + 1] = frac;
      count[o] = 2;
    }
  }
  return { index, weight, count };
}

/** Sizes of a resize gradient: `images` is `[batch, inH, inW, depth]`, `dy` `[batch, outH, outW, depth]`. */
export interface ResizeGeometry {
  /** Batch size. */
  batch: number;
  /** Input (image) height. */
  inH: number;
  /** Input (image) width. */
  inW: number;
  /** Output (dy) height. */
  outH: number;
  /** Output (dy) width. */
  outW: number;
  /** Channels. */
  depth: number;
}

/**
 * Adds the gradient of a resize with taps `rows`, `cols` to `dx` (from
 * `dxOffset`, NHWC `[batch, inH, inW, depth]`, not cleared here): every dy
 * element goes to the (at most four) input pixels it was interpolated from,
 * times their weights. `dy` (NHWC `[batch, outH, outW, depth]`, from
 * `dyOffset`) and `dx` may be views of one heap over disjoint ranges.
 */
export function accumulateResizeGrad(
  dy: ArrayLike<number>,
  dyOffset: number,
  dx: Float32Array,
  dxOffset: number,
  g: ResizeGeometry,
  rows: AxisTaps,
  cols: AxisTaps,
): void {
  const { batch, inH, inW, outH, outW, depth } = g;
  let src = dyOffset;
  for (let b = 0; b < batch; b++) {
    const imageBase = dxOffset + b * inH * inW * depth;
    for (let r = 0; r < outH; r++) {
      const nr = rows.count[r]!;
      for (let c = 0; c < outW; c++) {
        const nc = cols.count[c]!;
        for (let i = 0; i < nr; i++) {
          const rowBase = imageBase + rows.index[2 * r + i]! * inW * depth;
          const wr = rows.weight[2 * r + i]!;
          for (let j = 0; j < nc; j++) {
            const w = wr * cols.weight[2 * c + j]!;
            const dst = rowBase + cols.index[2 * c + j]! * depth;
            for (let d = 0; d < depth; d++) dx[dst + d]! += w * dy[src + d]!;
          }
        }
        src += depth;
      }
    }
  }
}

interface GradInputs {
  images: tf.TensorInfo;
  dy: tf.TensorInfo;
}

function geometryOf(kernel: string, backend: string, x: GradInputs) {
  const { images, dy } = x;
  const [batch, inH, inW, depth] = images.shape;
  const [dyBatch, outH, outW, dyDepth] = dy.shape;
  if (
    images.shape.length !== 4 || dy.shape.length !== 4 ||
    dyBatch !== batch || dyDepth !== depth
  ) {
    throw new TypeError(
      `Cannot run ${kernel} on ${backend} as 'dy' must be [batch, outHeight, outWidth, depth] matching 'images' [${images.shape}]: found [${dy.shape}]`,
    );
  }
  return { batch, inH, inW, outH, outW, depth } as ResizeGeometry;
}

function modeOf(kernel: string, attrs: tf.NamedAttrMap | undefined) {
  const a = (attrs ?? {}) as Record<string, unknown>;
  return {
    nearest: kernel === "ResizeNearestNeighborGrad",
    alignCorners: Boolean(a.alignCorners),
    halfPixelCenters: Boolean(a.halfPixelCenters),
  };
}

/** The parts of tfjs-backend-cpu's `MathBackendCPU` the cpu kernels use. */
interface CpuBackendLike {
  data: { get(dataId: object): { values?: unknown } | undefined };
  makeTensorInfo(
    shape: number[],
    dtype: tf.DataType,
    values: Float32Array,
  ): tf.TensorInfo;
}

function cpuKernel(kernel: string): tf.KernelFunc {
  return (args) => {
    const inputs = args.inputs as unknown as GradInputs;
    const g = geometryOf(kernel, "cpu", inputs);
    const mode = modeOf(kernel, args.attrs);
    const backend = args.backend as unknown as CpuBackendLike;
    const values = backend.data.get(inputs.dy.dataId)?.values;
    if (!(values instanceof Float32Array || values instanceof Int32Array)) {
      throw new TypeError(
        `Cannot run ${kernel} on cpu as 'dy' must hold numbers: found ${inputs.dy.dtype}`,
      );
    }
    const dx = new Float32Array(g.batch * g.inH * g.inW * g.depth);
    accumulateResizeGrad(
      values,
      0,
      dx,
      0,
      g,
      axisTaps(g.inH, g.outH, mode),
      axisTaps(g.inW, g.outW, mode),
    );
    return backend.makeTensorInfo([...inputs.images.shape], "float32", dx);
  };
}

function wasmKernel(kernel: string): tf.KernelFunc {
  return (args) => {
    const inputs = args.inputs as unknown as GradInputs;
    const g = geometryOf(kernel, "wasm", inputs);
    assertFloat32(kernel, inputs.dy);
    const mode = modeOf(kernel, args.attrs);
    const backend = args.backend as unknown as WasmBackendLike;
    const dx = backend.makeOutput([...inputs.images.shape], "float32");
    // A fresh view: making the output may have grown the heap.
    const heap = heapF32(backend);
    const dxo = offsetOf(backend, dx);
    heap.fill(0, dxo, dxo + sizeOf(inputs.images.shape));
    accumulateResizeGrad(
      heap,
      offsetOf(backend, inputs.dy),
      heap,
      dxo,
      g,
      axisTaps(g.inH, g.outH, mode),
      axisTaps(g.inW, g.outW, mode),
    );
    return dx;
  };
}

/** `taps` as a dense `[inSize, outSize]` matrix (the resize's transpose). */
function tapMatrix(taps: AxisTaps, inSize: number): Float32Array {
  const outSize = taps.count.length;
  const m = new Float32Array(inSize * outSize);
  for (let o = 0; o < outSize; o++) {
    for (let k = 0; k < taps.count[o]!; k++) {
      m[taps.index[2 * o + k]! * outSize + o]! += taps.weight[2 * o + k]!;
    }
  }
  return m;
}

/** The parts of tfjs-backend-webgpu's `WebGPUBackend` the kernel uses. */
interface GpuBackendLike {
  makeTensorInfo(
    shape: number[],
    dtype: tf.DataType,
    values: Float32Array,
  ): tf.TensorInfo;
  disposeData(dataId: object): boolean;
}

function matMul(
  backend: GpuBackendLike,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
): tf.TensorInfo {
  const k = tf.getKernel("BatchMatMul", "webgpu");
  if (!k) {
    throw new Error("Cannot run BatchMatMul on webgpu: kernel not registered");
  }
  return k.kernelFunc({
    inputs: { a, b },
    backend: backend as unknown as tf.KernelBackend,
    attrs: { transposeA: false, transposeB: false },
  }) as tf.TensorInfo;
}

/**
 * The gradient as two matrix products on the GPU, the resize being
 * separable: dx[b] = Rₕᵀ · dy[b] · R_w over the row and column axes, with
 * Rₕᵀ `[inH, outH]` and R_wᵀ `[inW, outW]` built here from the taps.
 */
function webgpuComposed(
  kernel: string,
  args: Parameters<tf.KernelFunc>[0],
): tf.TensorInfo {
  const inputs = args.inputs as unknown as GradInputs;
  const g = geometryOf(kernel, "webgpu", inputs);
  const mode = modeOf(kernel, args.attrs);
  const backend = args.backend as unknown as GpuBackendLike;
  const rows = backend.makeTensorInfo(
    [1, g.inH, g.outH],
    "float32",
    tapMatrix(axisTaps(g.inH, g.outH, mode), g.inH),
  );
  const cols = backend.makeTensorInfo(
    [1, g.inW, g.outW],
    "float32",
    tapMatrix(axisTaps(g.inW, g.outW, mode), g.inW),
  );
  let byRows: tf.TensorInfo | undefined;
  try {
    // [1, inH, outH] · [batch, outH, outW·depth] → [batch, inH, outW·depth]
    byRows = matMul(backend, rows, {
      dataId: inputs.dy.dataId,
      shape: [g.batch, g.outH, g.outW * g.depth],
      dtype: "float32",
    });
    // [1, inW, outW] · [batch·inH, outW, depth] → [batch·inH, inW, depth]
    const dx = matMul(backend, cols, {
      dataId: byRows.dataId,
      shape: [g.batch * g.inH, g.outW, g.depth],
      dtype: "float32",
    });
    return {
      dataId: dx.dataId,
      shape: [...inputs.images.shape],
      dtype: "float32",
    };
  } finally {
    backend.disposeData(rows.dataId);
    backend.disposeData(cols.dataId);
    if (byRows) backend.disposeData(byRows.dataId);
  }
}

/**
 * Whether the wasm or webgpu backend's own kernel gets this call wrong: both
 * ignore half-pixel centres, and with aligned corners both divide by zero
 * for an input axis of size 1 resized to more than 1 (the scale is 0, the
 * search window infinite; wasm's bilinear kernel happens to survive it).
 */
function upstreamFails(args: Parameters<tf.KernelFunc>[0]): boolean {
  const a = (args.attrs ?? {}) as Record<string, unknown>;
  if (a.halfPixelCenters) return true;
  if (!a.alignCorners) return false;
  const { images, dy } = args.inputs as unknown as GradInputs;
  return (images.shape[1] === 1 && dy.shape[1]! > 1) ||
    (images.shape[2] === 1 && dy.shape[2]! > 1);
}

const registered = new Set<string>();

/**
 * Registers the resize gradient kernels for `backend` in place of
 * upstream's ({@linkcode RESIZE_GRAD_KERNELS}): cpu gets the loops here for
 * every call; wasm (the loops on its heap) and webgpu (two matrix products)
 * keep their own kernels for the calls those get right. Idempotent; call
 * after the backend's package has registered its kernels.
 *
 * @param backend `"cpu"`, `"wasm"` or `"webgpu"`.
 */
export function registerResizeGradKernels(
  backend: "cpu" | "wasm" | "webgpu",
): void {
  if (registered.has(backend)) return;
  registered.add(backend);
  for (const name of RESIZE_GRAD_KERNELS) {
    const upstream = tf.getKernel(name, backend);
    let ours: tf.KernelFunc;
    if (backend === "cpu") ours = cpuKernel(name);
    else if (backend === "wasm") ours = wasmKernel(name);
    else ours = (args) => webgpuComposed(name, args);
    if (!upstream) {
      tf.registerKernel({
        kernelName: name,
        backendName: backend,
        kernelFunc: ours,
      });
      continue;
    }
    patchKernel(
      backend,
      name,
      (below) =>
        backend === "cpu"
          ? ours
          : (args) => upstreamFails(args) ? ours(args) : below(args),
    );
  }
}
