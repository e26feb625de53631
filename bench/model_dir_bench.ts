/**
 * A run's `model/` in PyTorch: trains the micro run on the embedded phantom
 * (cpu backend), or takes the run in `MODEL_DIR_BENCH_RUN`, then for one
 * evaluation volume writes what our networks see and output (every slice on
 * the canonical grid with the run's intensity mapping, padded to the
 * network's multiple; stage 1's logits; stage 3's logits on [image,
 * attention] per target) and has bench/torch_ref/reproduce_model.py load
 * `model/` into the PyTorch reference with `load_state_dict(strict=True)`
 * and reproduce them. Prints the largest absolute differences; the check
 * is that they stay within 1e-4.
 */
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { selectBackend } from "../backends/mod.ts";
import { readNifti, toCanonical } from "../data/mod.ts";
import { encodeSafetensors, type SafetensorsEntry } from "../models/mod.ts";
import { loadTrainedModel, runPipeline } from "../pipeline/mod.ts";
import { normalizeIntensity } from "../pipeline/prepare.ts";
import { paddingMultiple } from "../pipeline/coarse.ts";
import { parseTrainArgs } from "../cli/train.ts";
import {
  type BenchFlags,
  printTable,
  REFERENCE_PYTHON,
  TORCH_REF_DIR,
} from "./_common.ts";

const TOLERANCE = 1e-4;

async function entry(t: tf.Tensor): Promise<SafetensorsEntry> {
  return { dtype: "F32", shape: t.shape, data: await t.data() as Float32Array };
}

/** Trains the micro run (the tests' config) into a temporary directory. */
async function microRun(): Promise<string> {
  const out = await Deno.makeTempDir({ prefix: "agcl-model-dir-" });
  const micro = new URL("../tests/testdata/micro_config.json", import.meta.url)
    .pathname;
  const { config } = await parseTrainArgs(["--config", micro]);
  await runPipeline(config, {
    out,
    quiet: true,
    backend: "cpu",
    print: () => {},
  });
  return out;
}

/** Writes the probe of one volume; returns its path. */
async function writeProbe(run: string, path: string): Promise<void> {
  const m = await loadTrainedModel(run);
  const tensors: Record<string, tf.Tensor> = {};
  try {
    const metrics = JSON.parse(
      await Deno.readTextFile(join(run, "metrics.json")),
    );
    const canon = toCanonical(await readNifti(metrics.cases[0].image));
    const image = normalizeIntensity(canon, {
      ...m.config.intensity,
      mode: m.intensity,
    });
    const [nx, ny, nz] = canon.dims;
    const k = paddingMultiple(m.config);
    const [h, w] = [Math.ceil(ny / k) * k, Math.ceil(nx / k) * k];
    // [nz, h, w, 1]: slice z, row y, column x; zeros where padded.
    const x = tf.tidy(() =>
      tf.pad(
        tf.tensor4d(image, [nz, ny, nx, 1]),
        [[0, 0], [0, h - ny], [0, w - nx], [0, 0]],
      )
    );
    tensors.image = x;
    if (!m.coarse) throw new Error(`Cannot probe ${run}: it has no stage 1`);
    const logits = m.coarse.apply(x as tf.Tensor4D);
    tensors.coarse_logits = logits;
    const labels = tf.argMax(logits, 3);
    try {
      for (const { id } of m.targets) {
        const input = tf.tidy(() =>
          tf.concat([x, tf.equal(labels, id).toFloat().expandDims(3)], 3)
        );
        tensors[`segment_input.${id}`] = input;
        tensors[`segment_logits.${id}`] = m.segment.apply(
          input as tf.Tensor4D,
        );
      }
    } finally {
      labels.dispose();
    }
    const entries: Record<string, SafetensorsEntry> = {};
    for (const [name, t] of Object.entries(tensors)) {
      entries[name] = await entry(t);
    }
    await Deno.writeFile(path, encodeSafetensors(entries));
  } finally {
    tf.dispose(tensors);
    m.dispose();
  }
}

/** Runs the bench (see the module doc). */
export default async function modelDirBench(flags: BenchFlags): Promise<void> {
  if (!flags.comparePytorch) {
    console.log("model_dir: skipped (it compares with PyTorch)");
    return;
  }
  await selectBackend("cpu", { purpose: "train" });
  const given = Deno.env.get("MODEL_DIR_BENCH_RUN");
  const run = given ?? await microRun();
  const probe = join(await Deno.makeTempDir(), "probe.safetensors");
  try {
    await writeProbe(run, probe);
    const out = await new Deno.Command(REFERENCE_PYTHON, {
      args: [
        join(TORCH_REF_DIR, "reproduce_model.py"),
        join(run, "model"),
        probe,
      ],
      env: { PYTHONPATH: TORCH_REF_DIR, PYTHONDONTWRITEBYTECODE: "1" },
    }).output();
    if (!out.success) {
      console.error(
        `reference python failed: ${new TextDecoder().decode(out.stderr)}`,
      );
      return;
    }
    const r = JSON.parse(new TextDecoder().decode(out.stdout));
    console.log(`\nmodel/ of ${run} in PyTorch (one volume, eval mode):`);
    printTable(["network", "max abs difference, ours vs PyTorch"], [
      ["stage 1 (coarse) logits", r.coarse.toExponential(2)],
      ["stage 3 (segment) logits", r.segment.toExponential(2)],
      ["argmax agreement", `${(100 * r.labels_agree).toFixed(3)} %`],
    ]);
    console.log(
      r.max <= TOLERANCE
        ? `within ${TOLERANCE}`
        : `NOT within ${TOLERANCE}: ${r.max}`,
    );
  } finally {
    await Deno.remove(join(probe, ".."), { recursive: true });
    if (!given) await Deno.remove(run, { recursive: true });
  }
}
