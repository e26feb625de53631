/**
 * `deno task dnnl-sweep [--quick] [--smoke] [--unguarded] [--shapes FILE]
 * [--from I]`: the oneDNN safety sweep.
 * Runs every distinct convolution the pipeline's networks run (ResNet-18
 * and ResNet-50 DeepLab at the step bench's size, 2×128×128 at batch 4 in
 * its four modes, and the `tiny` preset's coarse network, encoder with its
 * projection head and segmentation network in training and inference),
 * forward (plain and fused with bias and relu) and both gradients, on the
 * wasm backend's oneDNN kernels against the cpu backend, at batch 1 to 4
 * and at every batch the networks used, under glibc's malloc checks. Prints
 * one line per shape and batch, then every failure: a mismatch, a write
 * outside the output on the wasm heap, an output left partly unwritten, a
 * call slower than {@linkcode STALL_MS}, or an abort of the process.
 *
 * It works in three kinds of process, so that an abort names its shape and
 * the sweep goes on after it:
 * 1. the parent (no flag) starts the others under `MALLOC_CHECK_=3`,
 *    `GLIBC_TUNABLES=glibc.malloc.check=3:glibc.malloc.perturb=165` and,
 *    where glibc has it (2.34 and later need it for either setting to do
 *    anything), `LD_PRELOAD=libc_malloc_debug.so.0`;
 * 2. `--collect FILE` runs the networks on wasm and writes the
 *    convolutions they ran: a dry run in which each convolution returns
 *    zeros of its shape (the networks' other kernels still run), or with
 *    `--smoke` for real on oneDNN as shipped (a whole-network run under
 *    the malloc checks, many minutes longer);
 * 3. `--check FILE --from I` replays them from the I-th shape on, each
 *    oneDNN call checked through a proxy of the opened library, and prints
 *    one JSON line per shape and batch.
 *
 * References: the cpu backend at the same batch when that is cheap; above
 * {@linkcode CPU_WORK} multiply-adds the cpu runs batch 1 and the batch is
 * built from scaled copies of that sample (sample i's input times αᵢ and
 * output gradient times βᵢ, so its output is αᵢ·y, its input gradient
 * βᵢ·dx and the filter gradient Σαᵢβᵢ·dw), which still catches mixed-up
 * samples. Gradients of stride-1 convolutions, dilated ones included, are
 * computed on cpu from its forward convolution and matrix products (see
 * `stride1Grads`), strided ones with cpu's gradient kernels.
 *
 * `--unguarded` sends the convolutions the kernels keep off oneDNN (see
 * `stridedPointwise` in backends/_dnnl_kernels.ts) to oneDNN all the same,
 * to see whether they still fail. `--quick` runs only the `tiny` networks
 * and ResNet-18. `--shapes FILE` checks the convolutions of FILE (as
 * `--collect` writes it) instead of collecting them, and `--from I` starts
 * at the I-th (they run cheapest first).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { selectBackend, setWasmAcceleration } from "../backends/mod.ts";
import { type Dnnl, type DnnlConv, openDnnl } from "../backends/_dnnl.ts";
import {
  dnnlConv,
  dnnlKernelPatches,
  uninstallDnnlKernels,
} from "../backends/_dnnl_kernels.ts";
import { convInfoFromAttrs } from "../backends/_im2col.ts";
import { limits } from "../backends/_limits.ts";
import { applyPatches, patchKernel } from "../backends/_patches.ts";
import {
  heapF32,
  offsetOf,
  sizeOf,
  type WasmBackendLike,
} from "../backends/_wasm_heap.ts";
import { buildOurs } from "../bench/step_bench.ts";
import { MODES } from "../bench/_common.ts";
import { PRESETS } from "../pipeline/config.ts";
import {
  buildCoarseNet,
  buildEncoder,
  buildHead,
  buildSegNet,
} from "../pipeline/_models.ts";
import { Prng } from "../random/mod.ts";

/** A oneDNN call slower than this is reported as a stall. */
export const STALL_MS = 20_000;
/** Above this many multiply-adds per pass the cpu reference runs batch 1. */
export const CPU_WORK = 5e7;
/** Relative tolerance (of the reference's largest magnitude). */
export const TOLERANCE = 1e-4;
/** A child that prints nothing for this long is killed as stalled. */
const SILENCE_MS = 600_000;

