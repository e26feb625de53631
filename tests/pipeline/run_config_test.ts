import assert from "node:assert/strict";
import { join } from "node:path";
import { PRESETS } from "../../pipeline/config.ts";
import { readRunConfig } from "../../pipeline/run_config.ts";

Deno.test("readRunConfig() drops the keys a run adds and reads an older bare intensity mode", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const saved = {
      ...PRESETS.tiny,
      intensity: "window", // as runs before intensity.window wrote it
      dataPath: "/data/dataset.json",
      labels: { 1: "liver" },
      intensityResolved: "window",
    };
    await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify(saved));
    const r = await readRunConfig(dir);
    assert.deepEqual(r.config, {
      ...PRESETS.tiny,
      intensity: { mode: "window", window: [-175, 250], percentiles: [1, 99] },
    });
    assert.deepEqual(r.saved, saved);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readRunConfig() reads a run from before model.lowLevelSource as a layer1 skip", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { lowLevelSource: _, ...model } = PRESETS.tiny.model;
    const saved = { ...PRESETS.tiny, model };
    await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify(saved));
    const r = await readRunConfig(dir);
    assert.equal(r.config.model.lowLevelSource, "layer1");
    assert.equal("lowLevelSource" in (r.saved.model as object), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readRunConfig() reads a run from before coarse.tta, coarse.context, coarse.downsample and coarse.elastic as predicting from one full-size slice without the test-time flip, trained without a warp", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { tta: _, context: _c, downsample: _d, elastic: _e, ...coarse } =
      PRESETS.tiny.coarse;
    const saved = { ...PRESETS.tiny, coarse, coarseFlipResolved: true };
    await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify(saved));
    const r = await readRunConfig(dir);
    assert.equal(r.config.coarse.tta, "none");
    assert.equal(r.config.coarse.context, 0);
    assert.equal(r.config.coarse.downsample, 1);
    assert.equal(r.config.coarse.elastic, 0);
    assert.equal("tta" in (r.saved.coarse as object), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readRunConfig() reads a run from before pretrain.flip, segment.schedule and segment.head as mirroring every view with a constant stage-3 lr and a two-class decoder", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { flip: _, ...pretrain } = PRESETS.tiny.pretrain;
    const { schedule: __, head: ___, ...segment } =
      PRESETS["paper-r50"].segment;
    const saved = { ...PRESETS.tiny, pretrain, segment };
    await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify(saved));
    const r = await readRunConfig(dir);
    assert.equal(r.config.pretrain.flip, "horizontal");
    assert.equal(r.config.segment.schedule, "constant");
    assert.equal(r.config.segment.head, "binary");
    assert.equal("flip" in (r.saved.pretrain as object), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readRunConfig() names the file it cannot read, and the field it rejects", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(readRunConfig(dir), {
      message: new RegExp(
        `^Cannot read run config ${join(dir, "config.json")}`,
      ),
    });
    await Deno.writeTextFile(
      join(dir, "config.json"),
      JSON.stringify({
        ...PRESETS.tiny,
        intensity: { ...PRESETS.tiny.intensity, window: [1, 1] },
      }),
    );
    await assert.rejects(readRunConfig(dir), {
      name: "RangeError",
      message: /^Invalid config field 'intensity\.window'/,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
