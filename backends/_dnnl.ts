/**
 * Optional oneDNN (Debian `libdnnl2`) through Deno FFI: multi-threaded,
 * JIT-compiled 2-D convolutions (forward, backward data, backward weights)
 * over NHWC data and HWIO filters, and training-mode batch normalisation
 * (forward with the batch statistics, backward), read and written in place
 * on any memory a pointer reaches (the wasm heap). Detected at runtime; absent library,
 * wrong API version or no permission → undefined, with the reason.
 *
 * Only the oneDNN 2.x C API is spoken (the one Debian 12 ships, the one
 * PyTorch 1.13 is built on): its descriptors are plain structs filled
 * through pointers, so nothing crosses the FFI by value. oneDNN 3.x
 * replaced them with opaque handles and is reported as unsupported.
 *
 * @module
 */

/**
 * A 2-D convolution over NHWC data with an HWIO filter, as oneDNN takes it:
 * the im2col kernels' geometry plus the padding below and to the right,
 * which oneDNN needs explicitly.
 */
export interface DnnlConv extends ConvGeometry {
  /** Zero padding below the last row and after the last column. */
  bottom: number;
  right: number;
}

/**
 * A training-mode batch normalisation over NHWC data `[n, h, w, c]`:
 * per-channel statistics of the batch's `n·h·w` values.
 */
export interface DnnlBatchNorm {
  n: number;
  h: number;
  w: number;
  c: number;
  /** Added to the variance before its square root. */
  epsilon: number;
}

import type { Blas, GemmOp, GemvOp } from "./_blas.ts";
import type { ConvGeometry } from "./_im2col.ts";
import { env, granted } from "./_permissions.ts";

/** Raw addresses of the operands of one convolution call. */
export type Pointer = Deno.PointerValue;

/** An opened oneDNN: a CPU engine and stream, with cached primitives. */
export interface Dnnl {
  /** Path of the loaded library. */
  readonly path: string;
  /** Library version, e.g. `"2.6.3"`. */
  readonly version: string;
  /**
   * dst = conv(src, weights) (+ bias): src NHWC, weights HWIO, bias [co] or
   * null, dst NHWC.
   */
  convForward(
    conv: DnnlConv,
    src: Pointer,
    weights: Pointer,
    bias: Pointer,
    dst: Pointer,
  ): void;
  /** diffSrc (NHWC) = the input gradient of conv for diffDst (NHWC). */
  convBackwardData(
    conv: DnnlConv,
    diffDst: Pointer,
    weights: Pointer,
    diffSrc: Pointer,
  ): void;
  /** diffWeights (HWIO) = the filter gradient of conv for src and diffDst. */
  convBackwardWeights(
    conv: DnnlConv,
    src: Pointer,
    diffDst: Pointer,
    diffWeights: Pointer,
  ): void;
  /**
   * Batch norm in training mode: dst = γ·(src − mean)/√(variance + ε) + β
   * with the batch's mean and (biased) variance, written to `mean` and
   * `variance` ([c] each). `scaleShift` is `[2, c]`: γ, then β.
   */
  batchNormForward(
    bn: DnnlBatchNorm,
    src: Pointer,
    scaleShift: Pointer,
    dst: Pointer,
    mean: Pointer,
    variance: Pointer,
  ): void;
  /**
   * The gradients of {@linkcode Dnnl.batchNormForward} for diffDst:
   * diffSrc (NHWC) and diffScaleShift (`[2, c]`: dγ, then dβ), from the
   * forward's src, mean and variance and `scaleShift`.
   */
  batchNormBackward(
    bn: DnnlBatchNorm,
    src: Pointer,
    mean: Pointer,
    variance: Pointer,
    diffDst: Pointer,
    scaleShift: Pointer,
    diffSrc: Pointer,
    diffScaleShift: Pointer,
  ): void;
  /**
   * dst = relu(dst + other) over `size` floats in place; without `other`
   * no sum, without `relu` no ReLU.
   */
  addRelu(size: number, dst: Pointer, other: Pointer, relu: boolean): void;
  /**
   * diffSrc = diffDst where dst > 0, else 0: ReLU's gradient from its
   * output `dst`, over `size` floats.
   */
  reluBackward(
    size: number,
    dst: Pointer,
    diffDst: Pointer,
    diffSrc: Pointer,
  ): void;
  /**
   * The oneDNN implementation chosen for one convolution (e.g.
   * `"jit:avx512_core"`), or `undefined` when oneDNN refuses it.
   */
  implementation(
    kind: "forward" | "backward data" | "backward weights",
    conv: DnnlConv,
  ): string | undefined;
  /** Primitives built and cached so far. */
  readonly cached: number;
  /**
   * oneDNN's own row-major sgemm (`dnnl_sgemm`) behind the BLAS interface:
   * matrix products on the same OpenMP threads as the convolutions, so no
   * second thread pool spins beside them.
   */
  readonly blas: Blas;
}

/** Libraries tried in order (the first that opens and speaks the 2.x API wins). */
const CANDIDATES: readonly string[] = [
  "libdnnl.so.2",
  "/usr/lib/x86_64-linux-gnu/libdnnl.so.2",
  "/usr/lib/aarch64-linux-gnu/libdnnl.so.2",
  "/usr/lib64/libdnnl.so.2",
  "/usr/local/lib/libdnnl.so.2",
];

