import assert from "node:assert/strict";
import { join } from "node:path";
import {
  mergeConfig,
  PRESETS,
  runPipeline,
  sizeBudgets,
} from "../../pipeline/mod.ts";
import {
  type MeasuredTimes,
  RESERVE,
  runBudgets,
} from "../../pipeline/_budgets.ts";
import { parseTrainArgs } from "../../cli/train.ts";
import type { PreparedData } from "../../pipeline/prepare.ts";

const MICRO =
  new URL("../testdata/micro_config.json", import.meta.url).pathname;

// Two training volumes of 2×2×3 (6 slices), each with targets 1 and 2 in 3
// (target, slice) pairs, one evaluation volume of 3 slices.
function fakeData(): PreparedData {
  const vol = (id: string) => ({
    id,
    dims: [2, 2, 3] as [number, number, number],
    label: new Uint8Array([1, 2, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0]),
    channels: 1,
    domain: 0,
  });
  return {
    targets: [{ id: 1, name: "a" }, { id: 2, name: "b" }],
    train: [vol("t0"), vol("t1")],
    evaluation: [vol("e0")],
  } as unknown as PreparedData;
}

const MEASURED: MeasuredTimes = {
  msPerStep: { coarse: 200, pretrain: 100, segment: 50 },
  coarseForwardMsPerSlice: 10,
  inferenceMsPerTile: 2,
  steps: 3,
  seconds: 1,
};

const PLAN = {
  flip: false,
  tta: false,
  jitter: false,
  trainSource: "predicted",
  largestComponent: [],
} as const;

function neverMeasure(): Promise<MeasuredTimes> {
  throw new Error("measured again");
}

Deno.test("runBudgets() without minutes records the data-sized budgets and measures nothing", async () => {
  const { record, recorded } = await runBudgets(PRESETS.tiny, fakeData(), {
    plan: PLAN,
    seed: 0,
    elapsed: () => 0,
    saved: null,
    measure: neverMeasure,
  });
  assert.equal(recorded, false);
  assert.deepEqual(record.data, {
    trainingSlices: 6,
    targets: 2,
    targetSlices: 6,
  });
  assert.deepEqual(record.stages, sizeBudgets(PRESETS.tiny, record.data));
  assert.equal(record.minutes, null);
  assert.equal(record.rule.coarse.visits, 40);
});

Deno.test("runBudgets() with minutes records the measured times, fixed costs and fit", async () => {
  const config = mergeConfig(PRESETS.tiny, { budget: { minutes: 2 } });
  const options = {
    plan: PLAN,
    seed: 0,
    elapsed: () => 5,
    saved: null,
    measure: () => Promise.resolve(structuredClone(MEASURED)),
  };
  const { record } = await runBudgets(config, fakeData(), options);
  // Deterministic given the measured times.
  assert.deepEqual(
    (await runBudgets(config, fakeData(), options)).record,
    record,
  );
  const m = record.minutes!;
  assert.equal(m.minutes, 2);
  assert.deepEqual(m.measured, MEASURED);
  // 9 slices predicted at 10 ms; reserve 10% of 120 s.
  assert.equal(m.fixedSeconds.coarsePredict, 0.09);
  assert.equal(m.fixedSeconds.reserve, RESERVE * 120);
  assert.equal(m.fixedSeconds.elapsed, 5);
  assert.deepEqual(m.stepsPerEpoch, { coarse: 2, pretrain: 100, segment: 50 });
  // Data-sized: 360 coarse epochs of 2 steps (the floor of 720 steps:
  // 144 s), 400 (40 s) and 1000 (50 s) steps: 234 s, more than the ~103 s
  // left, so each is shortened (by 103 / 234 ≈ 0.44).
  assert.ok(m.factor! < 0.5 && m.factor! > 0.4);
  for (const s of ["coarse", "pretrain", "segment"] as const) {
    assert.equal(record.stages[s].setBy, "minutes", s);
    assert.ok(record.stages[s].epochs < m.dataSized[s].epochs, s);
    assert.equal(record.stages[s].msPerStep, MEASURED.msPerStep[s]);
  }
  assert.ok(m.estimatedSeconds <= 120);
  assert.equal(m.warning, null);
});

