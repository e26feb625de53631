import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { selectBackend } from "../../backends/mod.ts";
import {
  coarseLabels,
  coarseProbabilities,
  coarseStage,
  downsampleSlices,
  inverseSqrtClassWeights,
  predictCoarse,
  resolveCoarseFlip,
  resolveCoarseTta,
  resolveJitter,
  sliceBatch,
  type SliceSource,
} from "../../pipeline/coarse.ts";
import { mergeConfig, PRESETS } from "../../pipeline/config.ts";
import { buildCoarseNet } from "../../pipeline/_models.ts";
import { Prng } from "../../random/prng.ts";
import { assertNoLeak, assertNoLeakAsync } from "../_utils.ts";

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

Deno.test("sliceBatch: context stacks each slice's neighbours as channels, repeated at the ends", () => {
  // Two channels per pixel: 100 z + 10 r + c and its negative.
  const [nx, ny, nz] = [3, 2, 4];
  const image = new Float32Array(nx * ny * nz * 2);
  for (let z = 0; z < nz; z++) {
    for (let r = 0; r < ny; r++) {
      for (let c = 0; c < nx; c++) {
        const v = (z * ny + r) * nx + c;
        image[2 * v] = 100 * z + 10 * r + c;
        image[2 * v + 1] = -(100 * z + 10 * r + c);
      }
    }
  }
  const label = new Uint8Array(nx * ny * nz).map((_, i) => i % 3);
  const cases: SliceSource[] = [{
    dims: [nx, ny, nz],
    channels: 2,
    image,
    label,
  }];
  const picks: [number, number][] = [[0, 0], [0, 2], [0, 3]];
  const flat = sliceBatch(cases, picks, { height: 2, width: 4 });
  const { x, y, channels } = sliceBatch(cases, picks, {
    height: 2,
    width: 4,
    context: 1,
  });
  assert.equal(flat.channels, 2);
  assert.equal(channels, 6);
  assert.deepEqual(y, flat.y);
  const at = (b: number, r: number, c: number, k: number) =>
    x[((b * 2 + r) * 4 + c) * 6 + k]!;
  picks.forEach(([, z], b) => {
    const zs = [Math.max(0, z - 1), z, Math.min(nz - 1, z + 1)];
    for (let r = 0; r < ny; r++) {
      for (let c = 0; c < nx; c++) {
        zs.forEach((zz, d) => {
          assert.equal(at(b, r, c, 2 * d), 100 * zz + 10 * r + c);
          assert.equal(at(b, r, c, 2 * d + 1), -(100 * zz + 10 * r + c));
        });
        // The middle of the stack is the plain batch.
        assert.equal(at(b, r, c, 2), flat.x[((b * 2 + r) * 4 + c) * 2]);
      }
      for (let k = 0; k < 6; k++) assert.equal(at(b, r, 3, k), 0); // padding
    }
  });
});