const P = "pointer" as const;
const B = "buffer" as const;
const SYMBOLS = {
  dnnl_version: { parameters: [], result: P },
  dnnl_engine_create: { parameters: [P, "i32", "usize"], result: "i32" },
  dnnl_stream_create: { parameters: [P, P, "u32"], result: "i32" },
  dnnl_stream_wait: { parameters: [P], result: "i32" },
  dnnl_memory_desc_init_by_tag: {
    parameters: [P, "i32", P, "i32", "i32"],
    result: "i32",
  },
  dnnl_memory_desc_equal: { parameters: [P, P], result: "i32" },
  // Strides, dilations and paddings go as buffers, so that the arrays
  // holding them live until the call returns.
  dnnl_dilated_convolution_forward_desc_init: {
    parameters: [P, "i32", "i32", P, P, P, P, B, B, B, B],
    result: "i32",
  },
  dnnl_dilated_convolution_backward_data_desc_init: {
    parameters: [P, "i32", P, P, P, B, B, B, B],
    result: "i32",
  },
  dnnl_dilated_convolution_backward_weights_desc_init: {
    parameters: [P, "i32", P, P, P, P, B, B, B, B],
    result: "i32",
  },
  dnnl_batch_normalization_forward_desc_init: {
    parameters: [P, "i32", P, "f32", "u32"],
    result: "i32",
  },
  dnnl_batch_normalization_backward_desc_init: {
    parameters: [P, "i32", P, P, "f32", "u32"],
    result: "i32",
  },
  dnnl_eltwise_forward_desc_init: {
    parameters: [P, "i32", "i32", P, "f32", "f32"],
    result: "i32",
  },
  dnnl_eltwise_backward_desc_init: {
    parameters: [P, "i32", P, P, "f32", "f32"],
    result: "i32",
  },
  dnnl_binary_desc_init: { parameters: [P, "i32", P, P, P], result: "i32" },
  dnnl_primitive_attr_create: { parameters: [P], result: "i32" },
  dnnl_primitive_attr_destroy: { parameters: [P], result: "i32" },
  dnnl_primitive_attr_set_post_ops: { parameters: [P, P], result: "i32" },
  dnnl_post_ops_create: { parameters: [P], result: "i32" },
  dnnl_post_ops_destroy: { parameters: [P], result: "i32" },
  dnnl_post_ops_append_eltwise: {
    parameters: [P, "f32", "i32", "f32", "f32"],
    result: "i32",
  },
  dnnl_primitive_desc_create: { parameters: [P, P, P, P, P], result: "i32" },
  dnnl_primitive_desc_query: {
    parameters: [P, "i32", "i32", P],
    result: "i32",
  },
  dnnl_primitive_desc_query_md: { parameters: [P, "i32", "i32"], result: P },
  dnnl_primitive_desc_destroy: { parameters: [P], result: "i32" },
  dnnl_reorder_primitive_desc_create: {
    parameters: [P, P, P, P, P, P],
    result: "i32",
  },
  dnnl_primitive_create: { parameters: [P, P], result: "i32" },
  dnnl_primitive_destroy: { parameters: [P], result: "i32" },
  dnnl_primitive_execute: { parameters: [P, P, "i32", P], result: "i32" },
  dnnl_memory_create: { parameters: [P, P, P, P], result: "i32" },
  dnnl_memory_set_data_handle: { parameters: [P, P], result: "i32" },
  dnnl_memory_destroy: { parameters: [P], result: "i32" },
  dnnl_memory_desc_get_size: { parameters: [P], result: "usize" },
  dnnl_sgemm: {
    parameters: [
      "u8",
      "u8",
      "i64",
      "i64",
      "i64",
      "f32",
      "buffer",
      "i64",
      "buffer",
      "i64",
      "f32",
      "buffer",
      "i64",
    ],
    result: "i32",
  },
} as const;

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** libgomp's thread count, which oneDNN 2.x reads per parallel region. */
const OPENMP_SYMBOLS = {
  omp_get_max_threads: { parameters: [], result: "i32" },
  omp_set_num_threads: { parameters: ["i32"], result: "void" },
} as const;

type OpenMp = Deno.DynamicLibrary<typeof OPENMP_SYMBOLS>["symbols"];

/** The OpenMP runtime oneDNN loaded (Debian's is built on libgomp), if any. */
function openOpenMp(): OpenMp | undefined {
  try {
    return Deno.dlopen("libgomp.so.1", OPENMP_SYMBOLS).symbols;
  } catch {
    return undefined;
  }
}

// Values from oneDNN 2.x's dnnl_types.h.
const F32 = 3;
const TAG_ANY = 1;
const TAG_X = 2;
const TAG_NHWC = 20;
const TAG_HWIO = 30;
const CPU = 1;
const STREAM_DEFAULT = 1;
const FORWARD_TRAINING = 64;
const BACKWARD = 128;
const BACKWARD_DATA = 160;
const BACKWARD_WEIGHTS = 192;
const CONVOLUTION_DIRECT = 1;
const ELTWISE_RELU = 0x1f;
const ELTWISE_RELU_USE_DST_FOR_BWD = 0x100;
const BINARY_ADD = 0x1fff0;
const ARG_SRC = 1;
const ARG_SRC_1 = 2;
const ARG_DST = 17;
const ARG_WEIGHTS = 33;
const ARG_BIAS = 41;
const ARG_MEAN = 49;
const ARG_VARIANCE = 50;
const ARG_DIFF_SRC = 129;
const ARG_DIFF_DST = 145;
const ARG_DIFF_WEIGHTS = 161;
const QUERY_IMPL_INFO_STR = 8;
const QUERY_SRC_MD = 129;
const QUERY_DIFF_SRC_MD = 130;
const QUERY_WEIGHTS_MD = 131;
const QUERY_DIFF_WEIGHTS_MD = 132;
const QUERY_DST_MD = 133;
const QUERY_DIFF_DST_MD = 134;
/** dnnl_use_scaleshift: γ and β in one `[2, c]` argument (every 2.x has it). */
const USE_SCALESHIFT = 0x2;
/** sizeof(dnnl_memory_desc_t) is 696 and of dnnl_convolution_desc_t 5976 in 2.6; room to spare. */
const MD_BYTES = 1024;
const OP_DESC_BYTES = 8192;

