/**
 * Faster wasm kernels for the shapes a training step hits hardest, found by
 * profiling a ResNet step (tf.profile), as the patch table
 * {@linkcode WASM_FAST_PATCHES}: Tile (the batch-norm gradient tiles a
 * per-channel vector to the full activation), Sum and Mean over every axis
 * but the last (per-channel reductions, which upstream transposes first),
 * MaxPoolGrad, Reverse and Slice (element-wise loops upstream; block copies
 * here: the atrous-convolution gradient flips 3×3×512×512 filters and
 * slices shifted maps), Concat and SplitV (run copies: DeepLabv3+'s skip
 * concatenation and its gradient), Transpose of the last two axes
 * (blocked) and Identity (shared memory, not a copy). Other shapes fall
 * through to the kernel below.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { KernelPatch } from "./_patches.ts";
import {
  heapF32,
  heapI32,
  offsetOf,
  sizeOf,
  type WasmBackendLike,
} from "./_wasm_heap.ts";

type Attrs = Record<string, unknown>;

function view(
  backend: WasmBackendLike,
  dtype: tf.DataType,
): Float32Array | Int32Array | undefined {
  if (dtype === "float32") return heapF32(backend);
  if (dtype === "int32") return heapI32(backend);
  return undefined;
}

/** Copies `len` elements at `src` to `dst`, then repeats them `times` times. */
function replicate(
  h: Float32Array | Int32Array,
  dst: number,
  len: number,
  times: number,
): void {
  let done = len;
  const total = len * times;
  while (done < total) {
    const n = Math.min(done, total - done);
    h.copyWithin(dst + done, dst, dst + n);
    done += n;
  }
}

function tile(original: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const reps = ((args.attrs ?? {}) as Attrs).reps as number[];
    const backend = args.backend as unknown as WasmBackendLike;
    if (x.dtype !== "float32" && x.dtype !== "int32") return original(args);
    const rank = x.shape.length;
    if (reps.length !== rank || rank === 0) return original(args);
    const outShape = x.shape.map((d, i) => d * reps[i]!);
    const out = backend.makeOutput(outShape, x.dtype);
    const total = sizeOf(outShape);
    if (total === 0) return out;
    const h = view(backend, x.dtype)!;
    const xo = offsetOf(backend, x);
    const oo = offsetOf(backend, out);
    // Element strides of x and of out.
    const xs = new Array<number>(rank).fill(1);
    const os = new Array<number>(rank).fill(1);
    for (let d = rank - 2; d >= 0; d--) {
      xs[d] = xs[d + 1]! * x.shape[d + 1]!;
      os[d] = os[d + 1]! * outShape[d + 1]!;
    }
    const fill = (d: number, src: number, dst: number): void => {
      const n = x.shape[d]!;
      if (d === rank - 1) {
        h.copyWithin(dst, src, src + n); // same buffer: the wasm heap
      } else {
        for (let i = 0; i < n; i++) {
          fill(d + 1, src + i * xs[d]!, dst + i * os[d]!);
        }
      }
      replicate(h, dst, n * os[d]!, reps[d]!);
    };
    fill(0, xo, oo);
    return out;
  };
}

/** Whether `axes` are exactly every axis but the last. */
function leadingAxes(axes: number[], rank: number): boolean {
  if (rank < 2 || axes.length !== rank - 1) return false;
  const sorted = axes.map((a) => (a < 0 ? a + rank : a)).sort((a, b) => a - b);
  return sorted.every((a, i) => a === i);
}

/** What {@linkcode reduceLeading} hands its row summer. */
export interface RowSums {
  /** The input on the heap, `[rows, c]`. */
  x: Float32Array;
  /** The output on the heap, `[c]`. */
  out: Float32Array;
  /** Rows summed. */
  rows: number;
  /** Channels (the last axis). */
  c: number;
  /** 1 for Sum, 1 / rows for Mean. */
  scale: number;
}

/** Options for {@linkcode reduceLeading}. */
export interface ReduceLeadingOptions {
  /** Mean (else Sum). */
  mean: boolean;
  /** Reductions over fewer elements go to the kernel below. @default {0} */
  minElements?: number;
  /** Writes `out[j] = scale · Σ_r x[r, j]`. */
  sumRows(sums: RowSums): void;
}

/**
 * Sum or Mean over every axis but the last (per-channel reductions, which
 * upstream transposes first) of a float32 tensor, as one pass over its rows;
 * every other call goes to `below`.
 */
