import assert from "node:assert/strict";
import { join } from "node:path";
import { runAblation } from "../../pipeline/ablation.ts";
import { assertFigure, writeSyntheticRun } from "../report/_synthetic_run.ts";

Deno.test("runAblation runs methods × backbones once, resumes unfinished runs, writes table and report", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const calls: string[] = [];
    const methods = ["none", "supcon", "agcl"];
    const runner = async (
      config: unknown,
      o: { out: string; resume: boolean },
    ) => {
      const c = config as {
        method: string;
        backbone: number;
        temperature?: number;
      };
      calls.push(
        `${o.out.slice(dir.length + 1)} ${o.resume ? "resume" : "fresh"}`,
      );
      await writeSyntheticRun(o.out, {
        seed: methods.indexOf(c.method) + 1,
        quality: 0.6 + 0.15 * methods.indexOf(c.method) + (c.temperature ?? 0),
      });
    };
    const configure = (
      r: { method: string; backbone: number; temperature?: number },
    ) => r;
    // An unfinished run (config.json only) is resumed, not restarted.
    await Deno.mkdir(join(dir, "r18-supcon"), { recursive: true });
    await Deno.writeTextFile(join(dir, "r18-supcon", "config.json"), "{}");
    const r = await runAblation({
      out: dir,
      methods,
      backbones: [18],
      configure,
      runner,
      temperatures: [0.05, 0.2],
      print: () => {},
    });
    assert.deepEqual(calls, [
      "r18-none fresh",
      "r18-supcon resume",
      "r18-agcl fresh",
      "r18-agcl-t0.05 fresh",
      "r18-agcl-t0.2 fresh",
    ]);
    assert.deepEqual(r.runs.map((x) => x.status), ["ran", "resumed", "ran"]);
    assert.equal(r.tests.length, 2 * 4); // 2 baselines × (3 targets + mean)
    assert.ok(r.tests.every((t) => t.reference === "agcl" && t.n >= 0));
    assert.equal(r.sweep.length, 2);
    const md = await Deno.readTextFile(r.files.markdown);
    assert.match(
      md,
      /^\| backbone \| method \| liver \| spleen \| kidney \| mean Dice \| dicePresent \| gain vs none \|/m,
    );
    assert.equal(md.trim().split("\n").length, 2 + 3);
    const perRun = await Deno.readTextFile(r.files.perRun);
    assert.match(
      perRun,
      /^\| backbone \| method \| liver \| spleen \| kidney \| mean \|$/m,
    );
    assert.equal(
      (await Deno.readTextFile(r.files.csv)).trim().split("\n").length,
      1 + 3 * 4,
    );
    const json = JSON.parse(await Deno.readTextFile(r.files.json));
    assert.equal(json.tests.length, 8);
    const html = await Deno.readTextFile(r.files.report);
    for (
      const f of [
        "dice_boxplot_r18.png",
        "loss_curves_r18.svg",
        "embedding_umap_r18.png",
        "temperature_sweep.png",
      ]
    ) {
      assert.ok(html.includes(f), f);
      await assertFigure(join(dir, "report", f));
    }
    // A second call runs nothing.
    calls.length = 0;
    const again = await runAblation({
      out: dir,
      methods,
      backbones: [18],
      configure,
      runner,
      print: () => {},
    });
    assert.deepEqual(calls, []);
    assert.ok(again.runs.every((x) => x.status === "skipped"));
    await assert.rejects(
      () =>
        runAblation({
          out: dir,
          methods: ["none"],
          backbones: [18],
          configure,
          runner,
        }),
      /reference method 'agcl' is not among the methods \[none\]/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runAblation repeats over seeds and shares one stage 1 per seed and backbone", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const seen: string[] = [];
    const r = await runAblation({
      out: dir,
      methods: ["none", "agcl"],
      backbones: [18],
      seeds: [0, 1],
      configure: (c) => {
        seen.push(
          `${c.seed} ${c.method} ${
            c.masks ? c.masks.slice(dir.length + 1) : "-"
          }`,
        );
        return c;
      },
      runner: async (config, o) => {
        const c = config as { method: string; seed: number };
        await writeSyntheticRun(o.out, {
          seed: c.seed + 1,
          quality: c.method === "agcl" ? 0.8 : 0.6,
        });
      },
      print: () => {},
    });
    assert.deepEqual(seen, [
      "0 none -",
      "0 agcl s0/r18-none/attention",
      "1 none -",
      "1 agcl s1/r18-none/attention",
    ]);
    assert.deepEqual(r.runs.map((x) => x.seed), [0, 0, 1, 1]);
    assert.deepEqual(r.seedTable.rows.map((x) => x.seeds), [[0, 1], [0, 1]]);
    // Per-run tests pair within a seed.
    assert.ok(r.tests.some((t) => t.backbone === "r18 s1"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
