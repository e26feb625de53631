/**
 * Training-step speed against PyTorch on the same machine, in the same run:
 * ResNet-18/50 DeepLab (ImageNet stem, output stride 8, the paper's ASPP
 * head: 512 channels, rates 6/12/18, image pooling), 2×128×128 input,
 * batch 4, in four modes: inference, full training step, frozen-encoder
 * step, contrastive step (4 samples × 2 views through the encoder and a
 * projection head, the shipped `supConLoss`). Ours runs on wasm with the oneDNN plugin
 * (convolutions and matrix products on libdnnl), with the OpenBLAS plugin,
 * and on plain wasm (XNNPACK), both as a bare machine gets it (no native
 * library: the threaded build) and single-threaded; PyTorch (Debian
 * python3-torch) with 2 threads. Prints one table per depth with medians, the ratio, and achieved
 * GFLOP/s (multiply-adds of every convolution and matrix product, counted
 * from tf.profile) against the machine's sgemm peak.
 *
 * Options through the environment (the runner's flags are fixed):
 * `STEP_BENCH_MEMORY=200` runs the memory check (RSS and numTensors over
 * that many training steps of a smaller R18 DeepLab) instead of timing.
 *
 * The machine is shared and noisy: every number is a median of several
 * repetitions, PyTorch's included.
 */
import * as tf from "@tensorflow/tfjs";
import { selectBackend, setWasmAcceleration } from "../backends/mod.ts";
import { env } from "../backends/_permissions.ts";
import { createDeepLab, createProjectionHead } from "../models/mod.ts";
import {
  type BenchFlags,
  type Mode,
  MODES,
  paperDeepLab,
  printTable,
  rssMiB,
  runPython,
  timeMs,
} from "./_common.ts";
import { benchSteps } from "./_steps.ts";

/** The four modes of a paper DeepLab of `depth` and its projection head. */
export interface Net {
  run(mode: Mode): Promise<void>;
  dispose(): void;
}

/**
 * The shipped DeepLab and projection head (128 wide) in the four modes,
 * one SGD optimiser (lr 1e-4) for all, as the PyTorch side of {@linkcode TORCH}
 * (and of `bench/torch_ref/step_ref.py` for the GPU bench).
 */
export function buildOurs(
  depth: 18 | 50,
  { size = 128, batch = 4 }: { size?: number; batch?: number } = {},
): Net {
  const net = createDeepLab({ ...paperDeepLab(depth), seed: 1 });
  const proj = createProjectionHead({
    inFeatures: net.encoder.featureChannels,
    outFeatures: 128,
    seed: 2,
  });
  const opt = tf.train.sgd(1e-4);
  const steps = benchSteps(net, proj, {
    optimizers: { full: opt, frozen: opt, contrastive: opt },
    batch,
    size,
    seed: 3,
  });
  return {
    run: (mode) => steps.run(mode),
    dispose() {
      steps.dispose();
      proj.dispose();
      net.dispose();
    },
  };
}

/** Multiply-adds ×2 of every conv / matrix product kernel `fn` runs. */
export async function countFlops(
  fn: () => Promise<void>,
): Promise<number> {
  const info = await tf.profile(fn);
  let flops = 0;
  for (const k of info.kernels) {
    const ins = k.inputShapes as number[][];
    const outs = k.outputShapes as number[][];
    const size = (s: number[] | undefined) =>
      (s ?? []).reduce((a, b) => a * b, 1);
    switch (k.name) {
      case "Conv2D":
      case "FusedConv2D": {
        const f = ins[1]!;
        flops += 2 * size(outs[0]) * f[0]! * f[1]! * f[2]!;
        break;
      }
      case "Conv2DBackpropInput": {
        const f = ins[1]!;
        flops += 2 * size(ins[0]) * f[0]! * f[1]! * f[2]!;
        break;
      }
      case "Conv2DBackpropFilter": {
        const dy = ins[1]!;
        flops += 2 * (size(dy) / dy[dy.length - 1]!) * size(outs[0]);
        break;
      }
      case "BatchMatMul":
      case "_FusedMatMul": {
        const o = outs[0]!;
        const a = ins[0]!;
        const m = o[o.length - 2]!;
        const rows = size(o) / o[o.length - 1]!; // batch × m
        const k = size(a) / (rows / m) / m;
        flops += 2 * size(o) * k;
        break;
      }
    }
  }
  return flops;
}

/**
 * The PyTorch reference (bench/torch_ref/agcl_torch.py) in the four modes,
 * one SGD optimiser as {@linkcode buildOurs}, and its sgemm rate; argv:
 * the network's options as JSON, reps.
 */
const TORCH = String.raw`
import json, sys, torch
from agcl_torch import DeepLab, ProjectionHead, bench_steps, median_ms
c = json.loads(sys.argv[1]); reps = int(sys.argv[2])
torch.manual_seed(0)
net = DeepLab(c); head = ProjectionHead(net.backbone.channels, 128)
opt = torch.optim.SGD(list(net.parameters()) + list(head.parameters()), 1e-4)
out = {mode: median_ms(f, reps) for mode, f in bench_steps(net, head, (opt, opt, opt)).items()}
a = torch.rand(2048, 2048); b = torch.rand(2048, 2048)
out["sgemm GFLOP/s"] = 2 * 2048 ** 3 / median_ms(lambda: a @ b, reps) / 1e6
out["threads"] = torch.get_num_threads()
print(json.dumps(out))
`;

