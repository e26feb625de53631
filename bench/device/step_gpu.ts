/**
 * The step bench on a GPU: the shipped ResNet-18/50 paper DeepLab and
 * projection head on Deno's WebGPU (tfjs-backend-webgpu) against the same
 * network in PyTorch fp32 on CUDA (bench/torch_ref/step_ref.py), on the
 * same GPU, in the four modes of {@linkcode MODES}. Prints the WebGPU
 * adapter first, then one table per depth as soon as it is measured, and
 * writes the tables to `--out` (default `$OUT`, the device machine's
 * result folder) as `step_gpu.md`, with the adapter in `adapter.json`.
 *
 * `bench/device/run.sh` runs it on a bare GPU machine from the folder that
 * `bench/device/prepare.sh` fills; see bench/device/README.md.
 */
import * as tf from "@tensorflow/tfjs";
import { parseFlags, runCli } from "../../cli/_args.ts";
import { selectBackend } from "../../backends/mod.ts";
import { type Mode, MODES, paperDeepLab, timeMs } from "../_common.ts";
import { buildOurs, countFlops } from "../step_bench.ts";

const USAGE = `deno run -A bench/device/step_gpu.ts [flags]
  on the device machine: bash bench/device/run.sh [flags]

WebGPU training steps against CUDA PyTorch fp32 on the same GPU: the paper
DeepLab (ResNet-18/50) in four modes (inference, full step, frozen-encoder
step, contrastive step), medians in ms, ratio and achieved GFLOP/s.

  --depths 18,50  ResNet depths (default 18,50)
  --reps N        timed steps per mode, median reported (default 10;
                  PyTorch: at least 20)
  --warmup N      untimed steps per mode first (default 2; PyTorch: at least 3)
  --batch N       samples per step (default 4; contrastive: 2 views each)
  --size N        input height and width (default 128)
  --python PATH   the Python with CUDA PyTorch (default python3)
  --no-torch      skip the PyTorch side
  --tf32          let PyTorch use TF32 (not fp32): a second opinion only
  --out DIR       write step_gpu.md and adapter.json there (default $OUT)
  --quick         a smoke run: batch 2, 32×32, 1 rep, 1 warm-up (flags given win)
  --help          print this and exit

On the device machine, after 'deno task bench-device-prepare' here, call the
device tool's run with command 'bash bench/device/run.sh' and carry
[".device"] (bench/device/README.md).`;

/** Where a table or the adapter goes: stdout, and the file when asked. */
function emit(out: string | undefined, file: string, text: string): void {
  console.log(text);
  if (out) {
    Deno.writeTextFileSync(`${out}/${file}`, text + "\n", { append: true });
  }
}

interface GpuAdapterLike {
  info?: Record<string, unknown>;
  features?: Iterable<string>;
  limits?: Record<string, number>;
  isFallbackAdapter?: boolean;
}

/**
 * What the adapter tfjs asks for (high-performance) reports: its info
 * (vendor, architecture, device, description), features, a few limits, and
 * the graphics API Deno was told to use (`DENO_WEBGPU_BACKEND`, set by
 * backends/webgpu.ts when a Vulkan loader and driver are installed).
 */
async function adapterInfo(): Promise<Record<string, unknown>> {
  const gpu = (navigator as { gpu?: { requestAdapter(o: unknown): unknown } })
    .gpu;
  const adapter = await gpu?.requestAdapter({
    powerPreference: "high-performance",
  }) as GpuAdapterLike | null | undefined;
  if (!adapter) throw new Error("Cannot bench WebGPU: no adapter");
  const info: Record<string, unknown> = {};
  for (const k of ["vendor", "architecture", "device", "description"]) {
    info[k] = adapter.info?.[k];
  }
  const limits: Record<string, number> = {};
  for (
    const k of [
      "maxBufferSize",
      "maxStorageBufferBindingSize",
      "maxComputeWorkgroupStorageSize",
      "maxComputeInvocationsPerWorkgroup",
    ]
  ) limits[k] = adapter.limits?.[k] ?? NaN;
  return {
    ...info,
    isFallbackAdapter: Boolean(
      adapter.info?.isFallbackAdapter ?? adapter.isFallbackAdapter,
    ),
    api: Deno.env.get("DENO_WEBGPU_BACKEND") ?? "(wgpu's choice)",
    features: [...(adapter.features ?? [])].sort(),
    limits,
  };
}

