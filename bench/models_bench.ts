/**
 * The models against PyTorch, in the same run: ResNet-18/50 DeepLab with
 * the paper's settings (ImageNet stem, output stride 8, ASPP 512 channels at
 * rates 6/12/18 with image pooling), a 128×128 input with 2 channels
 * (CT + attention), batch 4, timed per backend for
 *
 * - inference (eval mode, logits read back),
 * - a full training step (SGD with momentum, cross-entropy),
 * - a frozen-encoder step (stage 3: Adam on the decoder only),
 * - a contrastive step (4 samples × 2 views through the encoder and the
 *   projection head, the shipped `supConLoss`, SGD).
 *
 * PyTorch (Debian's python3-torch, 2 threads) runs the same network,
 * bench/torch_ref/agcl_torch.py (written without torchvision, under the
 * same names). Before timing, two small networks (the paper's head, and the
 * DeepLabv3+ low-level skip with half-pixel upsampling) are saved with
 * {@linkcode saveCheckpoint}, loaded into the PyTorch model with
 * `load_state_dict(strict=True)` and both outputs (eval and training mode,
 * and the updated BN statistics) are compared: the checkpoint is
 * torchvision-compatible and the arithmetic is the same.
 *
 * Also printed: peak RSS, and `tf.memory().numTensors` over 50 training
 * steps (it must stay flat).
 */
import * as tf from "@tensorflow/tfjs";
import {
  availableBackends,
  type BackendName,
  getBackend,
  selectBackend,
} from "../backends/mod.ts";
import {
  createDeepLab,
  createProjectionHead,
  type DeepLab,
  type DeepLabOptions,
  type Head,
  saveCheckpoint,
} from "../models/mod.ts";
import { encodeSafetensors } from "../models/safetensors.ts";
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
import { type BenchSteps, benchSteps } from "./_steps.ts";

const BATCH = 4;
const SIZE = 128;
const CHANNELS = 2;
const TEMPERATURE = 0.1;

/** The four modes of `net` with this bench's optimisers and inputs. */
function buildBench(net: DeepLab, head: Head, seed: number): BenchSteps {
  return benchSteps(net, head, {
    optimizers: {
      full: tf.train.momentum(1e-3, 0.9),
      frozen: tf.train.adam(1e-4),
      contrastive: tf.train.sgd(5e-4),
    },
    batch: BATCH,
    size: SIZE,
    seed,
    temperature: TEMPERATURE,
  });
}

/**
 * Loads our checkpoint (argv: DeepLab options as JSON, the folder) into the
 * PyTorch reference (bench/torch_ref/agcl_torch.py) and compares outputs.
 */
const TORCH_PARITY = String.raw`
import json, sys, torch
from agcl_torch import DeepLab, read_safetensors
c = json.loads(sys.argv[1]); d = sys.argv[2]
net = DeepLab(c)
net.load_state_dict(read_safetensors(d + "/net.safetensors"), strict=True)
io = read_safetensors(d + "/io.safetensors")
x = io["x"].permute(0, 3, 1, 2)
net.eval()
with torch.no_grad():
    e = net(x).permute(0, 2, 3, 1)
    net.train()
    t = net(x).permute(0, 2, 3, 1)
rm = net.backbone.layer4[-1].bn2.running_var
print(json.dumps({
    "eval": float((e - io["eval"]).abs().max()), "evalScale": float(io["eval"].abs().max()),
    "train": float((t - io["train"]).abs().max()), "trainScale": float(io["train"].abs().max()),
    "runningVar": float((rm - io["running_var"]).abs().max()),
}))
`;

/**
 * Times the PyTorch reference in the four modes (argv: reps, depths, the
 * network's options as JSON, batch, size, temperature), with the optimisers
 * of {@linkcode buildBench}.
 */
