import assert from "node:assert/strict";
import { formatMetricsTable } from "../../pipeline/evaluate.ts";
import type { PreparedCase } from "../../pipeline/prepare.ts";

Deno.test("formatMetricsTable() prints one row per target, then the mean, '-' for null distances", () => {
  const table = formatMetricsTable({
    targets: {
      liver: { dice: 0.9123, iou: 0.8, hd: 3, hd95: 2.5, assd: 0.75 },
      gallbladder: { dice: 0, iou: 0, hd: null, hd95: null, assd: null },
    },
    mean: { dice: 0.45615, iou: 0.4, hd: 3, hd95: 2.5, assd: 0.75 },
  });
  const lines = table.split("\n");
  assert.equal(lines.length, 5);
  assert.match(lines[0]!, /^target\s+dice\s+dicePresent\s+hd95\s+assd$/);
  assert.equal(lines[1], "liver         0.912           -    2.50    0.75");
  assert.equal(lines[2], "gallbladder   0.000           -       -       -");
  assert.match(lines[3]!, /^mean\s+0\.456/);
  assert.match(lines[4]!, /^\(dice: every case/);
});

Deno.test("formatMetricsTable() shows dice over cases with the target, its case count and false positives", () => {
  const table = formatMetricsTable({
    targets: { digit_3: { dice: 0.8, dicePresent: 0.4, hd95: 3, assd: 1 } },
    mean: { dice: 0.8, dicePresent: 0.4, hd95: 3, assd: 1 },
    counts: {
      digit_3: {
        cases: 10,
        hd95: 2,
        assd: 2,
        hd95Null: 8,
        assdNull: 8,
        reasons: { "both empty": 7, "truth empty": 1 },
        present: 2,
        falsePositive: 1,
      },
    },
  });
  const lines = table.split("\n");
  assert.match(
    lines[0]!,
    /^target\s+dice\s+dicePresent\s+present\s+fp\s+hd95\s+assd\s+no distance$/,
  );
  assert.equal(
    lines[1],
    "digit_3   0.800       0.400       2     1    3.00    1.00   8/10",
  );
  assert.match(lines[3]!, /fp: cases predicting an absent target/);
});

Deno.test("coverage() scores a map against the truth: Dice, pooled precision/recall, truth beyond a margin", async () => {
  const { coverage } = await import("../../pipeline/evaluate.ts");
  // One 6×1×1 case... as a 6-pixel row: truth 1 at x 0..3, map at x 2..4.
  const label = new Uint8Array([1, 1, 1, 1, 0, 0]);
  const map = new Uint8Array([0, 0, 1, 1, 1, 0]);
  const c = { id: "a", dims: [6, 1, 1], label } as unknown as PreparedCase;
  const targets = [{ id: 1, name: "liver" }, { id: 2, name: "spleen" }];
  const cov = coverage([c], new Map([["a", map]]), { targets, margin: 0 });
  const liver = cov.targets.liver!;
  assert.equal(liver.dice, (2 * 2) / (3 + 4));
  assert.equal(liver.dicePresent, liver.dice);
  assert.equal(liver.precision, 2 / 3);
  assert.equal(liver.recall, 2 / 4);
  assert.equal(liver.outside, 2 / 4); // x 0 and 1 lie outside the map
  // Spleen is absent from both: Dice 1 (both empty), no present case, nothing to cover.
  assert.deepEqual(cov.targets.spleen, {
    dice: 1,
    dicePresent: null,
    precision: null,
    recall: null,
    outside: null,
  });
  // A margin of 1 reaches x 1; x 0 stays beyond it.
  const reach = coverage([c], new Map([["a", map]]), { targets, margin: 1 });
  assert.equal(reach.targets.liver!.outside, 1 / 4);
  assert.equal(reach.mean.dice, (liver.dice! + 1) / 2);
  // Cases without a label or a map are skipped.
  const none = coverage([{ ...c, id: "b" }], new Map(), { targets, margin: 0 });
  assert.equal(none.targets.liver!.dice, null);
});

Deno.test("stage2Warning() flags a stage-2 loss that stays near its chance level", async () => {
  const { stage2Warning } = await import("../../pipeline/evaluate.ts");
  const health = {
    method: "agcl" as const,
    steps: 200,
    initialLoss: 2.7,
    finalLoss: 2.69,
    chance: Math.log(15),
    floor: Math.log(3),
    positiveFraction: 1,
    calibrationBatches: 0,
  };
  assert.match(
    stage2Warning(health)!,
    /stage 2 \(agcl\) ended with loss 2\.690, within 5 % of its chance level 2\.708/,
  );
  assert.equal(stage2Warning({ ...health, finalLoss: 2.0 }), null);
  assert.equal(
    stage2Warning({ ...health, method: "none", finalLoss: null, chance: null }),
    null,
  );
});

Deno.test("underTrainedWarnings() names the setting to raise for a stage whose loss still falls at its end", async () => {
  const { underTrainedWarnings } = await import("../../pipeline/evaluate.ts");
  // 40 coarse steps falling linearly 2 → 1.025: the last tenth (steps
  // 36-39, mean 1.0625) is 9 % below the tenth before (32-35, mean 1.1625).
  const falling = Array.from({ length: 40 }, (_, i) => ({
    stage: "coarse",
    loss: 2 - i / 40,
  }));
  const flat = Array.from(
    { length: 40 },
    () => ({ stage: "segment", loss: 1 }),
  );
  assert.deepEqual(underTrainedWarnings([...falling, ...flat]), [
    "the coarse loss was still falling at the end of its stage (1.163 → 1.063 over its last two tenths): raise coarse.epochs",
  ]);
  // A fold's network ("coarse-fold0") and stages of under 20 steps are not judged.
  assert.deepEqual(
    underTrainedWarnings([
      ...falling.map((e) => ({ ...e, stage: "coarse-fold0" })),
      ...falling.slice(0, 19).map((e) => ({ ...e, stage: "pretrain" })),
    ]),
    [],
  );
  // Falling by less than 5 % is converged enough.
  const slow = Array.from({ length: 40 }, (_, i) => ({
    stage: "pretrain",
    loss: 1 - i / 4000,
  }));
  assert.deepEqual(underTrainedWarnings(slow), []);
  // 6.9 % lower but within the steps' noise (200 steps alternating ±0.3
  // about a mean that falls 0.389 → 0.363 in the last tenth: z ≈ 0.27) is
  // not judged under-trained; the same fall with ±0.02 noise (z ≈ 4) is.
  const noisy = (amp: number) =>
    Array.from({ length: 200 }, (_, i) => ({
      stage: "coarse",
      loss: (i < 180 ? 0.389 : 0.363) + (i % 2 ? amp : -amp),
    }));
  assert.deepEqual(underTrainedWarnings(noisy(0.3)), []);
  assert.deepEqual(underTrainedWarnings(noisy(0.02)), [
    "the coarse loss was still falling at the end of its stage (0.389 → 0.363 over its last two tenths): raise coarse.epochs",
  ]);
  // Under a decaying lr (the last below half the first) the windows are
  // fifths. 100 steps whose loss falls 1 → 0.8 until step 79 and then stays
  // (the cosine's tail): its last two tenths are equal, its last two fifths
  // 0.824 → 0.800 (-2.9 %), no warning; falling until step 89, fifths
  // 0.844 → 0.805 (-4.6 %), none either; falling 1.2 → 0.8 to the last
  // step, fifths 0.919 → 0.838 (-8.8 %): under-trained.
  const cosine = (i: number) => 0.5 * (1 + Math.cos(Math.PI * i / 100));
  const tail = (until: number, from: number) =>
    Array.from({ length: 100 }, (_, i) => ({
      stage: "segment",
      loss: from - (from - 0.8) * Math.min(i, until) / until,
      lr: 3e-3 * cosine(i),
    }));
  assert.deepEqual(underTrainedWarnings(tail(79, 1)), []);
  assert.deepEqual(underTrainedWarnings(tail(89, 1)), []);
  assert.deepEqual(underTrainedWarnings(tail(99, 1.2)), [
    "the segment loss was still falling at the end of its stage (0.919 → 0.838 over its last two fifths): raise segment.epochs or segment.stepsPerEpoch",
  ]);
  // The brain atlas's stage 1 under the cosine (1350 steps): flat over its
  // last two tenths, 7.7 % down over its last two fifths.
  const tenths = [
    2.3824,
    1.5071,
    1.126,
    0.9971,
    0.8912,
    0.8108,
    0.7808,
    0.7194,
    0.6953,
    0.6896,
  ];
  const brain = tenths.flatMap((m, t) =>
    Array.from({ length: 135 }, (_, i) => ({
      stage: "coarse",
      loss: m + (i % 2 ? 0.05 : -0.05),
      lr: 3e-3 * cosine((t * 135 + i) * 100 / 1350),
    }))
  );
  assert.deepEqual(underTrainedWarnings(brain), [
    "the coarse loss was still falling at the end of its stage (0.750 → 0.692 over its last two fifths): raise coarse.epochs",
  ]);
  // The same losses under a constant lr are judged by tenths: 0.8 % apart.
  assert.deepEqual(
    underTrainedWarnings(brain.map((e) => ({ ...e, lr: 3e-3 }))),
    [],
  );
});
