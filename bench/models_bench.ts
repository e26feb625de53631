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
 *   projection head, SupCon written inline, SGD).
 *
 * PyTorch (Debian's python3-torch, 2 threads) runs the same network,
 * written below without torchvision, under the same names. Before timing,
 * a small network is saved with {@linkcode saveCheckpoint}, loaded into the
 * PyTorch model with `load_state_dict(strict=True)` and both outputs (eval
 * and training mode, and the updated BN statistics) are compared: the
 * checkpoint is torchvision-compatible and the arithmetic is the same.
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
  type Head,
  saveCheckpoint,
} from "../models/mod.ts";
import { encodeSafetensors } from "../models/safetensors.ts";
import {
  type BenchFlags,
  printTable,
  rssMiB,
  runPython,
  timeMs,
} from "./_common.ts";

const MODES = [
  "inference",
  "full step",
  "frozen-encoder step",
  "contrastive step",
] as const;
type Mode = (typeof MODES)[number];

const BATCH = 4;
const SIZE = 128;
const CHANNELS = 2;
const TEMPERATURE = 0.1;

/** The network both sides build. */
function netConfig(depth: 18 | 50) {
  return {
    depth,
    inChannels: CHANNELS,
    stem: "imagenet",
    outputStride: 8,
    asppChannels: 512,
    asppRates: [6, 12, 18] as number[],
    nClasses: 2,
  } as const;
}

/** SupCon (Khosla et al.) over `z` `[2B, d]` (unit rows, view-major) with `labels` `[2B]`. */
function supCon(z: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const n = z.shape[0];
    const eye = tf.eye(n);
    const logits = tf.div(tf.matMul(z, z, false, true), TEMPERATURE);
    // Self-contrast is excluded from the denominator.
    const masked = tf.sub(logits, tf.mul(eye, 1e9));
    const logProb = tf.sub(logits, tf.logSumExp(masked, 1, true));
    const same = tf.cast(
      tf.equal(labels.expandDims(1), labels.expandDims(0)),
      "float32",
    );
    const positives = tf.sub(same, eye);
    const perAnchor = tf.div(
      tf.sum(tf.mul(positives, logProb), 1),
      tf.sum(positives, 1),
    );
    return tf.neg(tf.mean(perAnchor)) as tf.Scalar;
  });
}

interface Bench {
  run(mode: Mode): Promise<void>;
  dispose(): void;
}

function buildBench(net: DeepLab, head: Head, seed: number): Bench {
  const x = tf.randomNormal(
    [BATCH, SIZE, SIZE, CHANNELS],
    0,
    1,
    "float32",
    seed,
  ) as tf.Tensor4D;
  const x2 = tf.randomNormal(
    [2 * BATCH, SIZE, SIZE, CHANNELS],
    0,
    1,
    "float32",
    seed + 1,
  ) as tf.Tensor4D;
  const y = tf.oneHot(
    tf.randomUniform([BATCH, SIZE, SIZE], 0, 2, "int32", seed + 2),
    2,
  ) as tf.Tensor4D;
  const labels = tf.tensor1d([0, 1, 2, 3, 0, 1, 2, 3], "int32");
  const full = tf.train.momentum(1e-3, 0.9);
  const frozen = tf.train.adam(1e-4);
  const contrastive = tf.train.sgd(5e-4);
  const contrastiveVars = [
    ...net.encoder.trainableVariables(),
    ...head.trainableVariables(),
  ];
  const ce = (logits: tf.Tensor4D) =>
    tf.losses.softmaxCrossEntropy(y, logits) as tf.Scalar;
  const read = async (t: tf.Tensor | null) => {
    await t!.data();
    t!.dispose();
  };
  return {
    run(mode: Mode): Promise<void> {
      switch (mode) {
        case "inference":
          return read(net.apply(x));
        case "full step":
          return read(
            full.minimize(
              () => ce(net.apply(x, { training: true })),
              true,
              net.trainableVariables(),
            ),
          );
        case "frozen-encoder step":
          return read(
            frozen.minimize(
              () => ce(net.apply(x, { training: true, freezeEncoder: true })),
              true,
              net.decoderVariables(),
            ),
          );
        case "contrastive step":
          return read(contrastive.minimize(
            () => {
              const { pooled } = net.encoder.apply(x2, { training: true });
              return supCon(head.apply(pooled), labels);
            },
            true,
            contrastiveVars,
          ));
      }
    },
    dispose() {
      tf.dispose([x, x2, y, labels]);
      [full, frozen, contrastive].forEach((o) => o.dispose());
    },
  };
}

