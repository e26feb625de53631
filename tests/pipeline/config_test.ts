import assert from "node:assert/strict";
import {
  intensityWindow,
  mergeConfig,
  PRESETS,
  validateConfig,
} from "../../pipeline/mod.ts";

Deno.test("PRESETS are valid and differ where the paper says", () => {
  for (const p of Object.values(PRESETS)) validateConfig(p);
  assert.equal(PRESETS["paper-r50"].model.backbone, 50);
  assert.equal(PRESETS["paper-r101"].model.backbone, 101);
  assert.equal(PRESETS["paper-r50"].patchSize, 128);
  assert.equal(PRESETS["paper-r50"].pretrain.lr, 5e-4);
  assert.equal(PRESETS["paper-r50"].pretrain.perTarget, 30);
  assert.equal(PRESETS["paper-r50"].segment.lr, 1e-4);
  assert.deepEqual(PRESETS["paper-r50"].model.asppRates, [6, 12, 18]);
  // The paper's decoder ends in one class per target (and background).
  assert.equal(PRESETS["paper-r50"].segment.head, "targets");
  assert.equal(PRESETS.tiny.pretrain.temperature, 0.1);
});

Deno.test("mergeConfig() merges nested fields without touching the preset", () => {
  const c = mergeConfig(PRESETS.tiny, {
    pretrain: { method: "sscl" },
    model: { asppRates: [1, 2] },
    seed: 3,
  });
  assert.equal(c.pretrain.method, "sscl");
  assert.equal(c.pretrain.lr, PRESETS.tiny.pretrain.lr);
  assert.deepEqual(c.model.asppRates, [1, 2]);
  assert.equal(c.seed, 3);
  assert.equal(PRESETS.tiny.pretrain.method, "agcl");
});

Deno.test("mergeConfig() lists the valid fields for an unknown one", () => {
  assert.throws(() => mergeConfig(PRESETS.tiny, { pretrian: {} }), {
    name: "RangeError",
    message:
      /Unknown config field 'pretrian': valid fields are 'data', 'phantom', 'seed'/,
  });
  assert.throws(() => mergeConfig(PRESETS.tiny, { pretrain: { lrr: 1 } }), {
    name: "RangeError",
    message:
      /Unknown config field 'pretrain.lrr': valid fields of 'pretrain' are 'method', 'epochs'/,
  });
});

Deno.test("mergeConfig() rejects values of the wrong type or range", () => {
  assert.throws(
    () => mergeConfig(PRESETS.tiny, { pretrain: { method: "simclr" } }),
    {
      name: "RangeError",
      message:
        /'pretrain.method': expected one of "agcl", "supcon", "sscl", "ce", "none": current value is "simclr"/,
    },
  );
  assert.throws(
    () => mergeConfig(PRESETS.tiny, { pretrain: { temperature: 0 } }),
    {
      message: /'pretrain.temperature': expected > 0: current value is 0/,
    },
  );
  assert.throws(() => mergeConfig(PRESETS.tiny, { patchSize: "32" }), {
    message: /'patchSize': expected a finite number/,
  });
  assert.throws(() => mergeConfig(PRESETS.tiny, { model: 3 }), {
    message: /'model': expected an object/,
  });
  assert.throws(() => mergeConfig(PRESETS.tiny, 5), {
    message: /must be an object/,
  });
});

Deno.test("mergeConfig() takes every output stride the stem allows, down to 1 with the CIFAR stem", () => {
  for (const os of [1, 2, 4, 8] as const) {
    assert.equal(
      mergeConfig(PRESETS.tiny, { model: { outputStride: os } }).model
        .outputStride,
      os,
    );
  }
  assert.throws(
    () => mergeConfig(PRESETS.tiny, { model: { outputStride: 16 } }),
    {
      message:
        /'model.outputStride': expected one of 1, 2, 4, 8 with the cifar stem: current value is 16/,
    },
  );
  assert.throws(
    () => mergeConfig(PRESETS["paper-r50"], { model: { outputStride: 2 } }),
    { message: /expected one of 4, 8, 16, 32 with the imagenet stem/ },
  );
});