/** One distinct convolution: shapes without the batch, and tfjs's attributes. */
export interface Shape {
  /** Input [height, width, channels]. */
  x: [number, number, number];
  /** Filter [height, width, in, out]. */
  filter: [number, number, number, number];
  strides: [number, number] | number;
  pad: unknown;
  dilations: [number, number] | number;
  dimRoundingMode?: string;
  /** Batches the networks ran it at. */
  batches: number[];
  /** Which networks and kernels ran it. */
  seen: string[];
}

type Attrs = Record<string, unknown>;

function shapeKey(s: Omit<Shape, "batches" | "seen">): string {
  return JSON.stringify([
    s.x,
    s.filter,
    s.strides,
    s.pad,
    s.dilations,
    s.dimRoundingMode ?? null,
  ]);
}

// ---------------------------------------------------------------- collect

/** Multiply-adds of one pass at batch 1. */
function work(s: Shape): number {
  const info = convInfoFromAttrs([1, ...s.x], s.filter, {
    strides: s.strides,
    pad: s.pad,
    dilations: s.dilations,
    ...(s.dimRoundingMode ? { dimRoundingMode: s.dimRoundingMode } : {}),
  });
  return info.outHeight * info.outWidth * s.filter.reduce((a, b) => a * b, 1);
}

/**
 * Records each convolution the wasm kernels see (above every other layer),
 * under the label `where()` gives at the time.
 */
function recordConvolutions(where: () => string, dry: boolean): {
  shapes: Map<string, Shape>;
  stop: () => void;
} {
  const shapes = new Map<string, Shape>();
  const add = (
    kernel: string,
    x: readonly number[],
    filter: readonly number[],
    a: Attrs,
  ) => {
    const s = {
      x: [x[1]!, x[2]!, x[3]!] as [number, number, number],
      filter: [...filter] as [number, number, number, number],
      strides: a.strides as [number, number] | number,
      pad: a.pad,
      dilations: (a.dilations ?? 1) as [number, number] | number,
      ...(a.dimRoundingMode
        ? { dimRoundingMode: String(a.dimRoundingMode) }
        : {}),
    };
    const k = shapeKey(s);
    const hit = shapes.get(k) ?? { ...s, batches: [], seen: [] };
    if (!hit.batches.includes(x[0]!)) hit.batches.push(x[0]!);
    const label = `${where()} ${kernel}`;
    if (!hit.seen.includes(label)) hit.seen.push(label);
    shapes.set(k, hit);
  };
  const wrap =
    (kernel: string): (below: tf.KernelFunc) => tf.KernelFunc =>
    (below) =>
    (args) => {
      const a = (args.attrs ?? {}) as Attrs;
      const i = args.inputs as Record<string, tf.TensorInfo>;
      let out: number[];
      if (kernel === "Conv2DBackpropInput") {
        out = a.inputShape as number[];
        add(kernel, out, i.filter!.shape, a);
      } else if (kernel === "Conv2DBackpropFilter") {
        out = a.filterShape as number[];
        add(kernel, i.x!.shape, out, a);
      } else {
        add(kernel, i.x!.shape, i.filter!.shape, a);
        out = convInfoFromAttrs(i.x!.shape, i.filter!.shape, a).outShape;
      }
      if (!dry) return below(args);
      // Zeros of the right shape: the shapes downstream are all that counts.
      const backend = args.backend as unknown as WasmBackendLike;
      const t = backend.makeOutput([...out], "float32");
      const at = offsetOf(backend, t);
      heapF32(backend).fill(0, at, at + sizeOf(out));
      return t;
    };
  const undo = [
    "Conv2D",
    "FusedConv2D",
    "Conv2DBackpropInput",
    "Conv2DBackpropFilter",
  ].map((k) => patchKernel("wasm", k, wrap(k)));
  return { shapes, stop: () => undo.reverse().forEach((u) => u()) };
}

async function timed(label: string, fn: () => Promise<void>): Promise<void> {
  const t0 = performance.now();
  await fn();
  console.error(`  ${label}: ${(performance.now() - t0).toFixed(0)} ms`);
}

/** Sum of squares of every output, for gradients of every variable. */
function squares(t: tf.Tensor): tf.Scalar {
  return tf.sum(tf.square(t));
}

async function stepGrads(
  fn: () => tf.Scalar,
  vars: tf.Variable[],
): Promise<void> {
  const { value, grads } = tf.variableGrads(fn, vars);
  await value.data();
  tf.dispose([value, ...Object.values(grads)]);
}