/** The PyTorch side: the same network under the same names, no torchvision. */
const TORCH_MODELS = String.raw`
import json, sys, time, struct
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
torch.set_num_threads(2)

def conv(i, o, k, s=1, d=1):
    return nn.Conv2d(i, o, k, s, padding=d * (k - 1) // 2, dilation=d, bias=False)

class Basic(nn.Module):
    expansion = 1
    def __init__(s, inp, planes, stride, d, down):
        super().__init__()
        s.conv1 = conv(inp, planes, 3, stride, d); s.bn1 = nn.BatchNorm2d(planes)
        s.conv2 = conv(planes, planes, 3, 1, d); s.bn2 = nn.BatchNorm2d(planes)
        s.downsample = down
    def forward(s, x):
        y = s.bn2(s.conv2(F.relu(s.bn1(s.conv1(x)))))
        return F.relu(y + (s.downsample(x) if s.downsample is not None else x))

class Bottleneck(nn.Module):
    expansion = 4
    def __init__(s, inp, planes, stride, d, down):
        super().__init__()
        s.conv1 = conv(inp, planes, 1); s.bn1 = nn.BatchNorm2d(planes)
        s.conv2 = conv(planes, planes, 3, stride, d); s.bn2 = nn.BatchNorm2d(planes)
        s.conv3 = conv(planes, planes * 4, 1); s.bn3 = nn.BatchNorm2d(planes * 4)
        s.downsample = down
    def forward(s, x):
        y = F.relu(s.bn1(s.conv1(x)))
        y = F.relu(s.bn2(s.conv2(y)))
        y = s.bn3(s.conv3(y))
        return F.relu(y + (s.downsample(x) if s.downsample is not None else x))

LAYERS = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3]}

def scaled(b, m):
    return max(1, int(np.floor(b * m + 0.5)))

class ResNet(nn.Module):
    def __init__(s, depth, inp, stem, os, m):
        super().__init__()
        block = Bottleneck if depth >= 50 else Basic
        w = scaled(64, m)
        s.stem = stem
        s.conv1 = conv(inp, w, 7, 2) if stem == "imagenet" else conv(inp, w, 3, 1)
        s.bn1 = nn.BatchNorm2d(w)
        natural = 32 if stem == "imagenet" else 8
        nd = int(round(np.log2(natural / os)))
        inplanes, dil = w, 1
        for si in range(4):
            planes = scaled(64 * 2 ** si, m)
            stride = 1 if si == 0 else 2
            prev = dil
            if si > 0 and si >= 4 - nd:
                dil *= stride; stride = 1
            blocks = []
            for i in range(LAYERS[depth][si]):
                st = stride if i == 0 else 1
                d = prev if i == 0 else dil
                down = None
                if i == 0 and (st != 1 or inplanes != planes * block.expansion):
                    down = nn.Sequential(conv(inplanes, planes * block.expansion, 1, st), nn.BatchNorm2d(planes * block.expansion))
                blocks.append(block(inplanes, planes, st, d, down))
                inplanes = planes * block.expansion
            setattr(s, "layer%d" % (si + 1), nn.Sequential(*blocks))
        s.channels = inplanes
    def forward(s, x):
        x = F.relu(s.bn1(s.conv1(x)))
        if s.stem == "imagenet":
            x = F.max_pool2d(x, 3, 2, 1)
        return s.layer4(s.layer3(s.layer2(s.layer1(x))))

def cbr(i, o, k, d=1):
    return nn.Sequential(conv(i, o, k, 1, d), nn.BatchNorm2d(o), nn.ReLU())

class ASPP(nn.Module):
    def __init__(s, cin, ch, rates):
        super().__init__()
        pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), conv(cin, ch, 1), nn.BatchNorm2d(ch), nn.ReLU())
        s.convs = nn.ModuleList([cbr(cin, ch, 1)] + [cbr(cin, ch, 3, r) for r in rates] + [pool])
        s.project = cbr(ch * (len(rates) + 2), ch, 1)
    def forward(s, f):
        outs = [b(f) for b in s.convs[:-1]] + [s.convs[-1](f).expand(-1, -1, f.shape[2], f.shape[3])]
        return s.project(torch.cat(outs, 1))

class DeepLab(nn.Module):
    def __init__(s, c):
        super().__init__()
        s.backbone = ResNet(c["depth"], c["inChannels"], c["stem"], c["outputStride"], c.get("widthMultiplier", 1))
        ch = c["asppChannels"]
        s.classifier = nn.Sequential(ASPP(s.backbone.channels, ch, c["asppRates"]), nn.Conv2d(ch, c["nClasses"], 1))
    def forward(s, x):
        y = s.classifier(s.backbone(x))
        return F.interpolate(y, size=x.shape[2:], mode="bilinear", align_corners=True)

def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    types = {"F32": np.float32, "I64": np.int64}
    out = {}
    for k, e in header.items():
        if k == "__metadata__":
            continue
        b, end = e["data_offsets"]
        a = np.frombuffer(raw[8 + n + b:8 + n + end], dtype=types[e["dtype"]]).reshape(e["shape"])
        out[k] = torch.from_numpy(a.copy())
    return out
`;

