import assert from "node:assert/strict";
import {
  applyBudgets,
  BUDGET_RULE,
  BUDGET_STAGES,
  type BudgetStage,
  countDataSize,
  type DataSize,
  fitMinutes,
  mergeConfig,
  PRESETS,
  sizeBudgets,
  type StageBudgets,
  type StageTiming,
} from "../../pipeline/mod.ts";
import { prepareData, resolveDataPath } from "../../pipeline/prepare.ts";

type Row = [
  string,
  DataSize,
  Record<BudgetStage, [epochs: number, stepsPerEpoch: number]>,
];

// Counts from prepareData with the tiny preset's split (seed 0):
// the phantom: 6 training cases × 12 slices, 9 organs in 360 (organ, slice)
// pairs; Task104_Digits: 264 training canvases, 10 digits in 453 pairs;
// Task101_BrainAAL8: 1 training volume of 90 slices, 8 regions in 281
// pairs. The expected values follow BUDGET_RULE by hand, e.g. digits
// coarse ⌈40 × 264 / 4⌉ = 2640 steps → 40 epochs of 66; segment
// ⌈5 × 453 × 4 / 8⌉ = 1133 steps → 23 epochs of 50.
const TABLE: Row[] = [
  ["phantom", { trainingSlices: 72, targets: 9, targetSlices: 360 }, {
    coarse: [40, 18],
    pretrain: [4, 100],
    segment: [20, 50],
  }],
  ["Task104 digits", { trainingSlices: 264, targets: 10, targetSlices: 453 }, {
    coarse: [40, 66],
    pretrain: [5, 100],
    segment: [23, 50],
  }],
  // ⌈40 × 90 / 4⌉ = 900 steps → 40 epochs of 23.
  ["Task101 brain", { trainingSlices: 90, targets: 8, targetSlices: 281 }, {
    coarse: [40, 23],
    pretrain: [4, 100],
    segment: [20, 50],
  }],
  // ⌈40 × 36 / 4⌉ = 360 steps, below the floor of 720: 80 epochs of 9.
  ["two tiny volumes", { trainingSlices: 36, targets: 2, targetSlices: 72 }, {
    coarse: [80, 9],
    pretrain: [4, 100],
    segment: [20, 50],
  }],
  ["a large CT set", {
    trainingSlices: 3000,
    targets: 13,
    targetSlices: 20000,
  }, {
    coarse: [4, 750],
    pretrain: [30, 100],
    segment: [100, 50],
  }],
];

for (const [name, size, want] of TABLE) {
  Deno.test(`sizeBudgets() on ${name}`, () => {
    const b = sizeBudgets(PRESETS.tiny, size);
    for (const s of BUDGET_STAGES) {
      assert.deepEqual([b[s].epochs, b[s].stepsPerEpoch], want[s], s);
      assert.equal(b[s].steps, b[s].epochs * b[s].stepsPerEpoch);
      assert.equal(b[s].setBy, "rule");
    }
  });
}

Deno.test("sizeBudgets() gives the phantom 40 coarse epochs and the tiny preset's former counts of stages 2 and 3, in words", () => {
  const b = sizeBudgets(PRESETS.tiny, TABLE[0]![1]);
  assert.equal(b.coarse.steps, 720);
  assert.equal(b.pretrain.steps, 400);
  assert.equal(b.segment.steps, 1000);
  assert.equal(
    b.coarse.why,
    "40 visits × 72 training slices / batch 4 = 720 steps, within [720, 3000]: 40 epochs of 18 steps",
  );
  assert.match(
    b.segment.why,
    /5 visits × 1440 patch centres \(360 \(target, slice\) pairs × 4\) \/ batch 8 = 900 steps/,
  );
});

Deno.test("sizeBudgets() grows with the data and stays within the rule's range", () => {
  let last: StageBudgets | null = null;
  for (const n of [1, 10, 72, 200, 1000, 5000, 50000]) {
    const b = sizeBudgets(PRESETS.tiny, {
      trainingSlices: n,
      targets: 9,
      targetSlices: 5 * n,
    });
    for (const s of BUDGET_STAGES) {
      const r = BUDGET_RULE[s];
      // Whole epochs: at least the floor, at most the ceiling (or one epoch
      // when a single epoch passes it).
      assert.ok(b[s].steps >= r.minSteps || b[s].epochs === 1, `${s} ${n}`);
      assert.ok(b[s].steps <= r.maxSteps || b[s].epochs === 1, `${s} ${n}`);
      if (last && s !== "coarse") assert.ok(b[s].steps >= last[s].steps);
    }
    last = b;
  }
});