/** A pointer-sized out-parameter. */
function outPtr(): BigUint64Array<ArrayBuffer> {
  return new BigUint64Array(1);
}

function ptrOf(buf: ArrayBufferView<ArrayBuffer>): Pointer {
  return Deno.UnsafePointer.of(buf);
}

function read(out: BigUint64Array): Pointer {
  return Deno.UnsafePointer.create(out[0]!);
}

function dims(values: number[]): BigInt64Array<ArrayBuffer> {
  return BigInt64Array.from(values.map(BigInt));
}

/** One primitive with its argument memories (handles set per call). */
interface Step {
  prim: Pointer;
  /** Memory objects by argument index, in user formats unless internal. */
  args: Map<number, Pointer>;
  /** The packed `dnnl_exec_arg_t` array. */
  packed: Uint8Array<ArrayBuffer>;
}

/** A convolution with the reorders its weights need. */
interface Plan {
  /** Weights reorder before (forward, backward data) or after (backward weights). */
  before?: Step;
  main: Step;
  after?: Step;
  /** oneDNN's name for the chosen implementation. */
  impl: string;
  /**
   * The weights in oneDNN's blocked layout, when it wants one: the memory
   * object and its size; its buffer is the library's shared scratch.
   */
  packed?: { mem: Pointer; bytes: number };
  /** Objects to release when the plan is dropped. */
  owned: { pds: Pointer[]; prims: Pointer[]; mems: Pointer[] };
}

const MAX_PLANS = 512;

class Library implements Dnnl {
  readonly path: string;
  readonly version: string;
  #lib: Lib;
  #engine: Pointer;
  #stream: Pointer;
  #plans = new Map<string, Plan | null>();

  #openmp: OpenMp | undefined;

  constructor(path: string, lib: Lib, version: string, openmp?: OpenMp) {
    this.path = path;
    this.version = version;
    this.#lib = lib;
    this.#openmp = openmp;
    const e = outPtr();
    this.#check(lib.dnnl_engine_create(ptrOf(e), CPU, 0n), "engine_create");
    this.#engine = read(e);
    const s = outPtr();
    this.#check(
      lib.dnnl_stream_create(ptrOf(s), this.#engine, STREAM_DEFAULT),
      "stream_create",
    );
    this.#stream = read(s);
  }

  #blas?: Blas;

  get blas(): Blas {
    if (this.#blas) return this.#blas;
    const f = this.#lib.dnnl_sgemm;
    const check = (s: number) => this.#check(s, "sgemm");
    const N = 78, T = 84; // 'N', 'T'
    return this.#blas = {
      path: this.path,
      gemm(
        { transA = false, transB = false, m, n, k, a, b, c, beta = 0 }: GemmOp,
      ) {
        check(f(
          transA ? T : N,
          transB ? T : N,
          BigInt(m),
          BigInt(n),
          BigInt(k),
          1,
          a,
          BigInt(transA ? m : k),
          b,
          BigInt(transB ? k : n),
          beta,
          c,
          BigInt(n),
        ));
      },
      gemv({ transA = false, m, n, alpha = 1, a, x, y, beta = 0 }: GemvOp) {
        // As a product with one row (Aᵀx = xᵀA) or one column (Ax).
        if (transA) {
          check(f(
            N,
            N,
            1n,
            BigInt(n),
            BigInt(m),
            alpha,
            x,
            BigInt(m),
            a,
            BigInt(n),
            beta,
            y,
            BigInt(n),
          ));
        } else {
          check(f(
            N,
            N,
            BigInt(m),
            1n,
            BigInt(n),
            alpha,
            a,
            BigInt(n),
            x,
            1n,
            beta,
            y,
            1n,
          ));
        }
      },
    };
  }

  get cached(): number {
    return this.#plans.size;
  }

