import assert from "node:assert/strict";
import { join } from "node:path";
import { RunDir, writeFileAtomic } from "../../pipeline/mod.ts";

Deno.test("writeFileAtomic() leaves no temporary file and replaces content", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const p = join(dir, "a", "b.json");
    await writeFileAtomic(p, "one");
    await writeFileAtomic(p, "two");
    assert.equal(await Deno.readTextFile(p), "two");
    assert.deepEqual([...Deno.readDirSync(join(dir, "a"))].map((e) => e.name), [
      "b.json",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("RunDir log: cut lines are dropped and truncateLog keeps earlier steps", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const run = new RunDir(dir);
    await run.init();
    for (let s = 1; s <= 3; s++) {
      await run.appendLog({
        stage: "coarse",
        epoch: 0,
        step: s,
        loss: 1,
        lr: 0.1,
        ms: 1,
      });
    }
    await run.appendLog({
      stage: "pretrain",
      epoch: 0,
      step: 1,
      loss: 1,
      lr: 0.1,
      ms: 1,
    });
    await Deno.writeTextFile(run.logPath, '{"stage": "pre', { append: true });
    assert.equal((await run.readLog()).length, 4);
    await run.truncateLog("coarse", 2);
    assert.deepEqual((await run.readLog()).map((e) => `${e.stage}${e.step}`), [
      "coarse1",
      "coarse2",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("RunDir.readLast() ignores a missing, cut or dangling pointer", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const run = new RunDir(dir);
    await run.init();
    assert.equal(await run.readLast(), undefined);
    const last = join(run.checkpointDir, "last.json");
    await Deno.writeTextFile(last, '{"stage": "coarse", "na');
    assert.equal(await run.readLast(), undefined);
    const pointer = {
      stage: "coarse" as const,
      epoch: 1,
      step: 4,
      name: "coarse-epoch1",
      stageDone: false,
      finished: {},
    };
    await run.setLast(pointer);
    assert.equal(await run.readLast(), undefined); // its files do not exist
    await Deno.writeTextFile(
      run.checkpointBase("coarse-epoch1") + ".json",
      "{}",
    );
    assert.deepEqual(await run.readLast(), pointer);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("RunDir.truncateLog() at the start of a stage drops it and every later stage", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const run = new RunDir(dir);
    await run.init();
    await run.appendLog({
      stage: "coarse",
      epoch: 0,
      step: 1,
      loss: 1,
      lr: 0.1,
      ms: 1,
    });
    await run.appendLog({
      stage: "pretrain",
      epoch: 0,
      step: 1,
      loss: 1,
      lr: 0.1,
      ms: 1,
    });
    await run.truncateLog("coarse", 0);
    assert.deepEqual(await run.readLog(), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("stageOrder() puts cross-fit folds before stage 1's final network and refuses other names", async () => {
  const { stageOrder } = await import("../../pipeline/run_dir.ts");
  const order = [
    "coarse-fold0",
    "coarse-fold1",
    "coarse",
    "pretrain",
    "segment",
  ]
    .map(stageOrder);
  assert.deepEqual([...order].sort((a, b) => a - b), order);
  assert.equal(stageOrder("coarse-foldx"), -1);
  assert.equal(stageOrder("train"), -1);
  assert.equal(stageOrder(3), -1);
});
