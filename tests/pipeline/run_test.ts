import assert from "node:assert/strict";
import { basename, join } from "node:path";
import { predictFile, runPipeline } from "../../pipeline/mod.ts";
import { parseTrainArgs } from "../../cli/train.ts";

const MICRO =
  new URL("../testdata/micro_config.json", import.meta.url).pathname;

Deno.test("runPipeline() cross-fits the training attention and records the stage evidence; a decoder with a class per target and stage 1's test-time flip on reduced slices predict again from model/", async () => {
  const out = await Deno.makeTempDir();
  try {
    // 6 phantom cases: 4 training cases, two per domain, so 2 folds work.
    const { config } = await parseTrainArgs([
      "--config",
      MICRO,
      "--set",
      "phantom.cases=6",
      "--set",
      "validationFraction=0.34",
      "--set",
      "coarse.folds=2",
      "--set",
      "segment.head=targets",
      // Asked for: "auto" would not flip the phantom's sided labels.
      "--set",
      "coarse.tta=flip",
      // Stage 1 on 24×24 slices of the 48×48 phantom, resized back.
      "--set",
      "coarse.downsample=2",
    ]);
    const lines: string[] = [];
    const result = await runPipeline(config, {
      out,
      quiet: true,
      backend: "wasm",
      print: (l) => lines.push(l),
    });
    const saved = JSON.parse(await Deno.readTextFile(join(out, "config.json")));
    assert.equal(saved.trainAttentionResolved, "crossfit");
    assert.equal(saved.coarseFlipResolved, false);
    assert.equal(saved.coarseTtaResolved, true);
    // The phantom's labels name sides (kidney_left) and its CT comes
    // through a HU window: stage 2 neither mirrors nor jitters its views.
    assert.equal(saved.pretrainFlipResolved, false);
    assert.equal(saved.pretrainJitterResolved, false);
    const log = (await Deno.readTextFile(join(out, "log.jsonl"))).trim()
      .split("\n").map((l) => JSON.parse(l));
    // Stage 1's lr falls from coarse.lr along a cosine (tiny's default).
    const coarseLrs = log
      .filter((e) => e.stage === "coarse" && e.lr !== undefined)
      .map((e) => e.lr as number);
    assert.equal(coarseLrs[0], config.coarse.lr);
    assert.ok(coarseLrs.every((v, i) => i === 0 || v < coarseLrs[i - 1]!));
    // Stage 3's lr falls from segment.lr along a cosine (4 steps here).
    const lrs = log
      .filter((e) => e.stage === "segment" && e.lr !== undefined)
      .map((e) => e.lr as number);
    const lr = config.segment.lr;
    assert.deepEqual(
      lrs.map((v) => Number((v / lr).toFixed(6))),
      [0, 1, 2, 3].map((i) =>
        Number((0.5 * (1 + Math.cos(Math.PI * i / 4))).toFixed(6))
      ),
    );
    const folds = Object.values(saved.crossfitFolds as Record<string, number>);
    assert.deepEqual([...new Set(folds)].sort(), [0, 1]);
    // Each fold's network and the final one left their own checkpoints.
    const ck = [...Deno.readDirSync(join(out, "checkpoints"))].map((e) =>
      e.name
    );
    for (
      const stage of [
        "coarse-fold0",
        "coarse-fold1",
        "coarse",
        "pretrain",
        "segment",
      ]
    ) {
      assert.ok(ck.some((n) => n.startsWith(`${stage}-epoch`)), stage);
    }
    // Stage 1's coarse map of every case, reusable as --coarse.
    const att = [...Deno.readDirSync(join(out, "attention"))].map((e) =>
      e.name
    );
    assert.equal(att.length, 6);
    const metrics = JSON.parse(
      await Deno.readTextFile(join(out, "metrics.json")),
    );
    const st = metrics.stages;
    assert.equal(st.attention.source, "crossfit");
    assert.equal(st.attention.margin, config.inference.margin);
    for (
      const part of [st.stage1, st.attention.train, st.attention.evaluation]
    ) {
      assert.deepEqual(Object.keys(part.targets), Object.keys(metrics.targets));
      assert.ok(part.mean.recall >= 0 && part.mean.recall <= 1);
    }
    assert.equal(st.stage2.health.method, "agcl");
    assert.equal(st.stage2.health.positiveFraction, 1);
    assert.ok(Math.abs(st.stage2.health.chance - Math.log(4 * 2 - 1)) < 1e-9);
    // Pairs of one (domain, target) group: ln 3, unless two pairs of a
    // batch drew the same group.
    assert.ok(
      st.stage2.health.floor >= Math.log(3) - 1e-9 &&
        st.stage2.health.floor <= Math.log(7),
    );
    for (const e of ["input", "encoder", "projection"]) {
      assert.ok(st.stage2.probe[e].knn.target >= 0, e);
    }
    assert.ok(lines.some((l) => l.includes("What each stage contributed")));
    assert.ok(
      lines.some((l) => /^stage 1: Dice on the evaluation cases/.test(l)),
    );
    assert.ok(lines.some((l) => /^stage 2 \(agcl\): 4 steps/.test(l)));
    assert.ok(result.timings.coarse > 0);
    const timings = JSON.parse(
      await Deno.readTextFile(join(out, "timings.json")),
    );
    assert.deepEqual(Object.keys(timings), [
      "prepare",
      "coarse",
      "pretrain",
      "segment",
      "inference",
    ]);
    // The same stage timings in metrics.json, and metrics.csv beside it.
    assert.deepEqual(metrics.timings, timings);
    const csv = (await Deno.readTextFile(join(out, "metrics.csv"))).trimEnd()
      .split("\n");
    assert.equal(
      csv.length,
      1 + metrics.cases.length * Object.keys(metrics.targets).length,
    );
    assert.equal(csv[1]!.split(",")[0], metrics.cases[0].id);
    assert.equal(
      metrics.stats[Object.keys(metrics.targets)[0]!].dice.n,
      metrics.cases.length,
    );
    // One class per target and background, saved so that predict
    // rebuilds it and picks each target's own class again.
    const model = JSON.parse(
      await Deno.readTextFile(join(out, "model", "config.json")),
    );
    assert.equal(
      model.nets.segment.options.nClasses,
      Object.keys(metrics.targets).length + 1,
    );
    // predict flips and reduces stage 1's slices as the run did.
    assert.equal(model.coarseTta, true);
    assert.equal(model.pipeline.coarse.downsample, 2);
    const image: string = metrics.cases[0].image;
    const id = basename(image).replace(/\.nii(\.gz)?$/, "");
    const again = join(out, `again-${id}.nii.gz`);
    await predictFile(out, image, { out: again });
    assert.deepEqual(
      await Deno.readFile(again),
      await Deno.readFile(join(out, "predictions", `${id}.nii.gz`)),
    );
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
