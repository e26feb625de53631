import assert from "node:assert/strict";
import { crossfitFolds, planStage1 } from "../../pipeline/stage1.ts";
import { mergeConfig, PRESETS } from "../../pipeline/config.ts";
import type { PreparedData } from "../../pipeline/prepare.ts";

Deno.test("crossfitFolds() deals each domain's cases round-robin over the folds", () => {
  const cases = [
    ...["a", "b", "c", "d", "e"].map((id) => ({ id, domain: 0 })),
    ...["p", "q", "r"].map((id) => ({ id, domain: 1 })),
  ];
  const split = crossfitFolds(cases, { folds: 3, seed: 7 });
  assert.ok("folds" in split);
  const folds = split.folds;
  assert.deepEqual(Object.keys(folds).sort(), cases.map((c) => c.id).sort());
  const sizes = [0, 1, 2].map((f) =>
    Object.values(folds).filter((v) => v === f).length
  );
  assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `sizes ${sizes}`);
  // Every domain is trained on by the networks predicting each fold.
  for (let f = 0; f < 3; f++) {
    for (const d of [0, 1]) {
      const held = cases.some((c) => c.domain === d && folds[c.id] === f);
      const rest = cases.some((c) => c.domain === d && folds[c.id] !== f);
      if (held) assert.ok(rest, `fold ${f} domain ${d}`);
    }
  }
  // Seeded: the same seed gives the same split, another seed may differ.
  assert.deepEqual(crossfitFolds(cases, { folds: 3, seed: 7 }), split);
});

Deno.test("crossfitFolds() says why it cannot split", () => {
  const one = crossfitFolds([{ id: "a", domain: 0 }], { folds: 2, seed: 0 });
  assert.ok("reason" in one);
  assert.match(one.reason, /1 training case\(s\) cannot fill 2 folds/);
  const lonely = crossfitFolds(
    [
      { id: "ct1", domain: 0 },
      { id: "ct2", domain: 0 },
      { id: "mr1", domain: 1 },
    ],
    { folds: 2, seed: 0 },
  );
  assert.ok("reason" in lonely);
  assert.match(
    lonely.reason,
    /domain\(s\) 1 \(mr1\) have a single training case/,
  );
});

function fakeData(domains: number[]): PreparedData {
  const train = domains.map((domain, i) => ({
    id: `c${i}`,
    domain,
    dims: [8, 8, 4] as [number, number, number],
  }));
  return {
    targets: [{ id: 1, name: "liver" }],
    train,
    intensity: "window",
  } as unknown as PreparedData;
}

Deno.test("planStage1() resolves crossfit, its fallback, given masks and the auto augmentations", () => {
  const tiny = PRESETS.tiny;
  const plan = planStage1(tiny, fakeData([0, 0, 1, 1]), { seed: 1 });
  assert.equal(plan.trainSource, "crossfit");
  assert.equal(Object.keys(plan.folds!).length, 4);
  assert.equal(plan.flip, true); // volumes, no sided label
  assert.equal(plan.tta, true); // auto: test-time flip where training flips
  assert.equal(plan.jitter, false); // HU window
  assert.deepEqual(plan.largestComponent, [1]); // no truth shows it split
  const fallback = planStage1(tiny, fakeData([0, 1]), { seed: 1 });
  assert.equal(fallback.trainSource, "predicted");
  assert.equal(fallback.folds, undefined);
  assert.match(fallback.fallback!, /falls back to "predicted"/);
  const given = planStage1(
    mergeConfig(tiny, { coarse: { masks: "/masks" } }),
    fakeData([0, 0]),
    { seed: 1 },
  );
  assert.equal(given.trainSource, "given");
  assert.deepEqual(given.largestComponent, []); // given maps are kept as they are
  assert.equal(given.tta, false); // and not predicted
  const union = planStage1(
    mergeConfig(tiny, { coarse: { trainAttention: "union" } }),
    fakeData([0, 0]),
    { seed: 1 },
  );
  assert.equal(union.trainSource, "union");
  // A training case whose truth holds the target in two pieces.
  const split = fakeData([0, 0]);
  const label = new Uint8Array(8 * 8 * 4);
  label[0] = 1;
  label[7] = 1;
  (split.train[0] as { label?: Uint8Array }).label = label;
  assert.deepEqual(planStage1(tiny, split, { seed: 1 }).largestComponent, []);
});

Deno.test("planStage1() resolves coarse.tta from the resolved flip: no test-time flip for sided labels unless asked", () => {
  const sided = fakeData([0, 0]);
  sided.targets = [{ id: 1, name: "kidney_left" }, {
    id: 2,
    name: "kidney_right",
  }];
  const tiny = PRESETS.tiny;
  const auto = planStage1(tiny, sided, { seed: 1 });
  assert.deepEqual([auto.flip, auto.tta], [false, false]);
  const flipped = planStage1(
    mergeConfig(tiny, { coarse: { flip: "horizontal" } }),
    sided,
    { seed: 1 },
  );
  assert.deepEqual([flipped.flip, flipped.tta], [true, true]);
  const none = planStage1(
    mergeConfig(tiny, { coarse: { tta: "none" } }),
    fakeData([0, 0]),
    { seed: 1 },
  );
  assert.deepEqual([none.flip, none.tta], [true, false]);
  const forced = planStage1(
    mergeConfig(tiny, { coarse: { tta: "flip" } }),
    sided,
    { seed: 1 },
  );
  assert.deepEqual([forced.flip, forced.tta], [false, true]);
});