Deno.test("sizeBudgets() keeps numbers set in the config and turns off stages that do not train", () => {
  const size = TABLE[1]![1];
  const set = mergeConfig(PRESETS.tiny, {
    coarse: { epochs: 30 },
    segment: { epochs: 3, stepsPerEpoch: 0 },
  });
  const b = sizeBudgets(set, size);
  assert.deepEqual([b.coarse.epochs, b.coarse.setBy], [30, "config"]);
  assert.equal(b.coarse.why, "coarse.epochs = 30 in the config");
  // stepsPerEpoch 0 = one pass over the 1812 patch centres, batch 8.
  assert.deepEqual([b.segment.epochs, b.segment.stepsPerEpoch], [3, 227]);
  assert.equal(b.pretrain.setBy, "rule");
  const off = sizeBudgets(
    mergeConfig(PRESETS.tiny, {
      coarse: { masks: "/masks" },
      pretrain: { method: "none" },
    }),
    size,
  );
  assert.deepEqual([off.coarse.setBy, off.coarse.epochs], ["off", 0]);
  assert.deepEqual([off.pretrain.setBy, off.pretrain.epochs], ["off", 0]);
  // The paper presets keep the paper's epochs.
  const paper = sizeBudgets(PRESETS["paper-r50"], size);
  assert.deepEqual(
    BUDGET_STAGES.map((s) => [paper[s].setBy, paper[s].epochs]),
    [["config", 23], ["config", 5], ["config", 10]],
  );
});

Deno.test("sizeBudgets() refuses data without training slices", () => {
  assert.throws(
    () =>
      sizeBudgets(PRESETS.tiny, {
        trainingSlices: 0,
        targets: 1,
        targetSlices: 0,
      }),
    {
      name: "RangeError",
      message:
        "Cannot size budgets as 'trainingSlices' must be a finite number > 0: current value is 0",
    },
  );
});

Deno.test("applyBudgets() puts numbers in place of auto without touching the config", () => {
  const b = sizeBudgets(PRESETS.tiny, TABLE[1]![1]);
  const c = applyBudgets(PRESETS.tiny, b);
  assert.deepEqual(
    [c.coarse.epochs, c.pretrain.epochs, c.segment.epochs],
    [40, 5, 23],
  );
  assert.equal(PRESETS.tiny.coarse.epochs, "auto");
});

Deno.test("countDataSize() counts slices and (target, slice) pairs, skipping non-targets", () => {
  const vol = {
    dims: [2, 2, 3] as [number, number, number],
    // slice 0: 1 and 2; slice 1: nothing; slice 2: 2 and VOC's 255.
    label: new Uint8Array([1, 2, 0, 0, 0, 0, 0, 0, 2, 255, 0, 0]),
  };
  const img = { dims: [2, 2, 1] as [number, number, number] };
  assert.deepEqual(countDataSize([vol, img], { targets: [1, 2] }), {
    trainingSlices: 4,
    targets: 2,
    targetSlices: 3,
  });
});

// Fake step times: 100 ms a step everywhere, stage 1 with three cross-fit
// folds (3 × 12 + 18 steps an epoch on the phantom). The fits below are
// worked by hand on the phantom sized by a rule whose stage 1 makes 10
// epochs (the rule before stage 1 visited each slice 30 times), so its
// data-sized budget needs 10 × 54 × 0.1 + 400 × 0.1 + 1000 × 0.1 = 194 s.
const TIMING: Record<BudgetStage, StageTiming> = {
  coarse: { msPerStep: 100, stepsPerEpoch: 54 },
  pretrain: { msPerStep: 100, stepsPerEpoch: 100 },
  segment: { msPerStep: 100, stepsPerEpoch: 50 },
};
const TEN_EPOCHS = {
  rule: {
    ...BUDGET_RULE,
    coarse: { visits: 10, minSteps: 180, maxSteps: 3000 },
  },
};
const PHANTOM = sizeBudgets(PRESETS.tiny, TABLE[0]![1], TEN_EPOCHS);

Deno.test("fitMinutes() keeps the data-sized budget when the minutes allow it", () => {
  const fit = fitMinutes(PHANTOM, {
    minutes: 10,
    fixedSeconds: 60,
    timing: TIMING,
  });
  assert.ok(Math.abs(fit.factor! - (600 - 60) / 194) < 1e-12);
  for (const s of BUDGET_STAGES) {
    assert.deepEqual(fit.budgets[s], PHANTOM[s]);
  }
  assert.equal(fit.seconds.total, 60 + 194);
  assert.equal(fit.tooSmall, false);
  assert.equal(fit.warning, null);
});