async function collect(
  path: string,
  { quick, smoke }: { quick: boolean; smoke: boolean },
): Promise<void> {
  await setWasmAcceleration("onednn");
  await selectBackend("wasm", { purpose: "train" });
  let label = "";
  const rec = recordConvolutions(() => label, !smoke);
  // The step bench's networks and modes, as `deno task bench --only step`.
  for (const depth of quick ? [18] as const : [18, 50] as const) {
    const ours = buildOurs(depth);
    for (const mode of MODES) {
      label = `R${depth} bench ${mode}`;
      await timed(label, () => ours.run(mode));
    }
    ours.dispose();
  }
  // The tiny preset's three networks at its batch sizes, on the phantom's
  // one channel (+ attention) and 9 organs.
  const cfg = PRESETS.tiny;
  const coarse = buildCoarseNet(cfg, 1, 10, 0);
  const xs = tf.randomNormal([cfg.coarse.batchSize, 128, 128, 1]);
  label = "tiny coarse train";
  await timed(label, () =>
    stepGrads(
      () => squares(coarse.apply(xs as tf.Tensor4D, { training: true })),
      coarse.trainableVariables(),
    ));
  label = "tiny coarse predict";
  await timed(label, async () => {
    const y = coarse.apply(xs as tf.Tensor4D, { training: false });
    await y.data();
    y.dispose();
  });
  coarse.dispose();
  xs.dispose();
  const ps = cfg.patchSize;
  const encoder = buildEncoder(cfg, 2, 0);
  const head = buildHead(cfg, encoder.featureChannels, 9, 0);
  const views = tf.randomNormal([
    cfg.pretrain.batchSize * cfg.views,
    ps,
    ps,
    2,
  ]);
  label = "tiny encoder pretrain";
  await timed(label, () =>
    stepGrads(() => {
      const { pooled } = encoder.apply(views as tf.Tensor4D, {
        training: true,
      });
      return squares(head.apply(pooled, { training: true }));
    }, [...encoder.trainableVariables(), ...head.trainableVariables()]));
  views.dispose();
  head.dispose();
  const seg = buildSegNet(cfg, encoder, {
    inChannels: 2,
    nTargets: 1, // two classes under either head
    seed: 0,
  });
  const patches = tf.randomNormal([cfg.segment.batchSize, ps, ps, 2]);
  label = "tiny seg train";
  await timed(label, () =>
    stepGrads(
      () =>
        squares(
          seg.apply(patches as tf.Tensor4D, {
            training: true,
            freezeEncoder: true,
          }),
        ),
      seg.decoderVariables(),
    ));
  patches.dispose();
  const tiles = tf.randomNormal([cfg.inference.batchSize, ps, ps, 2]);
  label = "tiny seg infer";
  await timed(label, async () => {
    const y = seg.apply(tiles as tf.Tensor4D, { training: false });
    await y.data();
    y.dispose();
  });
  tiles.dispose();
  seg.dispose();
  rec.stop();
  // Cheapest first, so that a sweep cut short has covered the most shapes.
  const shapes = [...rec.shapes.values()].sort((a, b) => work(a) - work(b));
  await Deno.writeTextFile(path, JSON.stringify(shapes));
  console.log(JSON.stringify({ collected: shapes.length }));
}

// ------------------------------------------------------------------ check

/** What the proxy saw of one oneDNN call. */
interface CallReport {
  ms: number;
  /** Bytes of the wasm heap outside the output that changed. */
  outside: number;
  /** Output floats left as the NaN they were filled with. */
  unwritten: number;
}

function bytesOf(kind: "fwd" | "bwdData" | "bwdWeights", g: DnnlConv): number {
  if (kind === "fwd") return 4 * g.n * g.oh * g.ow * g.co;
  if (kind === "bwdData") return 4 * g.n * g.h * g.w * g.c;
  return 4 * g.kh * g.kw * g.c * g.co;
}

/**
 * A proxy of `dnnl` that, around each convolution call, fills the output
 * with NaN, snapshots the wasm heap and then checks that nothing outside
 * the output changed and that the whole output was written.
 */