/** fp32 matrix product rate of tfjs on WebGPU, `n`×`n` by `n`×`n`, read back. */
async function matMulGflops(n: number, reps: number): Promise<number> {
  const a = tf.randomUniform([n, n], 0, 1, "float32", 1);
  const b = tf.randomUniform([n, n], 0, 1, "float32", 2);
  try {
    const ms = await timeMs(async () => {
      const c = tf.matMul(a, b);
      await c.data();
      c.dispose();
    }, { reps, warmup: 1 });
    return (2 * n ** 3) / ms / 1e6;
  } finally {
    tf.dispose([a, b]);
  }
}

interface TorchResult {
  skip?: string;
  error?: string;
  [key: string]: number | string | undefined;
}

/** bench/torch_ref/step_ref.py on CUDA for `depth`: its JSON, or why not. */
async function torchSide(
  python: string,
  args: string[],
): Promise<TorchResult> {
  const script = decodeURIComponent(
    new URL("../torch_ref/step_ref.py", import.meta.url).pathname,
  );
  try {
    const out = await new Deno.Command(python, {
      args: [script, "--device", "cuda", ...args],
      env: { PYTHONDONTWRITEBYTECODE: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim();
    if (!out.success || !text.startsWith("{")) {
      const err = new TextDecoder().decode(out.stderr).trim().split("\n")
        .pop();
      return { error: `PyTorch side failed (exit ${out.code}): ${err}` };
    }
    return JSON.parse(text.split("\n").pop()!) as TorchResult;
  } catch (e) {
    return {
      skip: `PyTorch side skipped: cannot run ${python} (${
        e instanceof Error ? e.message : e
      })`,
    };
  }
}

const fmt = (v: number | undefined, digits = 1) =>
  v === undefined || !Number.isFinite(v) ? "–" : v.toFixed(digits);

await runCli(async () => {
  const { values } = parseFlags("bench-device", Deno.args, {
    depths: { type: "string" },
    reps: { type: "string" },
    warmup: { type: "string" },
    batch: { type: "string" },
    size: { type: "string" },
    python: { type: "string", default: "python3" },
    "no-torch": { type: "boolean", default: false },
    tf32: { type: "boolean", default: false },
    out: { type: "string" },
    quick: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const q = values.quick;
  const int = (name: string, v: string | undefined, dflt: number) => {
    const n = v === undefined ? dflt : Number(v);
    if (!Number.isInteger(n) || n < 0) {
      throw new RangeError(
        `Cannot run bench-device as '--${name}' must be an integer >= 0: current value is ${v}`,
      );
    }
    return n;
  };
  const cfg = {
    depths: (values.depths ?? "18,50").split(",").map((d) => {
      if (d !== "18" && d !== "50") {
        throw new RangeError(
          `Cannot run bench-device as '--depths' must list 18 and/or 50: current value is ${values.depths}`,
        );
      }
      return Number(d) as 18 | 50;
    }),
    reps: Math.max(1, int("reps", values.reps, q ? 1 : 10)),
    warmup: int("warmup", values.warmup, q ? 1 : 2),
    batch: Math.max(1, int("batch", values.batch, q ? 2 : 4)),
    size: Math.max(8, int("size", values.size, q ? 32 : 128)),
  };
  let out = values.out;
  if (out === undefined) out = Deno.env.get("OUT") || undefined;
  if (out) {
    Deno.mkdirSync(out, { recursive: true });
    // Tables are appended depth by depth: start from empty files.
    for (const f of ["adapter.json", "step_gpu.md"]) {
      Deno.writeTextFileSync(`${out}/${f}`, "");
    }
  }
  console.log(`bench-device: ${JSON.stringify(cfg)}`);

  const report = await selectBackend("webgpu", { purpose: "train" });
  if (report.name !== "webgpu") {
    throw new Error(
      `Cannot bench WebGPU: the backend fell back to ${report.name} (${report.reason})`,
    );
  }
  const adapter = await adapterInfo();
  emit(out, "adapter.json", JSON.stringify(adapter, null, 2));
  const mm = q ? 256 : 4096;
  const gflops = await matMulGflops(mm, cfg.reps);
  console.log(
    `tfjs WebGPU matMul ${mm}×${mm}×${mm} fp32: ${gflops.toFixed(0)} GFLOP/s`,
  );

  for (const depth of cfg.depths) {
    const t0 = performance.now();
    const steps = buildOurs(depth, { size: cfg.size, batch: cfg.batch });
    const ours = new Map<Mode, number>();
    const flops = new Map<Mode, number>();
    try {
      for (const mode of MODES) {
        ours.set(
          mode,
          await timeMs(() => steps.run(mode), {
            reps: cfg.reps,
            warmup: cfg.warmup,
          }),
        );
        flops.set(mode, await countFlops(() => steps.run(mode)));
        console.log(
          `R${depth} ${mode}: webgpu ${fmt(ours.get(mode))} ms (${
            ((performance.now() - t0) / 1e3).toFixed(0)
          } s so far)`,
        );
      }
    } finally {
      steps.dispose();
    }
    const py: TorchResult = values["no-torch"]
      ? { skip: "PyTorch side skipped: --no-torch" }
      : await torchSide(values.python, [
        "--config",
        JSON.stringify(paperDeepLab(depth)),
        "--reps",
        String(Math.max(cfg.reps, q ? 1 : 20)),
        "--warmup",
        String(Math.max(cfg.warmup, q ? 0 : 3)),
        "--batch",
        String(cfg.batch),
        "--size",
        String(cfg.size),
        "--sgemm",
        String(mm),
        ...(values.tf32 ? ["--tf32"] : []),
      ]);
    const torchMs = (m: Mode) => {
      const v = py[m];
      return typeof v === "number" ? v : undefined;
    };
    const lines = [
      `\nResNet-${depth} DeepLab (OS 8, ASPP 512 @ 6/12/18), batch ${cfg.batch}, 2×${cfg.size}×${cfg.size}; ms, median of ${cfg.reps} (PyTorch: of ${
        Math.max(cfg.reps, q ? 1 : 20)
      }); ` +
      `WebGPU: ${
        adapter.description || adapter.device || "?"
      } (${adapter.vendor}, ${adapter.api}), matMul ${
        gflops.toFixed(0)
      } GFLOP/s` +
      (typeof py["sgemm GFLOP/s"] === "number"
        ? `; PyTorch ${py.torch} on ${py.device}, ${py.precision}, sgemm ${
          py["sgemm GFLOP/s"].toFixed(0)
        } GFLOP/s`
        : ""),
      ...(py.skip || py.error ? [`note: ${py.skip ?? py.error}`] : []),
      "",
      "| mode | ours webgpu | PyTorch CUDA | ratio (ours/PyTorch) | ours GFLOP/s | PyTorch GFLOP/s |",
      "| --- | --- | --- | --- | --- | --- |",
      ...MODES.map((m) => {
        const o = ours.get(m);
        const t = torchMs(m);
        const f = flops.get(m);
        return `| ${m} | ${fmt(o)} | ${fmt(t)} | ${
          o && t ? `${(o / t).toFixed(2)}×` : "–"
        } | ${f && o ? fmt(f / o / 1e6) : "–"} | ${
          f && t ? fmt(f / t / 1e6) : "–"
        } |`;
      }),
    ];
    emit(out, "step_gpu.md", lines.join("\n"));
  }
});