Deno.test("mergeConfig() checks the stage-1 augmentation fields", () => {
  const ok = mergeConfig(PRESETS.tiny, {
    coarse: { flip: "horizontal", scale: [0.8, 1.2], rotation: 0 },
  });
  assert.deepEqual(ok.coarse.scale, [0.8, 1.2]);
  assert.equal(ok.coarse.flip, "horizontal");
  assert.throws(() => mergeConfig(PRESETS.tiny, { coarse: { flip: "lr" } }), {
    message:
      /'coarse.flip': expected one of "auto", "none", "horizontal": current value is "lr"/,
  });
  assert.throws(
    () => mergeConfig(PRESETS.tiny, { coarse: { scale: [1.2, 0.8] } }),
    {
      message:
        /'coarse.scale': expected \[low, high\] with 0 < low <= high: current value is \[1.2,0.8\]/,
    },
  );
  assert.throws(
    () => mergeConfig(PRESETS.tiny, { coarse: { translate: 0.7 } }),
    { message: /'coarse.translate': expected <= 0.5: current value is 0.7/ },
  );
  assert.throws(
    () => mergeConfig(PRESETS.tiny, { coarse: { elastic: -0.1 } }),
    { message: /'coarse.elastic': expected >= 0: current value is -0.1/ },
  );
  assert.equal(PRESETS.tiny.coarse.tta, "auto");
  assert.equal(
    mergeConfig(PRESETS.tiny, { coarse: { tta: "flip" } }).coarse.tta,
    "flip",
  );
  assert.throws(
    () => mergeConfig(PRESETS.tiny, { coarse: { tta: "horizontal" } }),
    {
      name: "RangeError",
      message:
        /'coarse.tta': expected one of "auto", "none", "flip": current value is "horizontal"/,
    },
  );
  assert.equal(PRESETS.tiny.coarse.context, 0);
  assert.throws(
    () => mergeConfig(PRESETS.tiny, { coarse: { context: 1.5 } }),
    { name: "RangeError", message: /'coarse.context': expected an integer/ },
  );
  assert.throws(
    () => mergeConfig(PRESETS.tiny, { coarse: { context: 5 } }),
    { message: /'coarse.context': expected <= 4: current value is 5/ },
  );
  assert.throws(
    () => mergeConfig(PRESETS.tiny, { coarse: { downsample: 0 } }),
    { message: /'coarse.downsample': expected >= 1: current value is 0/ },
  );
  assert.throws(
    () => mergeConfig(PRESETS.tiny, { coarse: { downsample: 1.5 } }),
    { message: /'coarse.downsample': expected an integer/ },
  );
  assert.throws(() => mergeConfig(PRESETS.tiny, { coarse: { jitter: 1 } }), {
    message: /'coarse.jitter': expected one of "auto", true, false/,
  });
  assert.throws(
    () => mergeConfig(PRESETS.tiny, { coarse: { schedule: "step" } }),
    { message: /'coarse.schedule': expected one of "constant", "cosine"/ },
  );
});

Deno.test("PRESETS: tiny's stage 1 follows a cosine lr over data-sized epochs, the paper presets keep the paper's", () => {
  assert.equal(PRESETS.tiny.coarse.schedule, "cosine");
  assert.equal(PRESETS.tiny.coarse.epochs, "auto");
  for (const name of ["paper-r50", "paper-r101"] as const) {
    assert.equal(PRESETS[name].coarse.schedule, "constant");
    assert.equal(PRESETS[name].coarse.epochs, 23);
  }
  assert.equal(
    mergeConfig(PRESETS.tiny, { coarse: { schedule: "constant" } }).coarse
      .schedule,
    "constant",
  );
});