function checkedDnnl(
  dnnl: Dnnl,
  heap: () => Uint8Array,
  reports: CallReport[],
): Dnnl {
  const run = (
    kind: "fwd" | "bwdData" | "bwdWeights",
    g: DnnlConv,
    dst: Deno.PointerValue,
    call: () => void,
  ) => {
    const h = heap();
    const base = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(h)));
    const at = Number(BigInt(Deno.UnsafePointer.value(dst)) - base);
    const bytes = bytesOf(kind, g);
    new Float32Array(h.buffer, h.byteOffset + at, bytes / 4).fill(NaN);
    const before = h.slice();
    const t0 = performance.now();
    call();
    const ms = performance.now() - t0;
    const after = heap();
    let outside = 0;
    const a32 = new Uint32Array(
      after.buffer,
      after.byteOffset,
      after.length >> 2,
    );
    const b32 = new Uint32Array(before.buffer, 0, before.length >> 2);
    const lo = at >> 2, hi = (at + bytes) >> 2;
    for (let i = 0; i < lo; i++) if (a32[i] !== b32[i]) outside += 4;
    for (let i = hi; i < a32.length; i++) if (a32[i] !== b32[i]) outside += 4;
    let unwritten = 0;
    const out = new Float32Array(
      after.buffer,
      after.byteOffset + at,
      bytes / 4,
    );
    for (let i = 0; i < out.length; i++) if (Number.isNaN(out[i])) unwritten++;
    reports.push({ ms, outside, unwritten });
  };
  return {
    path: dnnl.path,
    version: dnnl.version,
    get cached() {
      return dnnl.cached;
    },
    blas: dnnl.blas,
    implementation: (kind, conv) => dnnl.implementation(kind, conv),
    convForward(g, src, w, bias, dst) {
      run("fwd", g, dst, () => dnnl.convForward(g, src, w, bias, dst));
    },
    convBackwardData(g, dy, w, dx) {
      run("bwdData", g, dx, () => dnnl.convBackwardData(g, dy, w, dx));
    },
    convBackwardWeights(g, x, dy, dw) {
      run("bwdWeights", g, dw, () => dnnl.convBackwardWeights(g, x, dy, dw));
    },
    // The batch norm kernels' calls pass through unchecked.
    batchNormForward: (...a) => dnnl.batchNormForward(...a),
    batchNormBackward: (...a) => dnnl.batchNormBackward(...a),
    addRelu: (...a) => dnnl.addRelu(...a),
    reluBackward: (...a) => dnnl.reluBackward(...a),
  };
}

function randn(prng: Prng, n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = prng.normal();
  return a;
}

const ALPHA = Array.from(
  { length: 64 },
  (_, i) => [1, -0.5, 2, 0.75, -1.25, 1.5, 0.5, -2][i % 8]! * (1 + (i >> 3)),
);
const BETA = Array.from(
  { length: 64 },
  (_, i) => [1, 1.5, -0.75, 2, 0.5, -1, 1.25, 0.25][i % 8]!,
);

function pair(v: [number, number] | number): [number, number] {
  return typeof v === "number" ? [v, v] : v;
}

/** The four reference outputs: y, relu(y + bias), dx, dw. */
type Outputs = [Float32Array, Float32Array, Float32Array, Float32Array];

interface Case {
  s: Shape;
  n: number;
  xs: Float32Array;
  fs: Float32Array;
  dys: Float32Array;
  bs: Float32Array;
  outShape: [number, number, number, number];
}

function common(s: Shape): Attrs {
  return {
    strides: s.strides,
    pad: s.pad,
    dataFormat: "NHWC",
    ...(s.dimRoundingMode ? { dimRoundingMode: s.dimRoundingMode } : {}),
  };
}

/**
 * Both gradients of a stride-1 convolution from cpu's forward convolution
 * and matrix products: dx is the (dilated) convolution of dy with the
 * filter turned 180° (in and out swapped) under the complementary padding;
 * dw's tap (i, j) is the padded x, shifted by (i·dh, j·dw), times dy. For
 * dilated ones because tfjs's cpu gradient kernels ignore dilations, for
 * the rest because cpu's gradient kernels took many minutes on ResNet-50's
 * shapes (the machine is shared).
 */