const TORCH_TIMING = String.raw`
import json, sys, torch
from agcl_torch import DeepLab, ProjectionHead, bench_steps, median_ms
reps = int(sys.argv[1]); depths = json.loads(sys.argv[2]); c = json.loads(sys.argv[3])
batch, size, T = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
out = {}
for depth in depths:
    torch.manual_seed(0)
    net = DeepLab({**c, "depth": depth})
    head = ProjectionHead(net.backbone.channels, 256)
    opts = (torch.optim.SGD(net.parameters(), 1e-3, momentum=0.9),
            torch.optim.Adam(net.decoder_parameters(), 1e-4),
            torch.optim.SGD(list(net.backbone.parameters()) + list(head.parameters()), 5e-4))
    steps = bench_steps(net, head, opts, batch, size, T)
    out["R%d" % depth] = {mode: median_ms(f, reps) for mode, f in steps.items()}
print(json.dumps({"results": out, "threads": torch.get_num_threads()}))
`;

/**
 * Saves a small network (R18 ×0.25, ASPP 32, with `options`) and its
 * outputs, loads it in PyTorch, compares.
 */
async function parity(
  label: string,
  options: Partial<DeepLabOptions> = {},
): Promise<void> {
  const config = {
    ...paperDeepLab(18),
    widthMultiplier: 0.25,
    asppChannels: 32,
    seed: 3,
    ...options,
  };
  const net = createDeepLab(config);
  const dir = await Deno.makeTempDir({ prefix: "agcl-models-bench-" });
  try {
    await saveCheckpoint(`${dir}/net.safetensors`, net);
    const x = tf.randomNormal(
      [2, 64, 64, CHANNELS],
      0,
      1,
      "float32",
      9,
    ) as tf.Tensor4D;
    const evalOut = net.apply(x);
    const trainOut = net.apply(x, { training: true });
    const entry = async (t: tf.Tensor) => ({
      dtype: "F32" as const,
      shape: t.shape,
      data: await t.data() as Float32Array,
    });
    await Deno.writeFile(
      `${dir}/io.safetensors`,
      encodeSafetensors({
        x: await entry(x),
        eval: await entry(evalOut),
        train: await entry(trainOut),
        running_var: await entry(
          net.state["backbone.layer4.1.bn2.running_var"]!,
        ),
      }),
    );
    tf.dispose([x, evalOut, trainOut]);
    const r = await runPython(TORCH_PARITY, [JSON.stringify(config), dir]) as
      | Record<string, number>
      | undefined;
    if (!r) return;
    console.log(
      `checkpoint parity with PyTorch (R18 ×0.25, ASPP 32${label}, 2×64×64, load_state_dict strict): ` +
        `eval max |Δ| ${r.eval!.toExponential(2)} (of ${
          r.evalScale!.toFixed(2)
        }), ` +
        `training-mode max |Δ| ${r.train!.toExponential(2)} (of ${
          r.trainScale!.toFixed(2)
        }), ` +
        `updated running_var max |Δ| ${r.runningVar!.toExponential(2)}`,
    );
  } finally {
    net.dispose();
    await Deno.remove(dir, { recursive: true });
  }
}

/** numTensors over 50 full training steps of a narrow R18 DeepLab. */
async function leakCheck(): Promise<void> {
  const net = createDeepLab({
    ...paperDeepLab(18),
    widthMultiplier: 0.25,
    asppChannels: 64,
  });
  const head = createProjectionHead({
    inFeatures: net.encoder.featureChannels,
  });
  const b = buildBench(net, head, 11);
  const counts: number[] = [];
  for (let i = 0; i < 50; i++) {
    await b.run(MODES[1 + (i % 3)]!);
    counts.push(tf.memory().numTensors);
  }
  // Each optimiser creates its slots on its first step (steps 1-3).
  const flat = counts.slice(2).every((c) => c === counts[2]);
  console.log(
    `numTensors over 50 training steps (full, frozen, contrastive in turn; R18 ×0.25): ` +
      `${counts[2]} after step 3, ${counts[49]} after step 50: ${
        flat ? "flat" : "GROWING"
      }`,
  );
  b.dispose();
  head.dispose();
  net.dispose();
}

