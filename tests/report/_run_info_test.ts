import assert from "node:assert/strict";
import {
  caseTableHtml,
  commitText,
  dataText,
  duration,
  modelText,
} from "../../report/_run_info.ts";
import { evaluateLabelMaps, summarizeMetrics } from "../../metrics/evaluate.ts";

Deno.test("duration(), commitText() and dataText() format a run's records", () => {
  assert.equal(duration(12.34), "12.3 s");
  assert.equal(duration(465), "7:45");
  assert.equal(duration(undefined), "–");
  assert.equal(commitText(undefined), "–");
  assert.equal(commitText({ commit: null }), "none (not a git checkout)");
  assert.equal(
    commitText({ commit: "0123456789abcdef0123", dirty: true }),
    "0123456789ab (dirty)",
  );
  assert.equal(
    dataText({ dataPath: "data/p/dataset.json" }),
    "data/p/dataset.json (in the run directory)",
  );
  assert.equal(dataText({ dataPath: "/d/dataset.json" }), "/d/dataset.json");
  assert.equal(dataText({ data: "voc" }), "voc");
  assert.equal(modelText({}), "–");
  assert.equal(
    modelText({
      model: { backbone: 18, widthMultiplier: 0.25 },
      pretrain: { method: "agcl" },
      patchSize: 64,
      budgets: { stages: { coarse: { epochs: 10 } } },
      segment: { epochs: 3 },
    }),
    "ResNet-18 (width ×0.25), pre-training agcl, patch 64 px; epochs: coarse 10, pretrain –, segment 3",
  );
});

Deno.test("caseTableHtml() has a row per case, greys targets absent from the truth and means the rest", () => {
  const labels = { 1: "a", 2: "b" };
  const m = summarizeMetrics([{
    image: "/d/c1.nii.gz",
    metrics: evaluateLabelMaps([1, 0, 0, 0], [1, 1, 0, 0], {
      dims: [4, 1, 1],
      labels,
    }),
  }]);
  const html = caseTableHtml(m, { csv: "../metrics.csv" });
  // a: 2·1/(1+2); b absent from both (Dice 1, grey, left out of the mean).
  assert.match(html, /<tr><td>c1<\/td><td style="[^"]*">0\.667<\/td>/);
  assert.match(html, /<td class="absent" title="both empty">1\.000<\/td>/);
  assert.match(html, /<td><b>0\.667<\/b><\/td><\/tr>/);
  assert.match(html, /<a href="\.\.\/metrics\.csv">metrics\.csv<\/a>/);
});