function stride1Grads(
  x: tf.Tensor4D,
  f: tf.Tensor4D,
  dy: tf.Tensor4D,
  s: Shape,
): [tf.Tensor, tf.Tensor] {
  const [kh, kw, ci, co] = s.filter;
  const [dh, dw] = pair(s.dilations);
  const info = convInfoFromAttrs(x.shape, s.filter, {
    ...common(s),
    dilations: s.dilations,
  });
  const { top, bottom, left, right } = info.padInfo;
  const ekh = (kh - 1) * dh + 1, ekw = (kw - 1) * dw + 1;
  const turned = tf.transpose(tf.reverse(f, [0, 1]), [0, 1, 3, 2]);
  const dx = tf.engine().runKernel("Conv2D", { x: dy, filter: turned }, {
    strides: 1,
    pad: [[0, 0], [ekh - 1 - top, ekh - 1 - bottom], [
      ekw - 1 - left,
      ekw - 1 - right,
    ], [0, 0]],
    dataFormat: "NHWC",
    dilations: s.dilations,
  }) as tf.Tensor;
  const [n, oh, ow] = dy.shape;
  const padded = tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]]);
  const dy2 = tf.reshape(dy, [n * oh * ow, co]);
  const taps: tf.Tensor[] = [];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const window = tf.slice(padded, [0, i * dh, j * dw, 0], [n, oh, ow, ci]);
      taps.push(tf.matMul(tf.reshape(window, [n * oh * ow, ci]), dy2, true));
    }
  }
  return [dx, tf.reshape(tf.stack(taps), [kh, kw, ci, co])];
}

/** The four outputs on cpu. */
async function onCpu(c: Case): Promise<Outputs> {
  await tf.setBackend("cpu");
  const { s, n } = c;
  const stride1 = pair(s.strides).every((d) => d === 1);
  const out = tf.tidy(() => {
    const x = tf.tensor4d(c.xs, [n, ...s.x]);
    const f = tf.tensor4d(c.fs, s.filter);
    const dy = tf.tensor4d(c.dys, c.outShape);
    const b = tf.tensor1d(c.bs);
    const y = tf.engine().runKernel("Conv2D", { x, filter: f }, {
      ...common(s),
      dilations: s.dilations,
    }) as tf.Tensor;
    const [dx, dW] = stride1 ? stride1Grads(x, f, dy, s) : [
      tf.engine().runKernel("Conv2DBackpropInput", { dy, filter: f }, {
        ...common(s),
        inputShape: [n, ...s.x],
      }) as tf.Tensor,
      tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, {
        ...common(s),
        filterShape: s.filter,
      }) as tf.Tensor,
    ];
    return [y, tf.relu(tf.add(y, b)), dx, dW];
  });
  const data = await Promise.all(
    out.map((t) => t.data() as Promise<Float32Array>),
  );
  tf.dispose(out);
  return data as Outputs;
}

/** The four outputs on wasm, through the oneDNN kernels (or around them). */
async function onWasm(
  c: Case,
  dnnl: Dnnl,
  unguarded: boolean,
): Promise<Outputs> {
  await tf.setBackend("wasm");
  const { s, n } = c;
  const a = { ...common(s), dilations: s.dilations };
  const out = tf.tidy(() => {
    const x = tf.tensor4d(c.xs, [n, ...s.x]);
    const f = tf.tensor4d(c.fs, s.filter);
    const dy = tf.tensor4d(c.dys, c.outShape);
    const b = tf.tensor1d(c.bs);
    const y = tf.engine().runKernel("Conv2D", { x, filter: f }, a) as tf.Tensor;
    const yf = tf.engine().runKernel("FusedConv2D", { x, filter: f, bias: b }, {
      ...a,
      activation: "relu",
    }) as tf.Tensor;
    if (unguarded) return [y, yf, ...direct(x, f, dy, a, dnnl)];
    const dx = tf.engine().runKernel("Conv2DBackpropInput", { dy, filter: f }, {
      ...a,
      inputShape: [n, ...s.x],
    }) as tf.Tensor;
    const dW = tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, {
      ...a,
      filterShape: s.filter,
    }) as tf.Tensor;
    return [y, yf, dx, dW];
  });
  const data = await Promise.all(
    out.map((t) => t.data() as Promise<Float32Array>),
  );
  tf.dispose(out);
  return data as Outputs;
}