export function reduceLeading(
  below: tf.KernelFunc,
  options: ReduceLeadingOptions,
): tf.KernelFunc {
  const { mean, minElements = 0, sumRows } = options;
  return (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const a = (args.attrs ?? {}) as Attrs;
    const axisAttr = a.axis as number | number[];
    const axes = Array.isArray(axisAttr) ? axisAttr : [axisAttr];
    const rank = x.shape.length;
    if (x.dtype !== "float32" || !leadingAxes(axes, rank)) return below(args);
    const c = x.shape[rank - 1]!;
    const rows = c > 0 ? sizeOf(x.shape) / c : 0;
    if (rows * c < minElements) return below(args);
    const backend = args.backend as unknown as WasmBackendLike;
    const outShape = a.keepDims
      ? [...x.shape.slice(0, -1).map(() => 1), c]
      : [c];
    const out = backend.makeOutput(outShape, "float32");
    const h = heapF32(backend);
    sumRows({
      x: h.subarray(offsetOf(backend, x)),
      out: h.subarray(offsetOf(backend, out)),
      rows,
      c,
      scale: mean ? 1 / rows : 1,
    });
    return out;
  };
}

/** Column sums accumulated in float64, for accuracy close to a tree sum. */
function sumRowsF64({ x, out, rows, c, scale }: RowSums): void {
  const acc = new Float64Array(c);
  for (let r = 0; r < rows; r++) {
    const base = r * c;
    for (let j = 0; j < c; j++) acc[j] = acc[j]! + x[base + j]!;
  }
  for (let j = 0; j < c; j++) out[j] = acc[j]! * scale;
}

function maxPoolGrad(original: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { dy, input } = args.inputs as {
      dy: tf.TensorInfo;
      input: tf.TensorInfo;
    };
    const a = (args.attrs ?? {}) as Attrs;
    if (dy.dtype !== "float32" || input.shape.length !== 4) {
      return original(args);
    }
    const info = tf.backend_util.computePool2DInfo(
      input.shape as [number, number, number, number],
      a.filterSize as [number, number] | number,
      a.strides as [number, number] | number,
      1,
      a.pad as "same",
      a.dimRoundingMode as "floor" | undefined,
    );
    const backend = args.backend as unknown as WasmBackendLike;
    const out = backend.makeOutput([...input.shape], "float32");
    const h = heapF32(backend);
    const dxo = offsetOf(backend, out);
    const xo = offsetOf(backend, input);
    const dyo = offsetOf(backend, dy);
    const { batchSize: n, inHeight: H, inWidth: W, inChannels: C } = info;
    const { outHeight: OH, outWidth: OW, strideHeight: sh, strideWidth: sw } =
      info;
    const { effectiveFilterHeight: fh, effectiveFilterWidth: fw } = info;
    const { dilationHeight: dh, dilationWidth: dw } = info;
    const top = info.padInfo.top;
    const left = info.padInfo.left;
    h.fill(0, dxo, dxo + n * H * W * C);
    // Per output pixel: scan its window channel-vectorised (contiguous in
    // NHWC), keeping the first maximum per channel as tfjs's cpu kernel does.
    const best = new Float32Array(C);
    const at = new Int32Array(C);
    for (let b = 0; b < n; b++) {
      for (let oy = 0; oy < OH; oy++) {
        const y0 = oy * sh - top;
        for (let ox = 0; ox < OW; ox++) {
          const x0 = ox * sw - left;
          best.fill(-Infinity);
          at.fill(-1);
          for (let ky = 0; ky < fh; ky += dh) {
            const iy = y0 + ky;
            if (iy < 0 || iy >= H) continue;
            for (let kx = 0; kx < fw; kx += dw) {
              const ix = x0 + kx;
              if (ix < 0 || ix >= W) continue;
              const p = ((b * H + iy) * W + ix) * C;
              const src = xo + p;
              for (let c = 0; c < C; c++) {
                const v = h[src + c]!;
                if (v > best[c]!) {
                  best[c] = v;
                  at[c] = p + c;
                }
              }
            }
          }
          const g = dyo + ((b * OH + oy) * OW + ox) * C;
          for (let c = 0; c < C; c++) {
            const q = at[c]!;
            if (q >= 0) h[dxo + q] = h[dxo + q]! + h[g + c]!;
          }
        }
      }
    }
    return out;
  };
}