Deno.test("fitMinutes() scales the auto stages to fit, deterministically", () => {
  // 3 minutes − 60 s fixed = 120 s for 194 s of training: factor 0.619.
  const options = { minutes: 3, fixedSeconds: 60, timing: TIMING };
  const fit = fitMinutes(PHANTOM, options);
  assert.deepEqual(fitMinutes(PHANTOM, options), fit);
  // ⌊10 × 0.619⌋ = 6, ⌊4 × 0.619⌋ = 2, ⌊20 × 0.619⌋ = 12 epochs take
  // 32.4 + 20 + 60 = 112.4 s. Of the 7.6 s left, pretrain (furthest
  // behind, 2/4) cannot buy an epoch (10 s); coarse and segment are equally
  // behind (60%) and coarse, first in run order, buys one (5.4 s).
  assert.deepEqual(
    BUDGET_STAGES.map((s) => fit.budgets[s].epochs),
    [7, 2, 12],
  );
  for (const s of BUDGET_STAGES) {
    assert.equal(fit.budgets[s].setBy, "minutes");
    assert.equal(
      fit.budgets[s].steps,
      fit.budgets[s].epochs * fit.budgets[s].stepsPerEpoch,
    );
  }
  assert.match(
    fit.budgets.segment.why,
    /--minutes 3: 12 epochs \(60% of 20\)$/,
  );
  assert.ok(fit.seconds.total <= 180);
  assert.equal(fit.warning, null);
});

Deno.test("fitMinutes() never passes the data-sized budget unless fill is on", () => {
  const fit = fitMinutes(PHANTOM, {
    minutes: 60,
    fixedSeconds: 60,
    timing: TIMING,
    fill: true,
  });
  for (const s of BUDGET_STAGES) {
    assert.ok(fit.budgets[s].epochs > PHANTOM[s].epochs, s);
  }
  assert.ok(fit.seconds.total <= 3600);
  // Within one epoch of each stage of the whole hour.
  assert.ok(fit.seconds.total > 3600 - 5.4 - 10 - 5);
});

Deno.test("fitMinutes() keeps config-set stages and warns when the floor does not fit", () => {
  const set = sizeBudgets(
    mergeConfig(PRESETS.tiny, { segment: { epochs: 20 } }),
    TABLE[0]![1],
    TEN_EPOCHS,
  );
  const fit = fitMinutes(set, { minutes: 1, fixedSeconds: 30, timing: TIMING });
  assert.equal(fit.budgets.segment.setBy, "config");
  assert.equal(fit.budgets.segment.epochs, 20);
  // The floors: ⌈0.25 × 10⌉ = 3 coarse epochs, 1 pre-training epoch.
  assert.deepEqual(
    [fit.budgets.coarse.epochs, fit.budgets.pretrain.epochs],
    [3, 1],
  );
  assert.ok(fit.factor! < 0);
  assert.equal(fit.tooSmall, true);
  assert.match(
    fit.warning!,
    /^--minutes 1 is too small to train sensibly: about 2\.2 minutes go to data, inference and the stages set in the config, and the "auto" stages need about 0\.4 more at their floor \(25% of their data-sized epochs\); expect about 2\.6 minutes, or raise --minutes$/,
  );
  const all = fitMinutes(sizeBudgets(PRESETS["paper-r50"], TABLE[0]![1]), {
    minutes: 1,
    fixedSeconds: 30,
    timing: TIMING,
  });
  assert.equal(all.factor, null);
  assert.match(all.warning!, /every stage's epochs are set in the config/);
});

Deno.test("fitMinutes() checks its numbers", () => {
  assert.throws(
    () => fitMinutes(PHANTOM, { minutes: 0, fixedSeconds: 0, timing: TIMING }),
    {
      name: "RangeError",
      message:
        "Cannot fit the run into its minutes as 'minutes' must be a finite number > 0: current value is 0",
    },
  );
  assert.throws(
    () =>
      fitMinutes(PHANTOM, {
        minutes: 5,
        fixedSeconds: 0,
        timing: { ...TIMING, pretrain: { msPerStep: 0, stepsPerEpoch: 100 } },
      }),
    { message: /'timing\.pretrain\.msPerStep' must be a finite number > 0/ },
  );
  assert.throws(
    () =>
      fitMinutes(PHANTOM, {
        minutes: 5,
        fixedSeconds: 0,
        timing: { coarse: TIMING.coarse },
      }),
    { message: /'timing\.pretrain' is missing: the stage trains 4 epochs/ },
  );
});

Deno.test("sizeBudgets() on the embedded phantom, as prepared by a default run, gives 40 coarse epochs and the tiny preset's former counts of stages 2 and 3", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const config = PRESETS.tiny;
    const data = await prepareData(
      await resolveDataPath(config, dir),
      config,
    );
    const size = countDataSize(data.train, {
      targets: data.targets.map((t) => t.id),
    });
    assert.deepEqual(size, TABLE[0]![1]);
    const b = sizeBudgets(config, size);
    assert.deepEqual(
      BUDGET_STAGES.map((s) => [b[s].epochs, b[s].stepsPerEpoch]),
      [[40, 18], [4, 100], [20, 50]],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
