import assert from "node:assert/strict";
import { join } from "node:path";
import {
  configDifferences,
  runLabels,
  writeCompareReport,
} from "../../report/compare_report.ts";
import { assertFigure, writeSyntheticRun } from "./_synthetic_run.ts";

Deno.test("writeCompareReport puts two runs side by side: setup, Dice, validation, losses, times, config differences", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const a = join(dir, "agcl"), b = join(dir, "none");
    await writeSyntheticRun(a, { seed: 1, quality: 0.9 });
    await writeSyntheticRun(b, { seed: 2, quality: 0.6 });
    // An older run's metrics.json names the ASSD msd: it still reads.
    const m = JSON.parse(await Deno.readTextFile(join(b, "metrics.json")));
    m.mean.msd = m.mean.assd;
    delete m.mean.assd;
    await Deno.writeTextFile(join(b, "metrics.json"), JSON.stringify(m));
    const out = join(dir, "cmp");
    const r = await writeCompareReport([a, b], { out });
    assert.deepEqual(r.skipped, []);
    for (
      const name of ["dice_compare", "validation_compare", "loss_compare"]
    ) {
      await assertFigure(join(out, `${name}.svg`));
      await assertFigure(join(out, `${name}.png`));
    }
    const html = await Deno.readTextFile(r.index);
    for (
      const s of [
        "<th>run</th><th>agcl</th><th>none</th>",
        "<h2>Dice per target</h2>",
        "<h2>Validation</h2>",
        "<h2>Stage wall times</h2>",
        "<h2>Config differences</h2>",
        "<td>pretrain.method</td><td>&quot;agcl&quot;</td><td>&quot;none&quot;</td>",
        "<td>seed</td><td>1</td><td>2</td>",
        "0123456789ab",
      ]
    ) assert.ok(html.includes(s), s);
    assert.ok(!html.includes("<td>labels"), "records are left out");
    // The mean ASSD of the older run is shown, not "–".
    const row = /<th>ASSD \(mm\)<\/th><td>([^<]*)<\/td><td>([^<]*)<\/td>/
      .exec(html);
    assert.ok(row && row[2] !== "–", row?.[0] ?? "no ASSD row");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runLabels() and configDifferences() name runs and list what differs; no run is refused", async () => {
  assert.deepEqual(runLabels(["x/a", "y/b/"]), ["a", "b"]);
  assert.deepEqual(runLabels(["x/a", "y/a", "z/c"]), ["x/a", "y/a", "c"]);
  assert.deepEqual(
    configDifferences([
      { a: { b: 1, c: [1, 2] }, split: { train: ["p"] } },
      { a: { b: 1, c: [1, 3] }, split: { train: ["q"] } },
      undefined,
    ]),
    [["a.b", ["1", "1", "–"]], ["a.c", ["[1,2]", "[1,3]", "–"]]],
  );
  await assert.rejects(writeCompareReport([]), TypeError);
});