function reverse(original: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const dimsAttr = ((args.attrs ?? {}) as Attrs).dims as number | number[];
    const rank = x.shape.length;
    if ((x.dtype !== "float32" && x.dtype !== "int32") || rank === 0) {
      return original(args);
    }
    const dims = (Array.isArray(dimsAttr) ? dimsAttr : [dimsAttr]).map((d) =>
      d < 0 ? d + rank : d
    );
    const backend = args.backend as unknown as WasmBackendLike;
    const out = backend.makeOutput([...x.shape], x.dtype);
    const h = view(backend, x.dtype)!;
    const xo = offsetOf(backend, x);
    const oo = offsetOf(backend, out);
    const flip = x.shape.map((_, i) => dims.includes(i));
    // Contiguous blocks: the suffix of axes that are not reversed.
    let k = rank;
    while (k > 0 && !flip[k - 1]) k--;
    const block = sizeOf(x.shape.slice(k));
    const outer = x.shape.slice(0, k);
    const nBlocks = sizeOf(outer);
    const idx = new Array<number>(k).fill(0);
    for (let bIdx = 0; bIdx < nBlocks; bIdx++) {
      let src = 0;
      for (let d = 0; d < k; d++) {
        src = src * outer[d]! + (flip[d] ? outer[d]! - 1 - idx[d]! : idx[d]!);
      }
      if (k === rank) {
        h[oo + bIdx] = h[xo + src]!;
      } else {
        h.copyWithin(
          oo + bIdx * block,
          xo + src * block,
          xo + (src + 1) * block,
        );
      }
      for (let d = k - 1; d >= 0; d--) {
        if (++idx[d]! < outer[d]!) break;
        idx[d] = 0;
      }
    }
    return out;
  };
}

function slice(original: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const a = (args.attrs ?? {}) as Attrs;
    const rank = x.shape.length;
    if ((x.dtype !== "float32" && x.dtype !== "int32") || rank === 0) {
      return original(args);
    }
    const parsed = tf.slice_util.parseSliceParams(
      x as unknown as tf.Tensor,
      a.begin as number[],
      a.size as number[],
    );
    const begin = parsed[0]!;
    const size = parsed[1]!;
    const backend = args.backend as unknown as WasmBackendLike;
    const out = backend.makeOutput([...size], x.dtype);
    if (sizeOf(size) === 0) return out;
    const h = view(backend, x.dtype)!;
    const xo = offsetOf(backend, x);
    const oo = offsetOf(backend, out);
    // Merge trailing axes the slice covers fully into one contiguous run.
    let k = rank - 1;
    while (k > 0 && begin[k] === 0 && size[k] === x.shape[k]) k--;
    const run = size[k]! * sizeOf(x.shape.slice(k + 1));
    const strides = new Array<number>(rank).fill(1);
    for (let d = rank - 2; d >= 0; d--) {
      strides[d] = strides[d + 1]! * x.shape[d + 1]!;
    }
    const outer = size.slice(0, k);
    const nRuns = sizeOf(outer);
    const idx = new Array<number>(k).fill(0);
    let base = xo + begin[k]! * strides[k]!;
    for (let d = 0; d < k; d++) base += begin[d]! * strides[d]!;
    for (let r = 0; r < nRuns; r++) {
      let src = base;
      for (let d = 0; d < k; d++) src += idx[d]! * strides[d]!;
      h.copyWithin(oo + r * run, src, src + run);
      for (let d = k - 1; d >= 0; d--) {
        if (++idx[d]! < outer[d]!) break;
        idx[d] = 0;
      }
    }
    return out;
  };
}

/**
 * Copies `rows` runs of `len` elements, run `r` from `src + r * srcStride`
 * to `dst + r * dstStride` (within the one heap view): an element loop for
 * short runs, where a call per run would cost more than the copy.
 */
function copyRuns(
  h: Float32Array | Int32Array,
  src: number,
  srcStride: number,
  dst: number,
  dstStride: number,
  rows: number,
  len: number,
): void {
  if (len >= 64) {
    for (let r = 0; r < rows; r++) {
      const s = src + r * srcStride;
      h.copyWithin(dst + r * dstStride, s, s + len);
    }
    return;
  }
  for (let r = 0; r < rows; r++) {
    const s = src + r * srcStride;
    const d = dst + r * dstStride;
    for (let j = 0; j < len; j++) h[d + j] = h[s + j]!;
  }
}

/**
 * Concat as one run copy per input and outer index. Upstream's wasm kernel
 * makes a typed-array view per run, which dominates when the concatenated
 * axis is the short last one (DeepLabv3+'s decoder concatenates its
 * low-level skip along the channels: about 8× an element-wise op).
 */
function concat(original: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const inputs = args.inputs as unknown as tf.TensorInfo[];
    const dtype = inputs[0]?.dtype;
    if (
      (dtype !== "float32" && dtype !== "int32") ||
      inputs.some((t) => t.dtype !== dtype)
    ) {
      return original(args);
    }
    const shapes = inputs.map((t) => t.shape);
    const axis = tf.util.parseAxisParam(
      ((args.attrs ?? {}) as Attrs).axis as number,
      shapes[0]!,
    )[0]!;
    const parts = inputs.filter((t) => sizeOf(t.shape) > 0);
    if (parts.length < 2) return original(args);
    tf.backend_util.assertParamsConsistent(shapes, axis);
    const outShape = tf.backend_util.computeOutShape(shapes, axis);
    const backend = args.backend as unknown as WasmBackendLike;
    const out = backend.makeOutput(outShape, dtype);
    const h = view(backend, dtype)!;
    const oo = offsetOf(backend, out);
    const outer = sizeOf(outShape.slice(0, axis));
    const width = sizeOf(outShape.slice(axis));
    let at = 0;
    for (const t of parts) {
      const inner = sizeOf(t.shape.slice(axis));
      copyRuns(h, offsetOf(backend, t), inner, oo + at, width, outer, inner);
      at += inner;
    }
    return out;
  };
}