  #check(status: number, what: string): void {
    if (status !== 0) {
      throw new Error(`oneDNN ${what} failed with status ${status}`);
    }
  }

  #md(shape: number[], tag: number): Uint8Array<ArrayBuffer> {
    const md = new Uint8Array(MD_BYTES);
    this.#check(
      this.#lib.dnnl_memory_desc_init_by_tag(
        ptrOf(md),
        shape.length,
        ptrOf(dims(shape)),
        F32,
        tag,
      ),
      "memory_desc_init_by_tag",
    );
    return md;
  }

  /** A memory object of `md` (a pointer), its buffer set per call. */
  #memory(md: Pointer, owned: Plan["owned"]): Pointer {
    const m = outPtr();
    this.#check(
      this.#lib.dnnl_memory_create(ptrOf(m), md, this.#engine, null),
      "memory_create",
    );
    const mem = read(m);
    owned.mems.push(mem);
    return mem;
  }

  #step(pd: Pointer, args: Map<number, Pointer>, owned: Plan["owned"]): Step {
    const p = outPtr();
    this.#check(this.#lib.dnnl_primitive_create(ptrOf(p), pd), "create");
    const prim = read(p);
    owned.prims.push(prim);
    const packed = new Uint8Array(16 * args.size);
    const view = new DataView(packed.buffer);
    let i = 0;
    for (const [arg, mem] of args) {
      view.setInt32(16 * i, arg, true);
      view.setBigUint64(
        16 * i + 8,
        BigInt(Deno.UnsafePointer.value(mem)),
        true,
      );
      i++;
    }
    return { prim, args, packed };
  }

  #reorder(
    from: Pointer,
    to: Pointer,
    fromMem: Pointer,
    toMem: Pointer,
    owned: Plan["owned"],
  ): Step {
    const r = outPtr();
    this.#check(
      this.#lib.dnnl_reorder_primitive_desc_create(
        ptrOf(r),
        from,
        this.#engine,
        to,
        this.#engine,
        null,
      ),
      "reorder_primitive_desc_create",
    );
    const pd = read(r);
    owned.pds.push(pd);
    return this.#step(
      pd,
      new Map([[ARG_SRC, fromMem], [ARG_DST, toMem]]),
      owned,
    );
  }

  #opDesc(
    kind: number,
    conv: DnnlConv,
    mds: { src: Uint8Array; weights: Uint8Array; dst: Uint8Array },
    bias: Uint8Array | null,
  ): Uint8Array<ArrayBuffer> {
    const desc = new Uint8Array(OP_DESC_BYTES);
    const strides = dims([conv.sh, conv.sw]);
    const dilates = dims([conv.dh - 1, conv.dw - 1]);
    const padL = dims([conv.top, conv.left]);
    const padR = dims([conv.bottom, conv.right]);
    const L = this.#lib;
    const src = ptrOf(mds.src as Uint8Array<ArrayBuffer>);
    const w = ptrOf(mds.weights as Uint8Array<ArrayBuffer>);
    const dst = ptrOf(mds.dst as Uint8Array<ArrayBuffer>);
    let status: number;
    if (kind === FORWARD_TRAINING) {
      status = L.dnnl_dilated_convolution_forward_desc_init(
        ptrOf(desc),
        FORWARD_TRAINING,
        CONVOLUTION_DIRECT,
        src,
        w,
        bias ? ptrOf(bias as Uint8Array<ArrayBuffer>) : null,
        dst,
        strides,
        dilates,
        padL,
        padR,
      );
    } else if (kind === BACKWARD_DATA) {
      status = L.dnnl_dilated_convolution_backward_data_desc_init(
        ptrOf(desc),
        CONVOLUTION_DIRECT,
        src,
        w,
        dst,
        strides,
        dilates,
        padL,
        padR,
      );
    } else {
      status = L.dnnl_dilated_convolution_backward_weights_desc_init(
        ptrOf(desc),
        CONVOLUTION_DIRECT,
        src,
        w,
        null,
        dst,
        strides,
        dilates,
        padL,
        padR,
      );
    }
    this.#check(status, "convolution_desc_init");
    return desc;
  }

  /** A primitive descriptor, or null when oneDNN has no implementation. */
  #pd(desc: Uint8Array<ArrayBuffer>, hint: Pointer, attr?: Pointer): Pointer {
    const out = outPtr();
    const status = this.#lib.dnnl_primitive_desc_create(
      ptrOf(out),
      ptrOf(desc),
      attr ?? null,
      this.#engine,
      hint,
    );
    return status === 0 ? read(out) : null;
  }

  /** Builds the primitives of one convolution, or null when unsupported. */
  #build(
    kind: number,
    conv: DnnlConv,
    withBias: boolean,
  ): Plan | null {
    const owned: Plan["owned"] = { pds: [], prims: [], mems: [] };
    try {
      return this.#buildInto(kind, conv, withBias, owned);
    } catch (e) {
      this.#release(owned);
      throw e;
    }
  }

  #buildInto(
    kind: number,
    conv: DnnlConv,
    withBias: boolean,
    owned: Plan["owned"],
  ): Plan | null {
    const { n, h, w, c, oh, ow, co, kh, kw } = conv;
    const src = this.#md([n, c, h, w], TAG_NHWC);
    const dst = this.#md([n, co, oh, ow], TAG_NHWC);
    const userW = this.#md([co, c, kh, kw], TAG_HWIO);
    const anyW = this.#md([co, c, kh, kw], TAG_ANY);
    const bias = withBias ? this.#md([co], TAG_X) : null;
    const mds = { src, weights: anyW, dst };
    // Backward primitives need the forward one they belong to as a hint.
    const fwdDesc = this.#opDesc(FORWARD_TRAINING, conv, mds, bias);
    const fwd = this.#pd(fwdDesc, null);
    if (fwd === null) return null;
    owned.pds.push(fwd);
    let pd: Pointer = fwd;
    if (kind !== FORWARD_TRAINING) {
      pd = this.#pd(this.#opDesc(kind, conv, mds, null), fwd);
      if (pd === null) return null;
      owned.pds.push(pd);
    }
    const query = kind === BACKWARD_WEIGHTS
      ? QUERY_DIFF_WEIGHTS_MD
      : QUERY_WEIGHTS_MD;
    const innerW = this.#lib.dnnl_primitive_desc_query_md(pd, query, 0);
    const same = this.#lib.dnnl_memory_desc_equal(innerW, ptrOf(userW)) !== 0;
    const userWMem = this.#memory(ptrOf(userW), owned);
    const wMem = same ? userWMem : this.#memory(innerW, owned);
    const srcMem = this.#memory(ptrOf(src), owned);
    const dstMem = this.#memory(ptrOf(dst), owned);
    const args = new Map<number, Pointer>();
    const plan: Plan = {
      main: undefined as unknown as Step,
      impl: this.#implName(pd),
      owned,
      ...(same ? {} : {
        packed: {
          mem: wMem,
          bytes: Number(this.#lib.dnnl_memory_desc_get_size(innerW)),
        },
      }),
    };
    if (kind === FORWARD_TRAINING) {
      args.set(ARG_SRC, srcMem).set(ARG_WEIGHTS, wMem).set(ARG_DST, dstMem);
      if (bias) args.set(ARG_BIAS, this.#memory(ptrOf(bias), owned));
    } else if (kind === BACKWARD_DATA) {
      args.set(ARG_DIFF_SRC, srcMem).set(ARG_WEIGHTS, wMem).set(
        ARG_DIFF_DST,
        dstMem,
      );
    } else {
      args.set(ARG_SRC, srcMem).set(ARG_DIFF_WEIGHTS, wMem).set(
        ARG_DIFF_DST,
        dstMem,
      );
    }
    if (!same) {
      if (kind === BACKWARD_WEIGHTS) {
        plan.after = this.#reorder(innerW, ptrOf(userW), wMem, userWMem, owned);
      } else {
        plan.before = this.#reorder(
          ptrOf(userW),
          innerW,
          userWMem,
          wMem,
          owned,
        );
      }
    }
    plan.main = this.#step(pd, args, owned);
    // The user-format memories, by role, for setting handles per call.
    plan.main.args = new Map([
      [ARG_SRC, srcMem],
      [ARG_DST, dstMem],
      [ARG_WEIGHTS, userWMem],
      ...(args.has(ARG_BIAS) ? [[ARG_BIAS, args.get(ARG_BIAS)!]] as const : []),
    ]);
    return plan;
  }

  #implName(pd: Pointer): string {
    const out = outPtr();
    const status = this.#lib.dnnl_primitive_desc_query(
      pd,
      QUERY_IMPL_INFO_STR,
      0,
      ptrOf(out),
    );
    const s = read(out);
    return status === 0 && s ? new Deno.UnsafePointerView(s).getCString() : "";
  }

  #release(owned: Plan["owned"]): void {
    const L = this.#lib;
    for (const p of owned.prims) L.dnnl_primitive_destroy(p);
    for (const m of owned.mems) L.dnnl_memory_destroy(m);
    for (const pd of owned.pds) L.dnnl_primitive_desc_destroy(pd);
  }

  #plan(kind: number, conv: DnnlConv, withBias: boolean): Plan | null {
    const key = `${kind}|${
      withBias ? 1 : 0
    }|${conv.n},${conv.h},${conv.w},${conv.c}|${conv.oh},${conv.ow},${conv.co}|${conv.kh},${conv.kw}|${conv.sh},${conv.sw}|${conv.dh},${conv.dw}|${conv.top},${conv.bottom},${conv.left},${conv.right}`;
    return this.#cachedPlan(key, () => this.#build(kind, conv, withBias));
  }

  /** The plan cached under `key`, built (and cached, null included) on a miss. */
  #cachedPlan(key: string, build: () => Plan | null): Plan | null {
    const hit = this.#plans.get(key);
    if (hit !== undefined) return hit;
    if (this.#plans.size >= MAX_PLANS) this.#clear();
    const plan = build();
    this.#plans.set(key, plan);
    return plan;
  }

  /** Builds one batch norm primitive (forward training or backward), or null when unsupported. */
  #buildBatchNorm(backward: boolean, bn: DnnlBatchNorm): Plan | null {
    return this.#guarded((owned) =>
      this.#buildBatchNormInto(backward, bn, owned)
    );
  }

  #buildBatchNormInto(
    backward: boolean,
    bn: DnnlBatchNorm,
    owned: Plan["owned"],
  ): Plan | null {
    const L = this.#lib;
    const data = ptrOf(this.#md([bn.n, bn.c, bn.h, bn.w], TAG_NHWC));
    const fwdDesc = new Uint8Array(OP_DESC_BYTES);
    this.#check(
      L.dnnl_batch_normalization_forward_desc_init(
        ptrOf(fwdDesc),
        FORWARD_TRAINING,
        data,
        bn.epsilon,
        USE_SCALESHIFT,
      ),
      "batch_normalization_forward_desc_init",
    );
    // The backward primitive needs the forward one as a hint.
    const fwd = this.#pd(fwdDesc, null);
    if (fwd === null) return null;
    owned.pds.push(fwd);
    let pd: Pointer = fwd;
    if (backward) {
      const desc = new Uint8Array(OP_DESC_BYTES);
      this.#check(
        L.dnnl_batch_normalization_backward_desc_init(
          ptrOf(desc),
          BACKWARD,
          data,
          data,
          bn.epsilon,
          USE_SCALESHIFT,
        ),
        "batch_normalization_backward_desc_init",
      );
      pd = this.#pd(desc, fwd);
      if (pd === null) return null;
      owned.pds.push(pd);
    }
    // Every argument in the primitive's own description: NHWC data, [c]
    // statistics, [2, c] scale and shift.
    const mem = (query: number, index: number) =>
      this.#memory(L.dnnl_primitive_desc_query_md(pd, query, index), owned);
    // The statistics are outputs 1 and 2 forward, inputs 1 and 2 backward.
    const stats = backward ? QUERY_SRC_MD : QUERY_DST_MD;
    const args = new Map<number, Pointer>([
      [ARG_SRC, mem(QUERY_SRC_MD, 0)],
      [ARG_MEAN, mem(stats, 1)],
      [ARG_VARIANCE, mem(stats, 2)],
      [ARG_WEIGHTS, mem(QUERY_WEIGHTS_MD, 0)],
    ]);
    if (backward) {
      args.set(ARG_DIFF_DST, mem(QUERY_DIFF_DST_MD, 0))
        .set(ARG_DIFF_SRC, mem(QUERY_DIFF_SRC_MD, 0))
        .set(ARG_DIFF_WEIGHTS, mem(QUERY_DIFF_WEIGHTS_MD, 0));
    } else {
      args.set(ARG_DST, mem(QUERY_DST_MD, 0));
    }
    return {
      main: this.#step(pd, args, owned),
      impl: this.#implName(pd),
      owned,
    };
  }

  /** Runs the batch norm primitive of `bn` on `handles` (argument → address). */
  #execBatchNorm(
    backward: boolean,
    bn: DnnlBatchNorm,
    handles: [number, Pointer][],
  ): void {
    const key = `bn|${
      backward ? 1 : 0
    }|${bn.n},${bn.h},${bn.w},${bn.c}|${bn.epsilon}`;
    // One thread, when built as when run: oneDNN sizes a primitive's
    // scratch for the threads it sees at creation.
    this.#oneThread(() => {
      const plan = this.#cachedPlan(
        key,
        () => this.#buildBatchNorm(backward, bn),
      );
      if (!plan) {
        throw new Error(`oneDNN has no batch norm for ${JSON.stringify(bn)}`);
      }
      const L = this.#lib;
      for (const [arg, handle] of handles) {
        L.dnnl_memory_set_data_handle(plan.main.args.get(arg)!, handle);
      }
      this.#run(plan.main);
      this.#check(L.dnnl_stream_wait(this.#stream), "stream_wait");
    });
  }

  /**
   * Runs `fn` with oneDNN's OpenMP parallel regions on the calling thread
   * alone (as many as before, after). oneDNN's JIT batch norm meets its
   * threads at spinning barriers a few times per call: on a shared machine
   * (more runnable threads than cores) every call then waits for a
   * descheduled thread, ~15 ms per call of any size (R18 DeepLab's full
   * step, 2 busy cores: 1.9 s against 0.9 s before), against 1-3 ms for the
   * largest on one thread. Without libgomp's entry points, as they are.
   */
  #oneThread(fn: () => void): void {
    const omp = this.#openmp;
    if (!omp) return fn();
    const threads = omp.omp_get_max_threads();
    if (threads <= 1) return fn();
    omp.omp_set_num_threads(1);
    try {
      fn();
    } finally {
      omp.omp_set_num_threads(threads);
    }
  }

  /**
   * Builds one element-wise primitive over `size` floats (every argument
   * that flat f32 vector), or null when unsupported: `init` fills the
   * operation descriptor (and the forward one a backward needs as a hint).
   */
  #buildElementwise(
    size: number,
    init: (desc: Pointer, md: Pointer) => { status: number; hint?: Pointer },
    args: number[],
    attr: Pointer,
    owned: Plan["owned"],
  ): Plan | null {
    const md = ptrOf(this.#md([size], TAG_X));
    const desc = new Uint8Array(OP_DESC_BYTES);
    const { status, hint = null } = init(ptrOf(desc), md);
    this.#check(status, "elementwise desc_init");
    const pd = this.#pd(desc, hint, attr);
    if (pd === null) return null;
    owned.pds.push(pd);
    const mems = new Map(args.map((a) => [a, this.#memory(md, owned)]));
    return {
      main: this.#step(pd, mems, owned),
      impl: this.#implName(pd),
      owned,
    };
  }

  /** An owned-objects record released when `build` throws. */
  #guarded(build: (owned: Plan["owned"]) => Plan | null): Plan | null {
    const owned: Plan["owned"] = { pds: [], prims: [], mems: [] };
    try {
      return build(owned);
    } catch (e) {
      this.#release(owned);
      throw e;
    }
  }

  /** dst = relu?(dst + other?), one binary (ReLU as its post-op) or eltwise primitive. */
  #buildAddRelu(size: number, sum: boolean, relu: boolean): Plan | null {
    const L = this.#lib;
    return this.#guarded((owned) => {
      if (!sum) {
        return this.#buildElementwise(
          size,
          (desc, md) => ({
            status: L.dnnl_eltwise_forward_desc_init(
              desc,
              FORWARD_TRAINING,
              ELTWISE_RELU,
              md,
              0,
              0,
            ),
          }),
          [ARG_SRC, ARG_DST],
          null,
          owned,
        );
      }
      const attr = outPtr();
      const ops = outPtr();
      this.#check(L.dnnl_primitive_attr_create(ptrOf(attr)), "attr_create");
      try {
        if (relu) {
          this.#check(L.dnnl_post_ops_create(ptrOf(ops)), "post_ops_create");
          try {
            this.#check(
              L.dnnl_post_ops_append_eltwise(read(ops), 1, ELTWISE_RELU, 0, 0),
              "post_ops_append_eltwise",
            );
            this.#check(
              L.dnnl_primitive_attr_set_post_ops(read(attr), read(ops)),
              "attr_set_post_ops",
            );
          } finally {
            L.dnnl_post_ops_destroy(read(ops));
          }
        }
        return this.#buildElementwise(
          size,
          (desc, md) => ({
            status: L.dnnl_binary_desc_init(desc, BINARY_ADD, md, md, md),
          }),
          [ARG_SRC, ARG_SRC_1, ARG_DST],
          read(attr),
          owned,
        );
      } finally {
        L.dnnl_primitive_attr_destroy(read(attr));
      }
    });
  }

  /** ReLU's backward from its output (the forward, a hint, is kept in `owned`). */
  #buildReluBackward(size: number): Plan | null {
    const L = this.#lib;
    return this.#guarded((owned) =>
      this.#buildElementwise(
        size,
        (desc, md) => {
          const fwdDesc = new Uint8Array(OP_DESC_BYTES);
          this.#check(
            L.dnnl_eltwise_forward_desc_init(
              ptrOf(fwdDesc),
              FORWARD_TRAINING,
              ELTWISE_RELU_USE_DST_FOR_BWD,
              md,
              0,
              0,
            ),
            "eltwise_forward_desc_init",
          );
          const fwd = this.#pd(fwdDesc, null);
          if (fwd === null) return { status: 3 }; // dnnl_unimplemented
          owned.pds.push(fwd);
          return {
            status: L.dnnl_eltwise_backward_desc_init(
              desc,
              ELTWISE_RELU_USE_DST_FOR_BWD,
              md,
              md,
              0,
              0,
            ),
            hint: fwd,
          };
        },
        [ARG_DST, ARG_DIFF_DST, ARG_DIFF_SRC],
        null,
        owned,
      )
    );
  }

  /** Runs the element-wise plan of `key` on `handles`, on one thread. */
  #execElementwise(
    key: string,
    build: () => Plan | null,
    handles: [number, Pointer][],
  ): void {
    this.#oneThread(() => {
      const plan = this.#cachedPlan(key, build);
      if (!plan) throw new Error(`oneDNN has no primitive for ${key}`);
      const L = this.#lib;
      for (const [arg, handle] of handles) {
        L.dnnl_memory_set_data_handle(plan.main.args.get(arg)!, handle);
      }
      this.#run(plan.main);
      this.#check(L.dnnl_stream_wait(this.#stream), "stream_wait");
    });
  }

  addRelu(size: number, dst: Pointer, other: Pointer, relu: boolean): void {
    if (!other && !relu) return;
    const sum = Boolean(other);
    this.#execElementwise(
      `addrelu|${size}|${sum ? 1 : 0}|${relu ? 1 : 0}`,
      () => this.#buildAddRelu(size, sum, relu),
      sum
        ? [[ARG_SRC, dst], [ARG_SRC_1, other], [ARG_DST, dst]]
        : [[ARG_SRC, dst], [ARG_DST, dst]],
    );
  }

  reluBackward(
    size: number,
    dst: Pointer,
    diffDst: Pointer,
    diffSrc: Pointer,
  ): void {
    this.#execElementwise(
      `relubwd|${size}`,
      () => this.#buildReluBackward(size),
      [[ARG_DST, dst], [ARG_DIFF_DST, diffDst], [ARG_DIFF_SRC, diffSrc]],
    );
  }

  batchNormForward(
    bn: DnnlBatchNorm,
    src: Pointer,
    scaleShift: Pointer,
    dst: Pointer,
    mean: Pointer,
    variance: Pointer,
  ): void {
    this.#execBatchNorm(false, bn, [
      [ARG_SRC, src],
      [ARG_WEIGHTS, scaleShift],
      [ARG_DST, dst],
      [ARG_MEAN, mean],
      [ARG_VARIANCE, variance],
    ]);
  }

  batchNormBackward(
    bn: DnnlBatchNorm,
    src: Pointer,
    mean: Pointer,
    variance: Pointer,
    diffDst: Pointer,
    scaleShift: Pointer,
    diffSrc: Pointer,
    diffScaleShift: Pointer,
  ): void {
    this.#execBatchNorm(true, bn, [
      [ARG_SRC, src],
      [ARG_MEAN, mean],
      [ARG_VARIANCE, variance],
      [ARG_DIFF_DST, diffDst],
      [ARG_WEIGHTS, scaleShift],
      [ARG_DIFF_SRC, diffSrc],
      [ARG_DIFF_WEIGHTS, diffScaleShift],
    ]);
  }

  #clear(): void {
    for (const p of this.#plans.values()) if (p) this.#release(p.owned);
    this.#plans.clear();
  }

  #scratchBuffer = new Uint8Array(0);

  /**
   * A 64-byte aligned scratch buffer of at least `bytes`, shared by every
   * plan's blocked weights (one convolution runs at a time), so the cache
   * holds no copy of any model's weights.
   */
  #scratch(bytes: number): Pointer {
    if (this.#scratchBuffer.length < bytes + 64) {
      this.#scratchBuffer = new Uint8Array(bytes + 64);
    }
    const base = Deno.UnsafePointer.of(this.#scratchBuffer);
    const addr = BigInt(Deno.UnsafePointer.value(base));
    return Deno.UnsafePointer.offset(base!, Number((64n - addr % 64n) % 64n));
  }

  #run(step: Step): void {
    this.#check(
      this.#lib.dnnl_primitive_execute(
        step.prim,
        this.#stream,
        step.args.size,
        ptrOf(step.packed),
      ),
      "primitive_execute",
    );
  }

  #exec(
    kind: number,
    conv: DnnlConv,
    handles: { src: Pointer; weights: Pointer; dst: Pointer; bias?: Pointer },
  ): void {
    const plan = this.#plan(kind, conv, Boolean(handles.bias));
    if (!plan) {
      throw new Error(
        `oneDNN has no convolution for ${JSON.stringify(conv)}`,
      );
    }
    const L = this.#lib;
    const m = plan.main.args;
    L.dnnl_memory_set_data_handle(m.get(ARG_SRC)!, handles.src);
    L.dnnl_memory_set_data_handle(m.get(ARG_DST)!, handles.dst);
    L.dnnl_memory_set_data_handle(m.get(ARG_WEIGHTS)!, handles.weights);
    if (handles.bias) {
      L.dnnl_memory_set_data_handle(m.get(ARG_BIAS)!, handles.bias);
    }
    if (plan.packed) {
      L.dnnl_memory_set_data_handle(
        plan.packed.mem,
        this.#scratch(plan.packed.bytes),
      );
    }
    if (plan.before) this.#run(plan.before);
    this.#run(plan.main);
    if (plan.after) this.#run(plan.after);
    this.#check(L.dnnl_stream_wait(this.#stream), "stream_wait");
  }

  convForward(
    conv: DnnlConv,
    src: Pointer,
    weights: Pointer,
    bias: Pointer,
    dst: Pointer,
  ): void {
    this.#exec(FORWARD_TRAINING, conv, {
      src,
      weights,
      dst,
      ...(bias ? { bias } : {}),
    });
  }

  convBackwardData(
    conv: DnnlConv,
    diffDst: Pointer,
    weights: Pointer,
    diffSrc: Pointer,
  ): void {
    this.#exec(BACKWARD_DATA, conv, { src: diffSrc, weights, dst: diffDst });
  }

  convBackwardWeights(
    conv: DnnlConv,
    src: Pointer,
    diffDst: Pointer,
    diffWeights: Pointer,
  ): void {
    this.#exec(BACKWARD_WEIGHTS, conv, {
      src,
      weights: diffWeights,
      dst: diffDst,
    });
  }

  implementation(
    kind: "forward" | "backward data" | "backward weights",
    conv: DnnlConv,
  ): string | undefined {
    const k = kind === "forward"
      ? FORWARD_TRAINING
      : kind === "backward data"
      ? BACKWARD_DATA
      : BACKWARD_WEIGHTS;
    return this.#plan(k, conv, false)?.impl;
  }
}