/** The OpenMP wait policy ours runs under: the user's, else passive. */
function ompWaitPolicy(): string {
  return env("OMP_WAIT_POLICY") ?? "passive";
}

/** The machine's CPU model (Linux `/proc/cpuinfo`), or `undefined`. */
function cpuModel(): string | undefined {
  try {
    const info = Deno.readTextFileSync("/proc/cpuinfo");
    return info.match(/^model name\s*:\s*(.+)$/m)?.[1]?.trim();
  } catch {
    return undefined;
  }
}

async function sgemmPeak(
  library: "openblas" | "onednn",
): Promise<number | undefined> {
  const blas = library === "openblas"
    ? (await import("../backends/_blas.ts")).openBlas().blas
    : (await import("../backends/_dnnl.ts")).openDnnl().dnnl?.blas;
  if (!blas) return undefined;
  const n = 2048;
  const a = new Float32Array(n * n).fill(1);
  const c = new Float32Array(n * n);
  const ms = await timeMs(
    () => blas.gemm({ m: n, n, k: n, a, b: a, c }),
    { reps: 3 },
  );
  return (2 * n ** 3) / ms / 1e6;
}

/**
 * RSS and live tensors over `steps` training steps (full, frozen-encoder and
 * contrastive in turn) of a smaller R18 DeepLab (64×64, batch 2), per wasm
 * variant: leaks show as growth.
 */
async function memoryCheck(steps: number): Promise<void> {
  const modes: Mode[] = [
    "full step",
    "frozen-encoder step",
    "contrastive step",
  ];
  for (const acc of ["onednn", "blas", "xnnpack"] as const) {
    await selectBackend("wasm", { purpose: "train" });
    if ((await setWasmAcceleration(acc).catch(() => undefined))?.name !== acc) {
      continue;
    }
    const net = buildOurs(18, { size: 64, batch: 2 });
    const rows: (string | number)[][] = [];
    for (let i = 1; i <= steps; i++) {
      await net.run(modes[i % modes.length]!);
      if (i === 1 || i % Math.max(1, Math.floor(steps / 4)) === 0) {
        const heap =
          (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } })
            .wasm.HEAPU8.buffer.byteLength / 2 ** 20;
        rows.push([
          `wasm (${acc})`,
          i,
          tf.memory().numTensors,
          tf.memory().numBytes / 2 ** 20,
          heap,
          rssMiB(),
        ]);
      }
    }
    net.dispose();
    printTable(
      [
        "backend",
        "step",
        "numTensors",
        "tensor MiB",
        "wasm heap MiB",
        "RSS MiB",
      ],
      rows,
    );
  }
}