export default async function run(flags: BenchFlags): Promise<void> {
  const reps = flags.quick ? 1 : 3;
  const depths: (18 | 50)[] = flags.quick ? [18] : [18, 50];
  let peak = rssMiB();
  const notes: string[] = [];
  const results: { backend: string; depth: number; mode: Mode; ms: number }[] =
    [];
  const backends = (await availableBackends()).filter((b) =>
    !flags.backend || flags.backend === b
  );
  for (const name of backends) {
    if (name === "webgpu" && !flags.backend) {
      const adapter = await (await getBackend("webgpu")).adapter();
      if (adapter?.isFallbackAdapter) {
        notes.push(
          `webgpu skipped: the only adapter is a software fallback (${adapter.description}); run with --backend webgpu to force it`,
        );
        continue;
      }
    }
    await selectBackend(name, { purpose: "infer" });
    const canTrain = !(await getBackend(name)).missingFor("train");
    for (const depth of depths) {
      // The reference cpu backend needs minutes per R18 training step.
      const modes = MODES.filter((m) => {
        if (m !== "inference" && !canTrain) return false;
        return name !== "cpu" || (depth === 18 && m === "inference");
      });
      if (modes.length < MODES.length) {
        notes.push(
          `${name} R${depth}: ${
            MODES.filter((m) => !modes.includes(m)).join(", ")
          } skipped (${
            canTrain
              ? "the cpu backend needs minutes per step"
              : "no training kernels"
          })`,
        );
      }
      if (modes.length === 0) continue;
      const net = createDeepLab({ ...paperDeepLab(depth), seed: 1 });
      const head = createProjectionHead({
        inFeatures: net.encoder.featureChannels,
        seed: 2,
      });
      const b = buildBench(net, head, 5);
      for (const mode of modes) {
        const ms = await timeMs(() => b.run(mode), {
          reps: name === "cpu" ? 1 : reps,
          warmup: 1,
        });
        results.push({ backend: name as BackendName, depth, mode, ms });
        console.log(
          `${name} R${depth} ${mode}: ${
            ms.toFixed(0)
          } ms (${tf.memory().numTensors} tensors, RSS ${
            rssMiB().toFixed(0)
          } MiB)`,
        );
        peak = Math.max(peak, rssMiB());
      }
      b.dispose();
      head.dispose();
      net.dispose();
    }
  }
  await selectBackend(backends.includes("wasm") ? "wasm" : "cpu", {
    purpose: "train",
  });
  await leakCheck();
  let torch: {
    results: Record<string, Record<string, number>>;
    threads: number;
  } | undefined;
  if (flags.comparePytorch) {
    await parity("");
    await parity(", low-level skip 16, half-pixel upsampling", {
      lowLevelSkip: true,
      lowLevelChannels: 16,
      alignCorners: false,
    });
    torch = await runPython(TORCH_TIMING, [
      String(reps),
      JSON.stringify(depths),
      JSON.stringify(paperDeepLab(18)),
      String(BATCH),
      String(SIZE),
      String(TEMPERATURE),
    ]) as typeof torch;
  }
  const rows = results.map((r) => {
    const ref = torch?.results[`R${r.depth}`]?.[r.mode];
    return [
      r.backend,
      `R${r.depth}`,
      r.mode,
      r.ms,
      ref ?? "–",
      ref ? `${(r.ms / ref).toFixed(2)}×` : "–",
    ];
  });
  console.log(
    `\nDeepLab (ImageNet stem, output stride 8, ASPP 512 @ 6/12/18), ${BATCH}×${SIZE}×${SIZE}×${CHANNELS}, median of ${reps}; ` +
      `PyTorch ${torch ? `with ${torch.threads} threads` : "absent"}\n`,
  );
  printTable(["backend", "net", "mode", "ms", "PyTorch ms", "ratio"], rows);
  for (const n of notes) console.log(`note: ${n}`);
  console.log(`peak RSS ${peak.toFixed(0)} MiB`);
}