/** Both gradients straight on oneDNN, past the kernels' own choices. */
function direct(
  x: tf.Tensor,
  f: tf.Tensor,
  dy: tf.Tensor,
  a: Attrs,
  dnnl: Dnnl,
): [tf.Tensor, tf.Tensor] {
  const backend = tf.backend() as unknown as WasmBackendLike;
  const g = dnnlConv(convInfoFromAttrs(x.shape, f.shape, a));
  const at = (t: tf.TensorInfo) =>
    Deno.UnsafePointer.offset(
      Deno.UnsafePointer.of(backend.wasm.HEAPU8)!,
      backend.dataIdMap.get(t.dataId)!.memoryOffset,
    );
  const dx = backend.makeOutput([...x.shape], "float32");
  dnnl.convBackwardData(g, at(dy), at(f), at(dx));
  const dW = backend.makeOutput([...f.shape], "float32");
  dnnl.convBackwardWeights(g, at(x), at(dy), at(dW));
  return [
    tf.engine().makeTensorFromTensorInfo(dx),
    tf.engine().makeTensorFromTensorInfo(dW),
  ];
}

function relErr(got: Float32Array, want: Float32Array): number {
  if (got.length !== want.length) return Infinity;
  let scale = 1e-6, err = 0;
  for (let i = 0; i < want.length; i++) {
    scale = Math.max(scale, Math.abs(want[i]!));
    const d = Math.abs(got[i]! - want[i]!);
    if (!(d <= err)) err = Number.isNaN(d) ? Infinity : d;
  }
  return err / scale;
}

/** Batch-`n` references from batch-1 ones, for scaled copies of the sample. */
function scaledReference(one: Outputs, n: number, bias: Float32Array): Outputs {
  const [y1, , dx1, dw1] = one;
  const y = new Float32Array(n * y1.length);
  const dx = new Float32Array(n * dx1.length);
  let s = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < y1.length; j++) {
      y[i * y1.length + j] = ALPHA[i]! * y1[j]!;
    }
    for (let j = 0; j < dx1.length; j++) {
      dx[i * dx1.length + j] = BETA[i]! * dx1[j]!;
    }
    s += ALPHA[i]! * BETA[i]!;
  }
  const yf = y.map((v, j) => Math.max(0, v + bias[j % bias.length]!));
  return [y, yf, dx, dw1.map((v) => s * v)];
}

function scaled(one: Float32Array, n: number, by: number[]): Float32Array {
  const out = new Float32Array(n * one.length);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < one.length; j++) {
      out[i * one.length + j] = by[i]! * one[j]!;
    }
  }
  return out;
}

async function check(
  path: string,
  from: number,
  unguarded: boolean,
): Promise<void> {
  const shapes = JSON.parse(await Deno.readTextFile(path)) as Shape[];
  const { dnnl, reason } = openDnnl();
  if (!dnnl) throw new Error(`Cannot run the oneDNN sweep: ${reason}`);
  await setWasmAcceleration("onednn");
  await selectBackend("wasm", { purpose: "train" });
  const backend = tf.backend() as unknown as WasmBackendLike;
  const reports: CallReport[] = [];
  // The shipped kernels over a checking proxy of the library, every
  // convolution sent to oneDNN however small.
  uninstallDnnlKernels();
  const proxy = checkedDnnl(dnnl, () => backend.wasm.HEAPU8, reports);
  applyPatches("wasm", dnnlKernelPatches(proxy));
  limits.dnnlMinWork = 0;
  const libc = Deno.dlopen("libc.so.6", {
    malloc_trim: { parameters: ["usize"], result: "i32" },
  });
  for (let i = from; i < shapes.length; i++) {
    const s = shapes[i]!;
    const prng = new Prng(1000 + i);
    const batches = [...new Set([1, 2, 3, 4, ...s.batches])].sort((a, b) =>
      a - b
    );
    const info1 = convInfoFromAttrs([1, ...s.x], s.filter, {
      ...common(s),
      dilations: s.dilations,
    });
    const out1 = info1.outShape as [number, number, number, number];
    const work1 = out1[1] * out1[2] * s.filter.reduce((a, b) => a * b, 1);
    const one: Case = {
      s,
      n: 1,
      xs: randn(prng, s.x.reduce((a, b) => a * b, 1)),
      fs: randn(prng, s.filter.reduce((a, b) => a * b, 1)),
      dys: randn(prng, out1.reduce((a, b) => a * b, 1)),
      bs: randn(prng, s.filter[3]),
      outShape: out1,
    };
    let ref1: Outputs | undefined;
    for (const n of batches) {
      console.log(JSON.stringify({ start: i, n }));
      const independent = n === 1 || n * work1 <= CPU_WORK;
      const c: Case = independent && n > 1
        ? {
          ...one,
          n,
          xs: randn(prng, n * one.xs.length),
          dys: randn(prng, n * one.dys.length),
          outShape: [n, out1[1], out1[2], out1[3]],
        }
        : {
          ...one,
          n,
          xs: scaled(one.xs, n, ALPHA),
          dys: scaled(one.dys, n, BETA),
          outShape: [n, out1[1], out1[2], out1[3]],
        };
      const t0 = performance.now();
      const want = independent
        ? await onCpu(c)
        : scaledReference(ref1 ??= await onCpu(one), n, one.bs);
      if (n === 1) ref1 = want;
      const cpuMs = performance.now() - t0;
      reports.length = 0;
      const t1 = performance.now();
      const got = await onWasm(c, proxy, unguarded);
      const wasmMs = performance.now() - t1;
      const g = dnnlConv(
        convInfoFromAttrs([n, ...s.x], s.filter, {
          ...common(s),
          dilations: s.dilations,
        }),
      );
      const errs = got.map((v, k) => relErr(v, want[k]!));
      console.log(JSON.stringify({
        i,
        n,
        reference: independent ? "cpu" : "cpu, scaled copies",
        errs,
        calls: reports.length,
        maxCallMs: Math.max(0, ...reports.map((r) => r.ms)),
        outside: reports.reduce((a, r) => a + r.outside, 0),
        unwritten: reports.reduce((a, r) => a + r.unwritten, 0),
        impl: [
          dnnl.implementation("forward", g),
          dnnl.implementation("backward data", g),
          dnnl.implementation("backward weights", g),
        ],
        cpuMs: Math.round(cpuMs),
        wasmMs: Math.round(wasmMs),
      }));
      libc.symbols.malloc_trim(0n);
    }
  }
  console.log(JSON.stringify({ done: shapes.length }));
}