export default async function run(flags: BenchFlags): Promise<void> {
  let memSteps = 0;
  try {
    memSteps = Number(Deno.env.get("STEP_BENCH_MEMORY") ?? 0);
  } catch { /* no env permission */ }
  if (memSteps > 0) return memoryCheck(memSteps);

  const reps = flags.quick ? 2 : 3;
  // Each library's sgemm in its own process: OpenBLAS's and oneDNN's
  // thread pools never share this one.
  const peaks = await childPeaks();
  const variants: {
    label: string;
    acc: "onednn" | "blas" | "xnnpack";
    modes: readonly Mode[];
    depths: number[];
    env?: Record<string, string>;
  }[] = [
    { label: "wasm+onednn", acc: "onednn", modes: MODES, depths: [18, 50] },
    { label: "wasm+blas", acc: "blas", modes: MODES, depths: [18, 50] },
    // Plain XNNPACK is 5-10× slower: measured for R18 only, to bound the run.
    // The bare machine's path: no native library, so "auto" starts the
    // threaded build (one thread per CPU).
    {
      label: "wasm bare (xnnpack threaded)",
      acc: "xnnpack",
      modes: MODES,
      depths: [18],
      env: { AGCL_BLAS: "off", AGCL_DNNL: "off" },
    },
    // Its single-threaded build, the fallback.
    {
      label: "wasm (xnnpack 1 thread)",
      acc: "xnnpack",
      modes: MODES,
      depths: [18],
      env: { AGCL_WASM_THREADS: "1" },
    },
  ];
  for (const depth of flags.quick ? [18] as const : [18, 50] as const) {
    const ours = new Map<string, Map<Mode, number>>();
    let flops = new Map<Mode, number>();
    const notes: string[] = [];
    for (const v of variants) {
      if (!v.depths.includes(depth)) continue;
      if (flags.backend && flags.backend !== "wasm") continue;
      // Each variant in its own process: a fresh wasm heap (4 GiB at most,
      // never returned), so one variant's peak cannot starve the next, and
      // an out-of-memory abort loses only that variant's remaining modes.
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          import.meta.filename!,
          String(depth),
          v.acc,
          String(reps),
        ],
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1", ...v.env },
      }).output();
      const times = new Map<Mode, number>();
      for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
        if (!line.startsWith("{")) continue;
        const r = JSON.parse(line) as {
          mode: Mode;
          ms: number;
          flops?: number;
        };
        times.set(r.mode, r.ms);
        if (r.flops) flops.set(r.mode, r.flops);
      }
      if (!out.success) {
        const err = new TextDecoder().decode(out.stderr).trim().split("\n")
          .find((l) => /error|Abort/i.test(l)) ?? `exit ${out.code}`;
        const missing = v.modes.filter((m) => !times.has(m));
        notes.push(
          `${v.label}: ${missing.join(", ")} failed: ${err}`,
        );
      }
      ours.set(v.label, times);
    }
    if (flops.size === 0) flops = new Map();
    // PyTorch's OpenMP threads wait as ours do (oneDNN's plugin sets
    // passive unless the user chose): its default spin-wait cost it 2-4× on
    // a busy 2-core machine, which made our ratio look better than it is.
    const py = flags.comparePytorch
      ? await runPython(
        TORCH,
        [JSON.stringify(paperDeepLab(depth)), String(reps)],
        { env: { OMP_WAIT_POLICY: ompWaitPolicy() } },
      ) as
        | Record<string, number>
        | undefined
      : undefined;
    const labels = [...ours.keys()];
    const rows = MODES.map((mode) => {
      const mine = labels.map((l) => ours.get(l)?.get(mode));
      const best = Math.min(
        ...mine.filter((v): v is number => v !== undefined),
      );
      const torch = py?.[mode];
      const f = flops.get(mode);
      return [
        mode,
        ...mine.map((v) => (v === undefined ? "–" : v)),
        torch ?? "–",
        torch && Number.isFinite(best) ? `${(best / torch).toFixed(2)}×` : "–",
        f && Number.isFinite(best) ? (f / best / 1e6).toFixed(1) : "–",
        f && torch ? (f / torch / 1e6).toFixed(1) : "–",
      ];
    });
    console.log(
      `\nResNet-${depth} DeepLab (OS 8, ASPP 512 @ 6/12/18), batch 4, 2×128×128; ms, median of ${reps}` +
        `; CPU ${
          cpuModel() ?? "unknown"
        } (${navigator.hardwareConcurrency} threads)` +
        (peaks.openblas
          ? `; OpenBLAS sgemm peak ${peaks.openblas.toFixed(0)} GFLOP/s`
          : "") +
        (peaks.onednn
          ? `; oneDNN sgemm peak ${peaks.onednn.toFixed(0)} GFLOP/s`
          : "") +
        (py
          ? `; PyTorch sgemm ${
            py["sgemm GFLOP/s"]!.toFixed(0)
          } GFLOP/s (${py.threads} threads, OMP_WAIT_POLICY=${ompWaitPolicy()} as ours)`
          : ""),
    );
    for (const n of notes) console.log(`note: ${n}`);
    printTable(
      [
        "mode",
        ...labels.map((l) => `ours ${l}`),
        "PyTorch",
        "ratio (best/PyTorch)",
        "ours GFLOP/s",
        "PyTorch GFLOP/s",
      ],
      rows,
    );
  }
}

/** The sgemm peaks of OpenBLAS and oneDNN, each measured in a child process. */
async function childPeaks(): Promise<
  { openblas?: number; onednn?: number }
> {
  const peaks: { openblas?: number; onednn?: number } = {};
  for (const library of ["openblas", "onednn"] as const) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", import.meta.filename!, "sgemm", library],
      stdout: "piped",
      stderr: "null",
    }).output();
    const v = Number(new TextDecoder().decode(out.stdout).trim());
    if (out.success && v > 0) peaks[library] = v;
  }
  return peaks;
}

/**
 * Child process: `step_bench.ts DEPTH ACCELERATION REPS` → one JSON line per
 * mode; `step_bench.ts sgemm LIBRARY` → that library's sgemm GFLOP/s.
 */
async function child(args: string[]): Promise<void> {
  if (args[0] === "sgemm") {
    console.log(await sgemmPeak(args[1] as "openblas") ?? 0);
    return;
  }
  const [depth, acc, reps] = [
    Number(args[0]) as 18 | 50,
    args[1] as "onednn" | "blas" | "xnnpack",
    Number(args[2]),
  ];
  await selectBackend("wasm", { purpose: "train" });
  const got = await setWasmAcceleration(acc);
  if (got?.name !== acc) {
    throw new Error(`wasm acceleration ${acc} unavailable`);
  }
  const net = buildOurs(depth);
  for (const mode of MODES) {
    const ms = await timeMs(() => net.run(mode), { reps, warmup: 1 });
    const flops = acc !== "xnnpack"
      ? await countFlops(() => net.run(mode))
      : undefined;
    console.log(JSON.stringify({ mode, ms, ...(flops ? { flops } : {}) }));
  }
  net.dispose();
}

if (import.meta.main) await child(Deno.args);
