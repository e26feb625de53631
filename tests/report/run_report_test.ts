import assert from "node:assert/strict";
import { join } from "node:path";
import { loadDataset } from "../../data/dataset.ts";
import { readNifti, writeNifti } from "../../data/nifti.ts";
import { makePhantom } from "../../data/phantom.ts";
import { evaluateLabelMaps, summarizeMetrics } from "../../metrics/evaluate.ts";
import { diceRows, writeRunReport } from "../../report/run_report.ts";
import { assertFigure, writeSyntheticRun } from "./_synthetic_run.ts";

Deno.test("writeRunReport writes every figure as SVG and PNG and an index that references them", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeSyntheticRun(dir, { sweep: true });
    const slice = {
      image: Array.from({ length: 64 }, (_, i) => i),
      pred: Array.from({ length: 64 }, (_, i) => (i % 8 < 4 ? 1 : 0)),
      truth: Array.from({ length: 64 }, (_, i) => (i % 8 < 5 ? 1 : 0)),
      width: 8,
      height: 8,
      caption: "case_0, slice z=1",
      view: "axial, radiological view",
      sides: { left: "R", right: "L", top: "A", bottom: "P" },
    };
    const r = await writeRunReport(dir, { overlays: [slice], seed: 3 });
    assert.deepEqual(r.skipped, []);
    for (
      const name of [
        "dice_boxplot",
        "loss_curves",
        "embedding_umap",
        "temperature_sweep",
        "validation_curves",
      ]
    ) {
      assert.ok(
        r.files.includes(`${name}.svg`) && r.files.includes(`${name}.png`),
        name,
      );
    }
    const html = await Deno.readTextFile(r.index);
    for (const f of r.files.filter((f) => f !== "index.html")) {
      await assertFigure(join(r.dir, f));
      assert.ok(
        html.includes(`src="${f}"`) || html.includes(`href="${f}"`),
        `index misses ${f}`,
      );
    }
    assert.ok(html.includes("overlay_1.png") && html.includes("overlay_1.svg"));
    assert.match(
      html,
      /case_0, slice z=1: image \| prediction \| truth; axial, radiological view/,
    );
    const svg = await Deno.readTextFile(join(r.dir, "overlay_1.svg"));
    for (
      const t of [
        "case_0, slice z=1",
        "prediction",
        "truth",
        ">R<",
        ">A<",
        "1 liver",
      ]
    ) {
      assert.ok(svg.includes(t), `overlay SVG misses ${t}`);
    }
    assert.match(html, /<td>liver<\/td><td>0\.\d{3}<\/td>/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeRunReport lists what it could not draw", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      join(dir, "log.jsonl"),
      '{"stage":"segment","epoch":0,"step":0,"loss":1}\n{"stage":"segment","epoch":0,"step":1,"loss":0.5}\n{"stage":"seg',
    );
    const r = await writeRunReport(dir);
    assert.deepEqual(r.skipped, [
      "metrics: no metrics.json",
      "validation curves: no validation Dice in log.jsonl",
      "embedding map: no embeddings.json",
      "overlays: no predictions/ folder",
    ]);
    assert.ok(r.files.includes("loss_curves.png"));
    assert.match(await Deno.readTextFile(r.index), /Not drawn/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeRunReport draws overlays from the run's predictions and dataset", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const dsPath = await makePhantom({
      dir: join(dir, "data"),
      cases: 3,
      size: [32, 32, 8],
      seed: 5,
    });
    const ds = await loadDataset(dsPath);
    const run = join(dir, "run");
    await Deno.mkdir(join(run, "predictions"), { recursive: true });
    await Deno.writeTextFile(
      join(run, "config.json"),
      JSON.stringify({ dataPath: dsPath }),
    );
    for (const e of ds.validation) {
      await writeNifti(
        join(run, "predictions", `${e.id}.nii.gz`),
        await readNifti(e.label!),
      );
    }
    const r = await writeRunReport(run);
    assert.ok(r.files.includes("overlay_1.png"), JSON.stringify(r.skipped));
    await assertFigure(join(r.dir, "overlay_1.png"));
    assert.match(
      await Deno.readTextFile(r.index),
      new RegExp(`${ds.validation[0]!.id}, slice z=\\d+`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("diceRows keeps only cases whose truth contains the target unless asked", () => {
  const labels = { 1: "a", 2: "b" };
  const m = summarizeMetrics([
    {
      image: "x",
      metrics: evaluateLabelMaps([1, 0], [1, 0], { dims: [2, 1, 1], labels }),
    },
    {
      image: "y",
      metrics: evaluateLabelMaps([1, 2], [1, 0], { dims: [2, 1, 1], labels }),
    },
  ]);
  assert.deepEqual(diceRows(m, "agcl"), [
    { method: "agcl", target: "a", dice: 1, case: "x" },
    { method: "agcl", target: "a", dice: 1, case: "y" },
  ]);
  assert.equal(diceRows(m, "agcl", { presentOnly: false }).length, 4);
});

Deno.test("stagesHtml() shows the stage evidence of metrics.json, and nothing without it", async () => {
  const { stagesHtml } = await import("../../report/run_report.ts");
  const cov = {
    dice: 0.5,
    dicePresent: 0.5,
    precision: 0.6,
    recall: 0.7,
    outside: 0.1,
  };
  const scores = {
    knn: { target: 0.8, domain: 0.6, domainTarget: 0.5 },
    silhouette: { target: 0.1, domain: 0, domainTarget: -0.1 },
  };
  const metrics = {
    targets: { liver: { dice: 0.6, dicePresent: 0.6, hd95: 1, assd: 1 } },
    mean: { dice: 0.6, dicePresent: 0.6, hd95: 1, assd: 1 },
    cases: [],
    counts: {},
    stages: {
      stage1: { targets: { liver: cov }, mean: cov },
      attention: {
        source: "crossfit",
        margin: 4,
        train: { targets: { liver: cov }, mean: cov },
        evaluation: { targets: { liver: cov }, mean: cov },
      },
      stage2: {
        health: {
          method: "agcl",
          steps: 400,
          initialLoss: 2.6,
          finalLoss: 2.4,
          chance: 2.708,
          positiveFraction: 1,
        },
        probe: { n: 64, input: scores, encoder: scores, projection: scores },
      },
    },
  };
  const html = stagesHtml(metrics);
  assert.match(
    html,
    /Training attention: <b>crossfit<\/b>; fusion may label up to 4 pixels/,
  );
  assert.match(
    html,
    /<td>liver<\/td><td>0\.500<\/td><td>0\.600<\/td><td>\+0\.100<\/td>/,
  );
  assert.match(
    html,
    /400 steps, loss 2\.600 → 2\.400 against a chance level of 2\.708/,
  );
  assert.match(html, /Separation of 64 held-out patches/);
  assert.equal(stagesHtml({ ...metrics, stages: undefined } as never), "");
});

Deno.test("writeRunReport shows the run's setup, environment, timings, per-case table and config", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeSyntheticRun(dir);
    const r = await writeRunReport(dir, { overlays: [] });
    const html = await Deno.readTextFile(r.index);
    for (
      const s of [
        "<h2>Run</h2>",
        "wasm (fastest available)",
        "AGCL for Deno 0.1.0, Deno 2.9.6, TensorFlow.js 4.22.0",
        "0123456789ab",
        "<th>pretrain</th>",
        "3:20", // pretrain 200 s
        "6:04", // the total
        "<h2>Per case</h2>",
        "<td>case_4</td>",
        "<h2>Validation</h2>",
        "stage 1 on 4 slice(s) of the evaluation cases, stage 3 on 6 patch(es)",
        "<h2>Config</h2>",
        "&quot;domains&quot;",
        "ASSD, average symmetric surface distance (mm)",
      ]
    ) assert.ok(html.includes(s), s);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