Deno.test("validateConfig() checks the fields that make stage 3 refine and stage 2 learn", () => {
  assert.equal(PRESETS.tiny.coarse.trainAttention, "crossfit");
  assert.equal(PRESETS.tiny.pretrain.balance, "domain-target");
  assert.ok(PRESETS.tiny.pretrain.groupSize >= 2);
  assert.ok(PRESETS.tiny.inference.margin > 0);
  assert.equal(PRESETS.tiny.model.lowLevelSkip, true);
  // Stage 2's views keep what tells targets and domains apart: sides
  // (kidney_left) and calibrated CT intensities.
  assert.equal(PRESETS.tiny.pretrain.flip, "auto");
  assert.equal(PRESETS.tiny.pretrain.jitter, "auto");
  // The skip carries edges only: shapes must come from the frozen encoder.
  assert.equal(PRESETS.tiny.model.lowLevelSource, "stem");
  assert.throws(
    () =>
      validateConfig(
        mergeConfig(PRESETS.tiny, {
          model: { lowLevelSource: "layer2" as "stem" },
        }),
      ),
    {
      name: "RangeError",
      message:
        `Invalid config field 'model.lowLevelSource': expected "layer1" or "stem"`,
    },
  );
  for (const v of ["crossfit", "predicted", "union"] as const) {
    assert.equal(
      mergeConfig(PRESETS.tiny, { coarse: { trainAttention: v } }).coarse
        .trainAttention,
      v,
    );
  }
  const bad: [unknown, RegExp][] = [
    [
      { coarse: { trainAttention: "truth" } },
      /'coarse.trainAttention': expected one of "crossfit", "predicted", "union"/,
    ],
    [
      { coarse: { folds: 1 } },
      /'coarse.folds': expected >= 2: current value is 1/,
    ],
    [
      { pretrain: { balance: "case" } },
      /'pretrain.balance': expected one of "none", "target", "domain", "domain-target"/,
    ],
    [{ pretrain: { groupSize: 0 } }, /'pretrain.groupSize': expected >= 1/],
    [
      { pretrain: { flip: "vertical" } },
      /'pretrain.flip': expected one of "auto", "none", "horizontal"/,
    ],
    [
      { pretrain: { calibrationBatches: -1 } },
      /'pretrain.calibrationBatches': expected >= 0/,
    ],
    [{ inference: { margin: 1.5 } }, /'inference.margin': expected an integer/],
    [
      { segment: { schedule: "step" } },
      /'segment.schedule': expected one of "constant", "cosine"/,
    ],
    [
      { segment: { head: "multi" } },
      /'segment.head': expected one of "binary", "targets"/,
    ],
    [
      { segment: { loss: "ce" } },
      /'segment.loss': expected one of "dice", "batch-dice", "target-dice", "dice-ce"/,
    ],
  ];
  for (const [o, re] of bad) {
    assert.throws(() => mergeConfig(PRESETS.tiny, o), re);
  }
});

Deno.test("intensity defaults to the paper's window and percentiles; presets and a bare mode are accepted", () => {
  assert.deepEqual(PRESETS.tiny.intensity, {
    mode: "auto",
    window: [-175, 250],
    percentiles: [1, 99],
  });
  assert.deepEqual(PRESETS["paper-r50"].intensity, PRESETS.tiny.intensity);
  const head = mergeConfig(PRESETS.tiny, { intensity: { window: "head" } });
  assert.equal(head.intensity.window, "head");
  assert.deepEqual(intensityWindow(head.intensity.window), [0, 80]);
  assert.deepEqual(intensityWindow("abdomen"), [-175, 250]);
  assert.deepEqual(intensityWindow("bone"), [-700, 1300]);
  // A bare mode, as older configs wrote it, keeps the other fields.
  const bare = mergeConfig(head, { intensity: "percentile" });
  assert.deepEqual(bare.intensity, {
    mode: "percentile",
    window: "head",
    percentiles: [1, 99],
  });
});

Deno.test("mergeConfig() rejects a bad intensity, naming the field", () => {
  const bad = (intensity: unknown, message: RegExp) =>
    assert.throws(() => mergeConfig(PRESETS.tiny, { intensity }), {
      name: "RangeError",
      message,
    });
  bad(
    { window: [250, -175] },
    /^Invalid config field 'intensity\.window': expected \[min, max\] in HU with min < max, or one of "abdomen", "head", "bone": current value is \[250,-175\]$/,
  );
  bad({ window: [-1000] }, /'intensity\.window'.*current value is \[-1000\]$/);
  bad(
    { window: "lung" },
    /^Invalid config field 'intensity\.window': expected one of "abdomen", "head", "bone": current value is "lung"$/,
  );
  bad(
    { percentiles: [99, 1] },
    /^Invalid config field 'intensity\.percentiles': expected \[lo, hi\] with 0 <= lo < hi <= 100: current value is \[99,1\]$/,
  );
  bad({ percentiles: [0, 101] }, /'intensity\.percentiles'/);
  bad(
    { mode: "hu" },
    /^Invalid config field 'intensity\.mode': expected one of/,
  );
  bad(
    { min: -1000 },
    /^Unknown config field 'intensity\.min': valid fields of 'intensity' are 'mode', 'window', 'percentiles'$/,
  );
});