Deno.test("coarseStage and predictCoarse with coarse.context: a 3-slice input, seeded, leak-free", async () => {
  const config = mergeConfig(PRESETS.tiny, {
    coarse: { epochs: 1, batchSize: 2, rotation: 20, context: 1 },
  });
  const net = buildCoarseNet(config, 1, 3, 7);
  try {
    const cases = tinyCases();
    const spec = coarseStage(config, net, {
      cases,
      nClasses: 3,
      seed: 5,
      flip: true,
      jitter: true,
    });
    const before = tf.memory().numTensors;
    try {
      const s = await spec.step(0, 0);
      assert.ok(Number.isFinite(s.loss));
      assert.equal(tf.memory().numTensors, before);
    } finally {
      spec.optimizer?.dispose();
    }
    const c = cases[0]!;
    const options = { multiple: 8, batchSize: 2, maxLabel: 2, context: 1 };
    const map = await predictCoarse(net, c, options);
    assert.equal(map.length, c.dims[0] * c.dims[1] * c.dims[2]);
    // The slice-1 labels are the network's on slices 0, 1, 2 stacked.
    const { x } = sliceBatch([c], [[0, 1]], {
      height: 16,
      width: 16,
      context: 1,
    });
    const t = tf.tidy(() => coarseLabels(net, tf.tensor4d(x, [1, 16, 16, 3])));
    const want = await t.data();
    t.dispose();
    const [nx, ny] = c.dims;
    for (let r = 0; r < ny; r++) {
      for (let col = 0; col < nx; col++) {
        assert.equal(map[(ny + r) * nx + col], want[r * 16 + col]);
      }
    }
    await assertNoLeakAsync(async () => {
      await predictCoarse(net, c, options);
      return [];
    });
  } finally {
    net.dispose();
  }
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

Deno.test("resolveCoarseTta: auto flips exactly where the flip rule mirrors training slices", () => {
  const brain = ["frontal", "temporal"];
  const auto = (labelNames: string[], cases = [vol(90)]) =>
    resolveCoarseTta(
      "auto",
      resolveCoarseFlip("auto", { labelNames, cases }),
    );
  assert.equal(auto(brain), true);
  // A mirrored kidney_left is a kidney_right; a mirrored digit is no digit.
  assert.equal(auto([...brain, "kidney_left"]), false);
  assert.equal(auto(["digit_0"], [vol(1)]), false);
  // It follows an explicit coarse.flip too, and explicit choices win.
  assert.equal(resolveCoarseTta("auto", true), true);
  assert.equal(resolveCoarseTta("none", true), false);
  assert.equal(resolveCoarseTta("flip", false), true);
});

/** `[b, h, w, c]` values mirrored along the width, by hand. */
function mirrorWidth(
  v: Float32Array,
  shape: [number, number, number, number],
): Float32Array {
  const [b, h, w, c] = shape;
  const out = new Float32Array(v.length);
  for (let i = 0; i < b * h; i++) {
    for (let x = 0; x < w; x++) {
      for (let k = 0; k < c; k++) {
        out[(i * w + x) * c + k] = v[(i * w + (w - 1 - x)) * c + k]!;
      }
    }
  }
  return out;
}

function tinyBatch(): {
  x: Float32Array;
  shape: [number, number, number, number];
} {
  const prng = new Prng(4);
  const shape: [number, number, number, number] = [2, 16, 16, 1];
  const x = new Float32Array(2 * 16 * 16);
  for (let i = 0; i < x.length; i++) x[i] = prng.next() + (i % 16) / 16;
  return { x, shape };
}

Deno.test("coarseProbabilities() with tta is the mean of the slice's softmax and its mirror's, mirrored back", async () => {
  const net = buildCoarseNet(PRESETS.tiny, 1, 3, 7);
  try {
    const { x, shape } = tinyBatch();
    const out: [number, number, number, number] = [2, 16, 16, 3];
    const softmax = async (v: Float32Array) => {
      const t = tf.tidy(() =>
        tf.softmax(net.apply(tf.tensor4d(v, shape), { training: false }))
      );
      const d = await t.data() as Float32Array;
      t.dispose();
      return d;
    };
    const plain = await softmax(x);
    const back = mirrorWidth(await softmax(mirrorWidth(x, shape)), out);
    const read = async (tta: boolean) => {
      const t = tf.tidy(() =>
        coarseProbabilities(net, tf.tensor4d(x, shape), { tta })
      );
      assert.deepEqual(t.shape, out);
      const d = await t.data();
      t.dispose();
      return d;
    };
    const without = await read(false);
    const withTta = await read(true);
    let differs = 0;
    for (let i = 0; i < plain.length; i++) {
      assert.ok(Math.abs(without[i]! - plain[i]!) < 1e-6);
      const mean = (plain[i]! + back[i]!) / 2;
      assert.ok(Math.abs(withTta[i]! - mean) < 1e-5, `${i}`);
      if (Math.abs(back[i]! - plain[i]!) > 1e-4) differs++;
    }
    // The mirrored prediction is not the plain one, so the mean tested something.
    assert.ok(differs > 0);
  } finally {
    net.dispose();
  }
});

Deno.test("coarseLabels() takes the logits' argmax without tta and the mean softmax's with it", async () => {
  const net = buildCoarseNet(PRESETS.tiny, 1, 3, 7);
  try {
    const { x, shape } = tinyBatch();
    const labels = async (make: () => tf.Tensor) => {
      const t = tf.tidy(make);
      const d = Array.from(await t.data());
      t.dispose();
      return d;
    };
    const input = () => tf.tensor4d(x, shape);
    assert.deepEqual(
      await labels(() => coarseLabels(net, input())),
      await labels(() => net.apply(input(), { training: false }).argMax(-1)),
    );
    assert.deepEqual(
      await labels(() => coarseLabels(net, input(), { tta: true })),
      await labels(() =>
        coarseProbabilities(net, input(), { tta: true }).argMax(-1)
      ),
    );
  } finally {
    net.dispose();
  }
});

Deno.test("predictCoarse() with tta labels each slice by the mean softmax; no tensor leaks", async () => {
  const net = buildCoarseNet(PRESETS.tiny, 1, 3, 7);
  try {
    const c = tinyCases()[0]!; // [16, 12, 3]: rows padded to 16
    const [nx, ny, nz] = c.dims;
    const options = { multiple: 8, batchSize: 2, maxLabel: 2 };
    for (const tta of [false, true]) {
      const map = await predictCoarse(net, c, { ...options, tta });
      // The same slices, padded to [16, 16], in one batch.
      const x = new Float32Array(nz * 16 * 16);
      for (let z = 0; z < nz; z++) {
        for (let r = 0; r < ny; r++) {
          x.set(
            c.image.subarray((z * ny + r) * nx, (z * ny + r + 1) * nx),
            (z * 16 + r) * 16,
          );
        }
      }
      const t = tf.tidy(() =>
        coarseLabels(net, tf.tensor4d(x, [nz, 16, 16, 1]), { tta })
      );
      const want = await t.data();
      t.dispose();
      for (let z = 0; z < nz; z++) {
        for (let r = 0; r < ny; r++) {
          for (let col = 0; col < nx; col++) {
            assert.equal(
              map[(z * ny + r) * nx + col],
              want[(z * 16 + r) * 16 + col],
            );
          }
        }
      }
      await assertNoLeakAsync(async () => {
        await predictCoarse(net, c, { ...options, tta });
        return [];
      });
    }
    const { x, shape } = tinyBatch();
    const input = tf.tensor4d(x, shape);
    assertNoLeak(() => coarseProbabilities(net, input, { tta: true }));
    assertNoLeak(() => coarseLabels(net, input, { tta: true }));
    input.dispose();
  } finally {
    net.dispose();
  }
});

Deno.test("downsampleSlices() averages each block's pixels per channel and takes its majority label, repeating the last row and column of a ragged side", () => {
  // [nx 3, ny 3, nz 2], 2 channels; factor 2 → [2, 2, 2].
  const [nx, ny, nz] = [3, 3, 2];
  const image = new Float32Array(nx * ny * nz * 2);
  for (let i = 0; i < nx * ny * nz; i++) {
    image[2 * i] = i;
    image[2 * i + 1] = -i;
  }
  const label = new Uint8Array([
    ...[1, 2, 2, 2, 1, 0, 3, 3, 0], // z 0
    ...[0, 0, 5, 4, 4, 5, 0, 0, 0], // z 1
  ]);
  const low = downsampleSlices(
    { dims: [nx, ny, nz], channels: 2, image, label },
    2,
  );
  assert.deepEqual(low.dims, [2, 2, 2]);
  // Block (z 0, row 0, col 0) = pixels 0, 1, 3, 4; (row 0, col 1) = pixels
  // 2, 2, 5, 5 (column 2 repeated); (row 1, col 0) = 6, 7, 6, 7.
  const mean = (...v: number[]) => v.reduce((a, b) => a + b) / v.length;
  const want = [
    mean(0, 1, 3, 4),
    mean(2, 2, 5, 5),
    mean(6, 7, 6, 7),
    mean(8, 8, 8, 8),
    mean(9, 10, 12, 13),
    mean(11, 11, 14, 14),
    mean(15, 16, 15, 16),
    mean(17, 17, 17, 17),
  ];
  want.forEach((v, i) => {
    assert.ok(Math.abs(low.image[2 * i]! - v) < 1e-5, `pixel ${i}`);
    assert.ok(Math.abs(low.image[2 * i + 1]! + v) < 1e-5, `pixel ${i}`);
  });
  // Votes: {1, 2, 2, 1} → tie, the lower label 1; {2, 2, 0, 0} → 0;
  // {3, 3, 3, 3} → 3; {0} × 4 → 0; z 1: {0, 0, 4, 4} → 0; {5, 5, 5, 5} →
  // 5; {0, 0, 0, 0}; {0}.
  assert.deepEqual(Array.from(low.label!), [1, 0, 3, 0, 0, 5, 0, 0]);
  // Factor 1 is the case itself; an unlabelled case stays unlabelled.
  const c = {
    dims: [nx, ny, nz] as [number, number, number],
    channels: 2,
    image,
  };
  assert.equal(downsampleSlices(c, 1), c);
  assert.equal("label" in downsampleSlices(c, 3), false);
  assert.deepEqual(downsampleSlices(c, 3).dims, [1, 1, 2]);
  assert.throws(() => downsampleSlices(c, 0), {
    name: "RangeError",
    message: /'factor' must be a positive integer: current value is 0/,
  });
});

Deno.test("predictCoarse() with downsample labels full-size slices by the reduced slices' probabilities resized back; no tensor leaks", async () => {
  const net = buildCoarseNet(PRESETS.tiny, 1, 3, 7);
  try {
    const c = tinyCases()[0]!; // [16, 12, 3] → [8, 6, 3], rows padded to 8
    const [nx, ny, nz] = c.dims;
    const options = { multiple: 8, batchSize: 2, maxLabel: 2, downsample: 2 };
    for (const tta of [false, true]) {
      const map = await predictCoarse(net, c, { ...options, tta });
      assert.equal(map.length, nx * ny * nz);
      const low = downsampleSlices(c, 2);
      const { x } = sliceBatch([low], [[0, 0], [0, 1], [0, 2]], {
        height: 8,
        width: 8,
      });
      const t = tf.tidy(() => {
        const p = coarseProbabilities(net, tf.tensor4d(x, [nz, 8, 8, 1]), {
          tta,
        }).slice([0, 0, 0, 0], [-1, 6, 8, -1]) as tf.Tensor4D;
        return tf.image.resizeBilinear(p, [12, 16], false, true).argMax(-1);
      });
      const want = await t.data();
      t.dispose();
      assert.deepEqual(Array.from(map), Array.from(want));
      await assertNoLeakAsync(async () => {
        await predictCoarse(net, c, { ...options, tta });
        return [];
      });
    }
  } finally {
    net.dispose();
  }
});
