import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { BatchStream, samplePatches } from "../../data/mod.ts";
import { calibrateBatchNorm } from "../../pipeline/stage2.ts";
import { createEncoder } from "../../models/mod.ts";

function cases() {
  const [nx, ny, nz] = [16, 16, 2];
  const attention = new Uint8Array(nx * ny * nz);
  const image = new Float32Array(nx * ny * nz);
  for (let i = 0; i < image.length; i++) {
    image[i] = 3 + ((i * 7919) % 13) / 13; // mean far from 0
    if ((i % nx) > 3 && (i % nx) < 12) attention[i] = 1;
  }
  return [{
    id: "a",
    domain: 0,
    dims: [nx, ny, nz] as [number, number, number],
    channels: 1,
    image,
    attention,
  }];
}

Deno.test("calibrateBatchNorm() estimates BN statistics without touching weights or leaking", async () => {
  await tf.setBackend("cpu");
  const cs = cases();
  const index = samplePatches(cs, { perTarget: 2, patchSize: 8, seed: 1 });
  const stream = new BatchStream(index, cs, {
    batchSize: 4,
    views: 1,
    seed: 1,
    augment: false,
  });
  const enc = createEncoder({
    depth: 18,
    inChannels: 2,
    stem: "cifar",
    outputStride: 8,
    widthMultiplier: 0.0625,
    seed: 2,
  });
  try {
    const weights = await enc.params["conv1.weight"]!.data();
    const mean0 = await enc.state["bn1.running_mean"]!.data();
    assert.ok(mean0.every((v) => v === 0));
    const before = tf.memory().numTensors;
    calibrateBatchNorm(enc, stream, { batches: 30 });
    assert.equal(tf.memory().numTensors, before);
    assert.deepEqual(await enc.params["conv1.weight"]!.data(), weights);
    const mean = await enc.state["bn1.running_mean"]!.data();
    assert.ok(mean.some((v) => Math.abs(v) > 0.01), "running mean moved");
    const count = await enc.state["bn1.num_batches_tracked"]!.data();
    assert.equal(count[0], 30);
  } finally {
    enc.dispose();
  }
});

Deno.test("lossFloor() is the mean ln(positives) of the anchors: ln 3 for agcl pairs of two views, 0 for sscl", async () => {
  const { lossFloor } = await import("../../pipeline/stage2.ts");
  type Batch = Parameters<typeof lossFloor>[1][number];
  const batch = (domain: number[], target: number[]) =>
    ({ size: domain.length, views: 2, domain, target }) as unknown as Batch;
  // Two (domain, target) pairs of two samples: every anchor has its twin
  // view and both views of its group mate.
  const pairs = batch([0, 0, 1, 1], [1, 1, 1, 1]);
  assert.ok(Math.abs(lossFloor("agcl", [pairs]) - Math.log(3)) < 1e-12);
  // supcon keys by target only: all four samples share target 1.
  assert.ok(Math.abs(lossFloor("supcon", [pairs]) - Math.log(7)) < 1e-12);
  assert.equal(lossFloor("sscl", [pairs]), 0);
  // A lone sample has only its twin: (ln 3 · 2 + ln 1) / 3 per view.
  const mixed = batch([0, 0, 1], [1, 1, 2]);
  assert.ok(
    Math.abs(lossFloor("agcl", [mixed]) - (2 * Math.log(3)) / 3) < 1e-12,
  );
  assert.equal(lossFloor("agcl", []), 0);
});
