import assert from "node:assert/strict";
import { join } from "node:path";
import { stars, writeAblationReport } from "../../report/ablation_report.ts";
import { assertFigure, writeSyntheticRun } from "./_synthetic_run.ts";

Deno.test("stars marks p-values", () => {
  assert.deepEqual([0.0005, 0.005, 0.03, 0.2, null].map(stars), [
    "***",
    "**",
    "*",
    "",
    "",
  ]);
});

Deno.test("writeAblationReport draws per-backbone figures, the table and the tests", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const runs = [];
    for (const [i, method] of ["none", "supcon", "agcl"].entries()) {
      const runDir = join(dir, `r18-${method}`);
      await writeSyntheticRun(runDir, {
        seed: i + 1,
        quality: 0.7 + 0.1 * i,
        sweep: method === "agcl",
      });
      runs.push({ method, backbone: "r18", runDir });
    }
    const r = await writeAblationReport(join(dir, "report"), runs, {
      table: { header: ["method", "liver"], rows: [["agcl", "0.9 ± 0.01"]] },
      tests: [{
        backbone: "r18",
        target: "liver",
        method: "none",
        reference: "agcl",
        p: 0.01,
        n: 5,
      }],
      maxPoints: 60,
    });
    assert.deepEqual(r.skipped, []);
    for (
      const f of [
        "dice_boxplot_r18",
        "loss_curves_r18",
        "embedding_umap_r18",
        "temperature_sweep",
      ]
    ) {
      assert.ok(
        r.files.includes(`${f}.png`) && r.files.includes(`${f}.svg`),
        f,
      );
    }
    const html = await Deno.readTextFile(r.index);
    for (const f of r.files.filter((f) => f !== "index.html")) {
      await assertFigure(join(r.dir, f));
      assert.ok(html.includes(f), `index misses ${f}`);
    }
    assert.match(html, /0\.9 ± 0\.01/);
    assert.match(html, /<td>0\.0100<\/td><td>\*<\/td>/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