let cached: { dnnl?: Dnnl; reason: string } | undefined;

/** Keeps the library mapped until the process ends (see `_blas.ts`'s pinLibrary). */
function pinLibrary(path: string): void {
  if (Deno.build.os !== "linux") return;
  try {
    const libc = Deno.dlopen("libc.so.6", {
      dlopen: { parameters: ["buffer", "i32"], result: "pointer" },
    });
    const RTLD_LAZY = 0x1, RTLD_NODELETE = 0x1000;
    libc.symbols.dlopen(
      new TextEncoder().encode(path + "\0"),
      RTLD_LAZY | RTLD_NODELETE,
    );
  } catch {
    // No libc.so.6 (e.g. musl): keep the default.
  }
}

/**
 * Makes oneDNN's OpenMP threads sleep as soon as a parallel region ends
 * (`OMP_WAIT_POLICY=passive`) unless the user chose a policy: libgomp reads
 * it once, when `libdnnl` loads it. Its default, spinning for a while,
 * costs a few microseconds less per call on an idle machine, but on a
 * shared one (more runnable threads than cores) every call then waits for
 * a descheduled spinner: an R18 DeepLab step on 2 busy cores took 6.5-7.4 s
 * spinning against 2.9-3.2 s passive (2.9-3.4 s on one thread).
 */