const TORCH_PARITY = TORCH_MODELS + String.raw`
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

const TORCH_TIMING = TORCH_MODELS + String.raw`
reps = int(sys.argv[1]); depths = json.loads(sys.argv[2]); T = ${TEMPERATURE}
def med(f):
    f()
    t = []
    for _ in range(reps):
        t0 = time.perf_counter(); f(); t.append((time.perf_counter() - t0) * 1e3)
    return sorted(t)[len(t) // 2]
def supcon(z, labels):
    n = z.shape[0]; eye = torch.eye(n)
    logits = z @ z.T / T
    lp = logits - torch.logsumexp(logits - eye * 1e9, 1, keepdim=True)
    pos = (labels[:, None] == labels[None, :]).float() - eye
    return -((pos * lp).sum(1) / pos.sum(1)).mean()
out = {}
for depth in depths:
    torch.manual_seed(0)
    net = DeepLab({"depth": depth, "inChannels": 2, "stem": "imagenet", "outputStride": 8, "asppChannels": 512, "asppRates": [6, 12, 18], "nClasses": 2})
    cf = net.backbone.channels
    head = nn.Sequential(nn.Linear(cf, cf), nn.ReLU(), nn.Linear(cf, 256))
    x = torch.randn(4, 2, 128, 128); x2 = torch.randn(8, 2, 128, 128); y = torch.randint(0, 2, (4, 128, 128))
    labels = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    full = torch.optim.SGD(net.parameters(), 1e-3, momentum=0.9)
    frozen = torch.optim.Adam(net.classifier.parameters(), 1e-4)
    con = torch.optim.SGD(list(net.backbone.parameters()) + list(head.parameters()), 5e-4)
    def inference():
        net.eval()
        with torch.no_grad(): net(x)
    def full_step():
        net.train(); full.zero_grad(); F.cross_entropy(net(x), y).backward(); full.step()
    def frozen_step():
        net.backbone.eval(); net.classifier.train(); frozen.zero_grad()
        with torch.no_grad(): f = net.backbone(x)
        o = F.interpolate(net.classifier(f), size=x.shape[2:], mode="bilinear", align_corners=True)
        F.cross_entropy(o, y).backward(); frozen.step()
    def contrastive_step():
        net.backbone.train(); con.zero_grad()
        z = F.normalize(head(net.backbone(x2).mean((2, 3))), dim=1)
        supcon(z, labels).backward(); con.step()
    out["R%d" % depth] = {"inference": med(inference), "full step": med(full_step), "frozen-encoder step": med(frozen_step), "contrastive step": med(contrastive_step)}
print(json.dumps({"results": out, "threads": torch.get_num_threads()}))
`;

/** Saves a small network and its outputs, loads it in PyTorch, compares. */
async function parity(): Promise<void> {
  const config = {
    ...netConfig(18),
    widthMultiplier: 0.25,
    asppChannels: 32,
    seed: 3,
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
      `checkpoint parity with PyTorch (R18 ×0.25, ASPP 32, 2×64×64, load_state_dict strict): ` +
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
    ...netConfig(18),
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
      const net = createDeepLab({ ...netConfig(depth), seed: 1 });
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
    await parity();
    torch = await runPython(TORCH_TIMING, [
      String(reps),
      JSON.stringify(depths),
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