// ----------------------------------------------------------------- parent

/** The environment that turns glibc's malloc checks on. */
function mallocCheckEnv(): Record<string, string> {
  const env: Record<string, string> = {
    MALLOC_CHECK_: "3",
    GLIBC_TUNABLES: "glibc.malloc.check=3:glibc.malloc.perturb=165",
  };
  for (
    const lib of [
      "/lib/x86_64-linux-gnu/libc_malloc_debug.so.0",
      "/lib/aarch64-linux-gnu/libc_malloc_debug.so.0",
      "/lib64/libc_malloc_debug.so.0",
    ]
  ) {
    try {
      Deno.statSync(lib);
      env.LD_PRELOAD = lib;
      break;
    } catch {
      // Not this one.
    }
  }
  return env;
}

interface ChildResult {
  code: number;
  signal: string | null;
  lines: Record<string, unknown>[];
  stderr: string;
  silent: boolean;
}

async function child(args: string[]): Promise<ChildResult> {
  const proc = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", import.meta.filename!, ...args],
    env: mallocCheckEnv(),
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: Record<string, unknown>[] = [];
  let silent = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      silent = true;
      proc.kill("SIGKILL");
    }, SILENCE_MS);
  };
  arm();
  const errText = new Response(proc.stderr).text();
  let rest = "";
  for await (const chunk of proc.stdout.pipeThrough(new TextDecoderStream())) {
    arm();
    rest += chunk;
    const parts = rest.split("\n");
    rest = parts.pop()!;
    for (const p of parts) {
      if (!p.startsWith("{")) continue;
      const o = JSON.parse(p) as Record<string, unknown>;
      lines.push(o);
      if ("i" in o) report(o);
    }
  }
  const status = await proc.status;
  clearTimeout(timer);
  return {
    code: status.code,
    signal: status.signal,
    lines,
    stderr: await errText,
    silent,
  };
}

let shapesForReport: Shape[] = [];
const failures: string[] = [];
let checked = 0;
let worstErr = 0;
let worstCallMs = 0;
const impls = new Set<string>();

function describe(s: Shape, n: number): string {
  const [kh, kw, ci, co] = s.filter;
  return `x [${n},${s.x}] f ${kh}×${kw} ${ci}→${co} s ${s.strides} d ${s.dilations} pad ${
    JSON.stringify(s.pad)
  }`;
}

