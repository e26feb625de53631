/**
 * Forward + backward of `modalTargetLoss` on `[256, 2, 256]` features (the
 * paper's projection size, a batch of 256 samples × 2 views: a 512 × 512
 * similarity matrix) on each backend, beside the same computation in
 * PyTorch (2 threads) in the same run. Then the loss's share of a ResNet-18
 * pre-training step (forward + backward, no optimiser update) on the
 * backend `auto` picks for training.
 */
import * as tf from "@tensorflow/tfjs";
import { availableBackends, selectBackend } from "../backends/mod.ts";
import { modalTargetLoss } from "../losses/mod.ts";
import { createEncoder, createProjectionHead } from "../models/mod.ts";
import { Prng } from "../random/mod.ts";
import { type BenchFlags, printTable, runPython, timeMs } from "./_common.ts";

/** The PyTorch side: bench/torch_ref/agcl_torch.py's SupCon over (domain, target) classes, autograd backward. */
const TORCH = `import json, sys, torch
from agcl_torch import median_ms, sup_con_loss
torch.set_num_threads(int(sys.argv[6]))
b, v, d, reps = (int(a) for a in sys.argv[1:5])
# The same features as ours, raw float32 from the file named in argv[5].
raw = open(sys.argv[5], "rb").read()
f = torch.frombuffer(bytearray(raw), dtype=torch.float32).reshape(b, v, d).requires_grad_()
domain = torch.arange(b) % 2
target = (torch.arange(b) // 2) % 12
def step():
    # modalTargetLoss without partial positives: SupCon over (domain, target) classes.
    loss = sup_con_loss(f, domain * 12 + target, 0.1)
    loss.backward()
    f.grad = None
    return loss.item()
value = step()
print(json.dumps({"ms": median_ms(step, reps, warmup=0), "threads": torch.get_num_threads(), "loss": value}))`;

/**
 * Median ms of a stage-2 step: ResNet-18 (ImageNet stem, as the paper's
 * supplement) on `batch` × 2 views of 2 × 128 × 128 (image + attention), the
 * projection head 512 → 512 → 256 and `modalTargetLoss`, forward and the
 * gradients of every trainable variable; and of the loss alone on the
 * step's `[batch, 2, 256]` embeddings.
 */
async function resnet18Step(
  batch: number,
  reps: number,
): Promise<{ step: number; loss: number }> {
  const encoder = createEncoder({ depth: 18, inChannels: 2, seed: 1 });
  const head = createProjectionHead({ inFeatures: 512, outFeatures: 256 });
  const prng = new Prng(3);
  const views = 2;
  const x = tf.tensor4d(
    Float32Array.from(
      { length: batch * views * 128 * 128 * 2 },
      () => prng.next(),
    ),
    [batch * views, 128, 128, 2],
  ); // [batch*views, 128, 128, 2], sample-major
  const labels = {
    domain: Int32Array.from({ length: batch }, (_, i) => i % 2),
    target: Int32Array.from({ length: batch }, (_, i) => i % 12),
  };
  const vars = [...encoder.trainableVariables(), ...head.trainableVariables()];
  const step = await timeMs(async () => {
    const { value, grads } = tf.variableGrads(() => {
      const { pooled } = encoder.apply(x, { training: true });
      const z = head.apply(pooled); // [batch*views, 256]
      return modalTargetLoss(
        tf.reshape(z, [batch, views, 256]) as tf.Tensor3D,
        labels,
      );
    }, vars);
    await value.data();
    tf.dispose([value, grads]);
  }, { reps });
  const z = tf.tensor3d(
    Float32Array.from({ length: batch * views * 256 }, () => prng.normal()),
    [batch, views, 256],
  );
  const lossAndGrad = tf.valueAndGrad((f: tf.Tensor) =>
    modalTargetLoss(f as tf.Tensor3D, labels)
  );
  const loss = await timeMs(async () => {
    const { value, grad } = lossAndGrad(z);
    await grad.data();
    tf.dispose([value, grad]);
  }, { reps: 5 * reps });
  tf.dispose([x, z]);
  encoder.dispose();
  head.dispose();
  return { step, loss };
}