/** SplitV as one run copy per output and outer index (see {@linkcode concat}). */
function splitV(original: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (
      (x.dtype !== "float32" && x.dtype !== "int32") || x.shape.length === 0
    ) {
      return original(args);
    }
    const a = (args.attrs ?? {}) as Attrs;
    const axis = tf.util.parseAxisParam(a.axis as number, x.shape)[0]!;
    const sizes = tf.backend_util.prepareSplitSize(
      x as unknown as tf.Tensor,
      a.numOrSizeSplits as number | number[],
      axis,
    );
    const backend = args.backend as unknown as WasmBackendLike;
    const outs = sizes.map((n) => {
      const shape = [...x.shape];
      shape[axis] = n;
      return backend.makeOutput(shape, x.dtype);
    });
    // Views and offsets after every output exists: making one may grow
    // (and so move) the heap.
    const h = view(backend, x.dtype)!;
    const xo = offsetOf(backend, x);
    const outer = sizeOf(x.shape.slice(0, axis));
    const width = sizeOf(x.shape.slice(axis));
    let at = 0;
    outs.forEach((o) => {
      const inner = sizeOf(o.shape.slice(axis));
      if (inner > 0) {
        copyRuns(h, xo + at, width, offsetOf(backend, o), inner, outer, inner);
      }
      at += inner;
    });
    return outs;
  };
}

/** Transpose that swaps the last two axes only: blocked matrix transposes. */
function transpose(original: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const perm = ((args.attrs ?? {}) as Attrs).perm as number[];
    const rank = x.shape.length;
    const swapsLastTwo = rank >= 2 && perm.length === rank &&
      perm.every((
        p,
        i,
      ) => (i < rank - 2
        ? p === i
        : p === (i === rank - 2 ? rank - 1 : rank - 2))
      );
    if ((x.dtype !== "float32" && x.dtype !== "int32") || !swapsLastTwo) {
      return original(args);
    }
    const rows = x.shape[rank - 2]!;
    const cols = x.shape[rank - 1]!;
    if (rows < 16 || cols < 16) return original(args);
    const backend = args.backend as unknown as WasmBackendLike;
    const outShape = perm.map((p) => x.shape[p]!);
    const out = backend.makeOutput(outShape, x.dtype);
    const h = view(backend, x.dtype)!;
    const xo = offsetOf(backend, x);
    const oo = offsetOf(backend, out);
    const mats = sizeOf(x.shape.slice(0, -2));
    const B = 32;
    for (let m = 0; m < mats; m++) {
      const s = xo + m * rows * cols;
      const d = oo + m * rows * cols;
      for (let i0 = 0; i0 < rows; i0 += B) {
        const i1 = Math.min(rows, i0 + B);
        for (let j0 = 0; j0 < cols; j0 += B) {
          const j1 = Math.min(cols, j0 + B);
          for (let i = i0; i < i1; i++) {
            const si = s + i * cols;
            for (let j = j0; j < j1; j++) h[d + j * rows + i] = h[si + j]!;
          }
        }
      }
    }
    return out;
  };
}

/**
 * Identity (`clone`, and every tensor a custom gradient saves for its
 * backward pass) as a second reference to the same memory, as `Reshape`
 * already is on wasm and `Identity` is on cpu; upstream's wasm kernel
 * copies the whole tensor. Kernels never write into their inputs, so the
 * two tensors stay equal.
 */
function identity(original: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (x.dtype === "string") return original(args);
    (args.backend as unknown as WasmBackendLike).incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  };
}

/** The fast paths, as a patch table over the wasm backend's kernels. */
export const WASM_FAST_PATCHES: readonly KernelPatch[] = [
  { kernelName: "Tile", wrap: tile },
  {
    kernelName: "Sum",
    wrap: (below) => reduceLeading(below, { mean: false, sumRows: sumRowsF64 }),
  },
  {
    kernelName: "Mean",
    wrap: (below) => reduceLeading(below, { mean: true, sumRows: sumRowsF64 }),
  },
  { kernelName: "MaxPoolGrad", wrap: maxPoolGrad },
  { kernelName: "Reverse", wrap: reverse },
  { kernelName: "Slice", wrap: slice },
  { kernelName: "Concat", wrap: concat },
  { kernelName: "SplitV", wrap: splitV },
  { kernelName: "Identity", wrap: identity },
  { kernelName: "Transpose", wrap: transpose },
];
