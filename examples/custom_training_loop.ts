/**
 * A custom training loop with the library's pieces: attention-guided patch
 * sampling, paired augmented views, a narrow ResNet encoder with a
 * projection head, the modal-target contrastive loss (AGCL, Eq. 3) and the
 * pipeline's SGD, on a small synthetic two-domain image set.
 *
 * Run: `deno run -A examples/custom_training_loop.ts`
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { selectBackend } from "../backends/mod.ts";
import { BatchStream, samplePatches, type SamplingCase } from "../data/mod.ts";
import { modalTargetLoss } from "../losses/mod.ts";
import { createEncoder, createProjectionHead } from "../models/mod.ts";
import { createSgd, scheduledLr } from "../pipeline/mod.ts";
import { Prng } from "../random/prng.ts";

const report = await selectBackend("auto", { purpose: "train" });
console.log(`backend: ${report.name}`);

// Two synthetic "organs" (target 1: a disc, target 2: a square) in two
// "domains" (0: bright organs, 1: dark organs) on 48×48 single slices.
const prng = new Prng(0);
function syntheticCase(i: number): SamplingCase {
  const n = 48;
  const domain = i % 2;
  const image = new Float32Array(n * n);
  const attention = new Uint8Array(n * n);
  const cx = 14 + prng.int(4), cy = 14 + prng.int(4);
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      const k = y * n + x;
      image[k] = 0.3 + 0.05 * prng.normal();
      if ((x - cx) ** 2 + (y - cy) ** 2 < 64) attention[k] = 1;
      if (x > 28 && x < 40 && y > 26 && y < 38) attention[k] = 2;
      if (attention[k]) image[k] = domain === 0 ? 0.8 : 0.1;
    }
  }
  return {
    id: `case${i}`,
    domain,
    dims: [n, n, 1],
    channels: 1,
    image,
    attention,
    label: attention,
  };
}
const cases = Array.from({ length: 6 }, (_, i) => syntheticCase(i));

// Patches around each target, two augmented views per patch.
const index = samplePatches(cases, { perTarget: 8, patchSize: 24, seed: 1 });
const stream = new BatchStream(index, cases, {
  batchSize: 8,
  views: 2,
  seed: 2,
  balance: "target",
});

const encoder = createEncoder({
  depth: 18,
  inChannels: 2,
  stem: "cifar",
  widthMultiplier: 0.125,
  seed: 3,
});
const head = createProjectionHead({
  inFeatures: encoder.featureChannels,
  outFeatures: 16,
  seed: 4,
});
const variables: Record<string, tf.Variable> = {};
for (const [k, v] of Object.entries(encoder.params)) {
  variables[`encoder.${k}`] = v;
}
for (const [k, v] of Object.entries(head.params)) variables[`head.${k}`] = v;
const byTfName = new Map(
  Object.entries(variables).map(([k, v]) => [v.name, k]),
);
const sgd = createSgd(variables, { momentum: 0.9, weightDecay: 1e-4 });

const steps = 10;
for (let step = 0; step < steps; step++) {
  const batch = stream.next();
  const n = batch.size * batch.views;
  const x = tf.tensor4d(batch.x, [n, 24, 24, batch.channels]); // [size*views, 24, 24, image + attention]
  const { value, grads } = tf.variableGrads(() =>
    tf.tidy(() => {
      const { pooled } = encoder.apply(x, { training: true });
      const z = head.apply(pooled).reshape([
        batch.size,
        batch.views,
        -1,
      ]) as tf.Tensor3D;
      return modalTargetLoss(
        z,
        { domain: batch.domain, target: batch.target },
        { temperature: 0.1 },
      );
    }), Object.values(variables));
  const named: Record<string, tf.Tensor> = {};
  for (const [name, g] of Object.entries(grads)) named[byTfName.get(name)!] = g;
  sgd.apply(
    named,
    scheduledLr(step, { schedule: "cosine", lr: 0.05, total: steps }),
  );
  console.log(
    `step ${step + 1}/${steps}: loss ${(await value.data())[0]!.toFixed(4)}`,
  );
  tf.dispose([value, ...Object.values(grads), x]);
}
sgd.dispose();
encoder.dispose();
head.dispose();