export default async function run(flags: BenchFlags): Promise<void> {
  const [batch, views, dim] = flags.quick ? [64, 2, 256] : [256, 2, 256];
  const reps = flags.quick ? 3 : 7;
  const prng = new Prng(0);
  const values = Float32Array.from(
    { length: batch * views * dim },
    () => prng.normal(),
  );
  // 2 domains × 12 targets, as the paper's two CT phases and 12 organs.
  const domain = Int32Array.from({ length: batch }, (_, i) => i % 2);
  const target = Int32Array.from(
    { length: batch },
    (_, i) => Math.floor(i / 2) % 12,
  );
  const rows: (string | number)[][] = [];
  const measured: { name: string; ms: number }[] = [];
  for (const name of await availableBackends()) {
    if (flags.backend && flags.backend !== name) continue;
    await selectBackend(name, { purpose: "infer" });
    const f = tf.tensor3d(values, [batch, views, dim]);
    const lossAndGrad = tf.valueAndGrad((x: tf.Tensor) =>
      modalTargetLoss(x as tf.Tensor3D, { domain, target })
    );
    // The software WebGPU adapter and tfjs' JavaScript cpu kernels take
    // seconds per step here: fewer repetitions.
    const n = name === "wasm" ? reps : Math.min(reps, 3);
    const forward = await timeMs(async () => {
      const l = modalTargetLoss(f, { domain, target });
      await l.data();
      l.dispose();
    }, { reps: n });
    const value = modalTargetLoss(f, { domain, target });
    const loss = (await value.data())[0]!;
    value.dispose();
    const both = await timeMs(async () => {
      const { value, grad } = lossAndGrad(f);
      await grad.data();
      tf.dispose([value, grad]);
    }, { reps: n });
    f.dispose();
    measured.push({ name, ms: both });
    rows.push([
      name,
      `[${batch}, ${views}, ${dim}]`,
      loss.toFixed(6),
      forward,
      both,
    ]);
  }
  let torchMs: number | undefined;
  if (flags.comparePytorch) {
    const file = await Deno.makeTempFile({ suffix: ".f32" });
    await Deno.writeFile(file, new Uint8Array(values.buffer));
    // 2 threads is the reference; 1 thread shows how much of it is thread
    // contention on a busy machine.
    for (const threads of [2, 1]) {
      const py = await runPython(TORCH, [
        ...[batch, views, dim, reps].map(String),
        file,
        String(threads),
      ]) as { ms: number; threads: number; loss: number } | undefined;
      if (!py) continue;
      torchMs ??= py.ms;
      rows.push([
        `pytorch (${py.threads} thread${py.threads === 1 ? "" : "s"})`,
        `[${batch}, ${views}, ${dim}]`,
        py.loss.toFixed(6),
        "",
        py.ms,
      ]);
    }
    await Deno.remove(file);
  }
  printTable(
    [
      "backend",
      "features",
      "loss",
      "forward ms",
      "forward + backward ms",
      "× pytorch (2 threads)",
    ],
    // Every row's forward + backward time over PyTorch's (2 threads).
    rows.map((r) => [...r, torchMs ? (Number(r[4]) / torchMs).toFixed(2) : ""]),
  );

  // The loss's share of a stage-2 step, at the authors' batch of 4 samples.
  const stepBatch = 4;
  const train = await selectBackend("auto", { purpose: "train" });
  if (flags.backend && flags.backend !== train.name) return;
  const r18 = await resnet18Step(stepBatch, flags.quick ? 1 : 3);
  console.log();
  printTable(
    ["backend", "step", "ResNet-18 step ms", "loss ms", "loss share"],
    [[
      train.name,
      `${stepBatch} × 2 views of 128², R18 + head + loss`,
      r18.step,
      r18.loss,
      `${(100 * r18.loss / r18.step).toFixed(2)} %`,
    ]],
  );
  const big = measured.find((m) => m.name === train.name);
  if (big) {
    // The encoder's cost grows with the batch, the loss's with its square.
    const perSample = r18.step / stepBatch;
    console.log(
      `At ${batch} samples the step would take about ${
        (perSample * batch / 1000).toFixed(1)
      } s on ${train.name} (${
        perSample.toFixed(0)
      } ms per sample, extrapolated linearly), of which the loss is ${
        big.ms.toFixed(0)
      } ms (${(100 * big.ms / (perSample * batch)).toFixed(2)} %).`,
    );
  }
}
