import assert from "node:assert/strict";
import {
  diceBoxSpec,
  embeddingSpec,
  lossCurveSpec,
  temperatureSpec,
} from "../../report/figures.ts";

Deno.test("lossCurveSpec: one panel per stage, moving average, method colours", () => {
  const entries = [1, 0.5, 0.25].map((loss, step) => ({
    stage: "segment",
    epoch: 0,
    step,
    loss,
  }));
  const spec = lossCurveSpec([...entries, {
    stage: "coarse",
    epoch: 0,
    step: 0,
    loss: NaN,
  }], {
    window: 2,
  });
  const values =
    (spec.data as { values: { smooth: number; series: string }[] }).values;
  assert.deepEqual(values.map((v) => v.smooth), [0.75, 1.75 / 3, 0.375]); // centred window
  assert.equal(values[0]!.series, "segment");
  const tagged = lossCurveSpec(entries.map((e) => ({ ...e, method: "agcl" })));
  assert.equal(
    (tagged.data as { values: { series: string }[] }).values[0]!.series,
    "agcl",
  );
  assert.throws(() => lossCurveSpec([]), {
    name: "TypeError",
    message: "Cannot compute lossCurveSpec as 'entries' has no finite loss",
  });
});

Deno.test("diceBoxSpec draws points and mean ticks, boxes only from minBox cases, and a text layer only for significance marks", () => {
  const rows = [{ method: "agcl", target: "liver", dice: 0.9 }, {
    method: "none",
    target: "liver",
    dice: 0.8,
  }];
  assert.equal((diceBoxSpec(rows).layer as unknown[]).length, 3);
  const spec = diceBoxSpec(rows, {
    marks: [{ method: "none", target: "liver", text: "*" }],
  });
  assert.equal((spec.layer as unknown[]).length, 4);
  const layers = diceBoxSpec(rows, { minBox: 3 }).layer as {
    mark: { type: string };
    transform?: { filter?: string }[];
  }[];
  assert.deepEqual(layers.map((l) => l.mark.type), [
    "boxplot",
    "point",
    "tick",
  ]);
  assert.equal(layers[0]!.transform![1]!.filter, "datum.n >= 3");
  // One method: no legend; two: a legend.
  const legendOf = (r: typeof rows) =>
    (diceBoxSpec(r).layer as { encoding: { color: { legend?: unknown } } }[])[
      1
    ]!
      .encoding.color.legend;
  assert.equal(legendOf(rows.slice(0, 1)), null);
  assert.deepEqual(legendOf(rows), { symbolOpacity: 1 });
  assert.throws(() => diceBoxSpec([]), TypeError);
});

Deno.test("embeddingSpec facets by method; temperatureSpec uses a log axis", () => {
  const p = { x: 0, y: 0, target: "a", domain: "d" };
  assert.equal(embeddingSpec([p]).facet, undefined);
  assert.ok(embeddingSpec([{ ...p, method: "agcl" }]).facet);
  assert.throws(() => embeddingSpec([]), TypeError);
  const t = temperatureSpec([{ temperature: 0.1, dice: 0.5 }]);
  assert.deepEqual(
    (t.encoding as { x: { scale: unknown } }).x.scale,
    { type: "log" },
  );
  assert.throws(() => temperatureSpec([]), TypeError);
});
