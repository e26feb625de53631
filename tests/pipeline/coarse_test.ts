import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { selectBackend } from "../../backends/mod.ts";
import {
  coarseStage,
  inverseSqrtClassWeights,
  resolveCoarseFlip,
  resolveJitter,
  type SliceSource,
} from "../../pipeline/coarse.ts";
import { mergeConfig, PRESETS } from "../../pipeline/config.ts";
import { buildCoarseNet } from "../../pipeline/_models.ts";
import { Prng } from "../../random/prng.ts";

await selectBackend("cpu", { purpose: "train" });

const vol = (nz: number) => ({
  dims: [16, 16, nz] as [number, number, number],
});

Deno.test("resolveCoarseFlip: auto mirrors side-free 3D labels only", () => {
  const brain = ["frontal", "insula_cingulate", "deep_grey", "cerebellum"];
  assert.equal(
    resolveCoarseFlip("auto", { labelNames: brain, cases: [vol(90), vol(90)] }),
    true,
  );
  // A label that names a side, in any of the usual spellings.
  for (
    const sided of [
      "kidney_left",
      "Right Kidney",
      "left-lung",
      "kidney_l",
      "R_adrenal",
      "adrenal gland (right)",
    ]
  ) {
    assert.equal(
      resolveCoarseFlip("auto", {
        labelNames: [...brain, sided],
        cases: [vol(90)],
      }),
      false,
      sided,
    );
  }
  // Words merely containing l/r or left/right letters do not count.
  assert.equal(
    resolveCoarseFlip("auto", {
      labelNames: ["liver", "bright_spot", "cleft"],
      cases: [vol(4)],
    }),
    true,
  );
  // 2D images (a single slice) are never mirrored by auto.
  assert.equal(
    resolveCoarseFlip("auto", {
      labelNames: ["digit_0"],
      cases: [vol(1), vol(4)],
    }),
    false,
  );
  assert.equal(
    resolveCoarseFlip("auto", { labelNames: brain, cases: [] }),
    false,
  );
  // Explicit choices win.
  assert.equal(
    resolveCoarseFlip("horizontal", {
      labelNames: ["kidney_left"],
      cases: [vol(1)],
    }),
    true,
  );
  assert.equal(
    resolveCoarseFlip("none", { labelNames: brain, cases: [vol(90)] }),
    false,
  );
});

Deno.test("resolveJitter: auto is off for HU-windowed CT only", () => {
  assert.equal(resolveJitter("auto", "window"), false);
  assert.equal(resolveJitter("auto", "percentile"), true);
  assert.equal(resolveJitter("auto", "none"), true);
  assert.equal(resolveJitter(true, "window"), true);
  assert.equal(resolveJitter(false, "percentile"), false);
});

function tinyCases(): SliceSource[] {
  const prng = new Prng(2);
  return [0, 1].map(() => {
    const [nx, ny, nz] = [16, 12, 3];
    const image = new Float32Array(nx * ny * nz);
    const label = new Uint8Array(nx * ny * nz);
    for (let i = 0; i < image.length; i++) {
      const x = i % nx;
      label[i] = x < 5 ? 1 : x > 10 ? 2 : 0;
      image[i] = label[i]! * 0.4 + 0.1 * prng.next();
    }
    return { dims: [nx, ny, nz], channels: 1, image, label };
  });
}

Deno.test("coarseStage: augmented steps are seeded, leak-free, and the cosine lr decays", async () => {
  const config = mergeConfig(PRESETS.tiny, {
    coarse: { epochs: 1, batchSize: 2, rotation: 20, schedule: "cosine" },
  });
  const run = async () => {
    const net = buildCoarseNet(config, 1, 3, 7);
    const spec = coarseStage(config, net, {
      cases: tinyCases(),
      nClasses: 3,
      seed: 5,
      flip: true,
      jitter: true,
    });
    const out: { loss: number; lr: number }[] = [];
    const before = tf.memory().numTensors;
    try {
      for (let s = 0; s < spec.stepsPerEpoch; s++) {
        out.push(await spec.step(0, s));
      }
      assert.equal(tf.memory().numTensors, before);
    } finally {
      spec.optimizer?.dispose();
      net.dispose();
    }
    return out;
  };
  const a = await run();
  const b = await run();
  assert.deepEqual(a, b);
  assert.equal(a.length, 3); // 6 slices, 2 per step
  assert.equal(a[0]!.lr, config.coarse.lr);
  assert.ok(a[2]!.lr < a[1]!.lr && a[1]!.lr < a[0]!.lr);
  assert.ok(a.every((s) => Number.isFinite(s.loss)));
});

Deno.test("inverseSqrtClassWeights: 1/sqrt(share), pixel-mean 1, absent classes 0", () => {
  const w = inverseSqrtClassWeights(
    [{ label: new Uint8Array([0, 0, 0, 1]) }],
    3,
  );
  const raw = [1 / Math.sqrt(0.75), 1 / Math.sqrt(0.25)];
  const mean = raw[0]! * 0.75 + raw[1]! * 0.25;
  assert.ok(Math.abs(w[0]! - raw[0]! / mean) < 1e-6);
  assert.ok(Math.abs(w[1]! - raw[1]! / mean) < 1e-6);
  assert.equal(w[2], 0);
  assert.ok(Math.abs(w[0]! * 0.75 + w[1]! * 0.25 - 1) < 1e-6);
});

Deno.test("coarseStage: class-weighted cross-entropy steps are finite and leak-free", async () => {
  const config = mergeConfig(PRESETS.tiny, {
    coarse: { epochs: 1, batchSize: 3, classWeights: "inverse-sqrt" },
  });
  const net = buildCoarseNet(config, 1, 3, 7);
  const spec = coarseStage(config, net, {
    cases: tinyCases(),
    nClasses: 3,
    seed: 5,
  });
  try {
    const before = tf.memory().numTensors;
    for (let s = 0; s < spec.stepsPerEpoch; s++) {
      const r = await spec.step(0, s);
      assert.ok(Number.isFinite(r.loss) && r.loss > 0);
    }
    assert.equal(tf.memory().numTensors, before);
  } finally {
    spec.optimizer?.dispose();
    net.dispose();
  }
});