function preferPassiveWait(): void {
  try {
    if (Deno.env.get("OMP_WAIT_POLICY") === undefined) {
      Deno.env.set("OMP_WAIT_POLICY", "passive");
    }
  } catch {
    // No --allow-env: libgomp's default.
  }
}

/**
 * Opens oneDNN once. `AGCL_DNNL=off` disables it; `AGCL_DNNL_LIB` names a
 * library to try first. Never prompts: without `--allow-ffi` it reports
 * why and returns no library. Sets `OMP_WAIT_POLICY=passive` for oneDNN's
 * OpenMP threads when it is unset (see `preferPassiveWait`).
 */
export function openDnnl(): { dnnl?: Dnnl; reason: string } {
  if (cached) return cached;
  const setting = env("AGCL_DNNL")?.toLowerCase();
  if (setting === "off" || setting === "0" || setting === "false") {
    return cached = { reason: "oneDNN disabled by AGCL_DNNL" };
  }
  if (typeof Deno === "undefined" || typeof Deno.dlopen !== "function") {
    return cached = { reason: "no FFI in this runtime" };
  }
  if (!granted("ffi")) {
    return cached = { reason: "no --allow-ffi permission for oneDNN" };
  }
  const first = env("AGCL_DNNL_LIB");
  const errors: string[] = [];
  if (granted("env", "OMP_WAIT_POLICY")) preferPassiveWait();
  for (const path of first ? [first, ...CANDIDATES] : CANDIDATES) {
    let lib: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;
    try {
      lib = Deno.dlopen(path, SYMBOLS);
    } catch (e) {
      errors.push(`${path}: ${e instanceof Error ? e.message : e}`);
      continue;
    }
    const v = new Deno.UnsafePointerView(lib.symbols.dnnl_version()!);
    const version = `${v.getInt32(0)}.${v.getInt32(4)}.${v.getInt32(8)}`;
    if (v.getInt32(0) !== 2) {
      lib.close();
      errors.push(`${path}: oneDNN ${version} (only the 2.x C API is spoken)`);
      continue;
    }
    try {
      pinLibrary(path);
      const dnnl = new Library(path, lib.symbols, version, openOpenMp());
      return cached = { dnnl, reason: `oneDNN ${version} from ${path}` };
    } catch (e) {
      errors.push(`${path}: ${e instanceof Error ? e.message : e}`);
    }
  }
  return cached = {
    reason: `no oneDNN 2.x library found (${errors.join("; ")})`,
  };
}