function report(o: Record<string, unknown>): void {
  const s = shapesForReport[o.i as number]!;
  const errs = o.errs as number[];
  const bad: string[] = [];
  const names = ["forward", "fused", "input grad", "filter grad"];
  errs.forEach((e, k) => {
    worstErr = Math.max(worstErr, e);
    if (!(e <= TOLERANCE)) bad.push(`${names[k]} off by ${e.toExponential(2)}`);
  });
  if ((o.outside as number) > 0) {
    bad.push(`${o.outside} bytes written outside the output`);
  }
  if ((o.unwritten as number) > 0) bad.push(`${o.unwritten} outputs unwritten`);
  if ((o.maxCallMs as number) > STALL_MS) {
    bad.push(`a call took ${Math.round(o.maxCallMs as number)} ms`);
  }
  worstCallMs = Math.max(worstCallMs, o.maxCallMs as number);
  for (const m of o.impl as (string | null)[]) impls.add(String(m));
  checked++;
  const line = `${String(o.i).padStart(3)} ${
    describe(s, o.n as number)
  }: ${o.calls} oneDNN calls, max err ${
    Math.max(...errs).toExponential(1)
  } (${o.reference}), ${o.wasmMs} ms${
    bad.length ? `  FAIL: ${bad.join("; ")}` : ""
  }`;
  console.log(line);
  if (bad.length) failures.push(line);
}

async function parent(
  { quick, unguarded, smoke, shapes, from: start }: {
    quick: boolean;
    unguarded: boolean;
    smoke: boolean;
    shapes: string | undefined;
    from: number;
  },
): Promise<number> {
  const env = mallocCheckEnv();
  console.log(
    `oneDNN sweep under ${
      Object.entries(env).map(([k, v]) => `${k}=${v}`).join(" ")
    }${unguarded ? ", unguarded" : ""}`,
  );
  const file = shapes ?? await Deno.makeTempFile({ suffix: ".json" });
  const c = shapes ? undefined : await child([
    "--collect",
    file,
    ...(quick ? ["--quick"] : []),
    ...(smoke ? ["--smoke"] : []),
  ]);
  if (c) {
    console.log(
      c.stderr.split("\n").filter((l) => l.startsWith("  ")).join("\n"),
    );
  }
  if (c && c.code !== 0) {
    console.log(
      `the networks' run failed (${c.signal ?? c.code}):\n${
        c.stderr.slice(-3000)
      }`,
    );
    return 1;
  }
  shapesForReport = JSON.parse(await Deno.readTextFile(file)) as Shape[];
  console.log(`${shapesForReport.length} distinct convolutions\n`);
  let from = start;
  while (from < shapesForReport.length) {
    const r = await child([
      "--check",
      file,
      "--from",
      String(from),
      ...(unguarded ? ["--unguarded"] : []),
    ]);
    if (r.code === 0 && r.lines.some((l) => "done" in l)) break;
    const last = r.lines.filter((l) => "start" in l).at(-1);
    const at = (last?.start as number | undefined) ?? from;
    const n = (last?.n as number | undefined) ?? 1;
    const why = r.silent
      ? `stalled (no output for ${SILENCE_MS / 1000} s)`
      : `aborted (${r.signal ?? `exit ${r.code}`}): ${
        r.stderr.trim().split("\n").slice(-3).join(" / ")
      }`;
    const line = `${String(at).padStart(3)} ${
      describe(shapesForReport[at]!, n)
    }: ${why}`;
    console.log(line);
    failures.push(line);
    from = at + 1;
  }
  if (!shapes) await Deno.remove(file);
  console.log(
    `\n${shapesForReport.length} convolutions, ${checked} shape×batch checks (4 passes each), ${failures.length} failures; worst relative error ${
      worstErr.toExponential(2)
    }, slowest oneDNN call ${Math.round(worstCallMs)} ms`,
  );
  console.log(`oneDNN implementations: ${[...impls].sort().join(", ")}`);
  for (const f of failures) console.log(`FAIL ${f}`);
  return failures.length === 0 ? 0 : 1;
}

if (import.meta.main) {
  const args = Deno.args;
  const flag = (name: string) => {
    const i = args.indexOf(name);
    return i < 0 ? undefined : args[i + 1];
  };
  const quick = args.includes("--quick");
  const unguarded = args.includes("--unguarded");
  const smoke = args.includes("--smoke");
  if (args.includes("--collect")) {
    await collect(flag("--collect")!, { quick, smoke });
  } else if (args.includes("--check")) {
    await check(flag("--check")!, Number(flag("--from") ?? 0), unguarded);
  } else {
    Deno.exit(
      await parent({
        quick,
        unguarded,
        smoke,
        shapes: flag("--shapes"),
        from: Number(flag("--from") ?? 0),
      }),
    );
  }
}