Deno.test("runBudgets() on resume reuses the recorded budgets without measuring", async () => {
  const config = mergeConfig(PRESETS.tiny, { budget: { minutes: 2 } });
  const { record } = await runBudgets(config, fakeData(), {
    plan: PLAN,
    seed: 0,
    elapsed: () => 5,
    saved: null,
    measure: () => Promise.resolve(structuredClone(MEASURED)),
  });
  const saved = JSON.parse(JSON.stringify({ ...config, budgets: record }));
  const again = await runBudgets(config, fakeData(), {
    plan: PLAN,
    seed: 0,
    elapsed: () => 99,
    saved,
    measure: neverMeasure,
  });
  assert.equal(again.recorded, true);
  assert.deepEqual(again.record, record);
  // A config.json from before budgets were recorded is sized again.
  const old = await runBudgets(PRESETS.tiny, fakeData(), {
    plan: PLAN,
    seed: 0,
    elapsed: () => 0,
    saved: { ...PRESETS.tiny },
    measure: neverMeasure,
  });
  assert.equal(old.recorded, false);
});

Deno.test({
  name:
    "runPipeline() records the budgets in config.json and a resumed run reuses them",
  sanitizeResources: false,
  async fn() {
    const out = await Deno.makeTempDir();
    try {
      const { config } = await parseTrainArgs([
        "--config",
        MICRO,
        "--set",
        "coarse.epochs=auto",
        "--minutes",
        "0.05",
      ]);
      const first: string[] = [];
      await runPipeline(config, {
        out,
        quiet: true,
        backend: "wasm",
        print: (l) => first.push(l),
      });
      const saved = JSON.parse(
        await Deno.readTextFile(join(out, "config.json")),
      );
      // The config as given, the choice beside it.
      assert.equal(saved.coarse.epochs, "auto");
      assert.equal(saved.budget.minutes, 0.05);
      const b = saved.budgets;
      assert.deepEqual(b.data, {
        trainingSlices: 16,
        targets: 9,
        targetSlices: b.data.targetSlices,
      });
      // 3 seconds cannot hold the 180 data-sized coarse epochs (720 steps
      // of 4 slices): the floor.
      assert.equal(b.minutes.dataSized.coarse.epochs, 180);
      assert.equal(b.stages.coarse.setBy, "minutes");
      assert.equal(b.stages.coarse.epochs, Math.ceil(0.25 * 180));
      assert.ok(b.stages.coarse.msPerStep > 0);
      assert.equal(b.stages.pretrain.setBy, "config");
      assert.equal(b.stages.pretrain.epochs, 2);
      assert.match(b.minutes.warning, /^--minutes 0\.05 is too small/);
      const log = (await Deno.readTextFile(join(out, "log.jsonl"))).trim()
        .split("\n").map((l) => JSON.parse(l));
      assert.equal(
        log.filter((e) => e.stage === "coarse" && !e.kind).length,
        b.stages.coarse.steps,
      );

      const second: string[] = [];
      await runPipeline(config, {
        out,
        resume: true,
        quiet: true,
        backend: "wasm",
        print: (l) => second.push(l),
      });
      assert.ok(
        second.includes("budget: as recorded in config.json (resumed run)"),
      );
      const stageLines = (lines: string[]) =>
        lines.filter((l) => /^ {2}(coarse|pretrain|segment):/.test(l));
      assert.deepEqual(stageLines(second), stageLines(first));
      const after = JSON.parse(
        await Deno.readTextFile(join(out, "config.json")),
      );
      assert.deepEqual(after.budgets, saved.budgets);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});
