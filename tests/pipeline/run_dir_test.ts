import assert from "node:assert/strict";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { selectBackend } from "../../backends/mod.ts";
import {
  type LastPointer,
  RunDir,
  writeFileAtomic,
} from "../../pipeline/mod.ts";
import { saveStageCheckpoint } from "../../pipeline/_stage_runner.ts";
import { encodeSafetensors } from "../../models/mod.ts";
import { sha256Hex } from "../../data/_io.ts";

await selectBackend("cpu", { purpose: "train" });

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

Deno.test("RunDir.readLog() drops a cut last line and names the file and line of a bad earlier one", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const run = new RunDir(dir);
    const entry = { stage: "coarse", epoch: 0, step: 1, loss: 1, lr: 1, ms: 1 };
    await Deno.writeTextFile(
      run.logPath,
      `${JSON.stringify(entry)}\n\n${
        JSON.stringify({ ...entry, step: 2 })
      }\n{"st`,
    );
    assert.deepEqual((await run.readLog()).map((e) => e.step), [1, 2]);
    await Deno.writeTextFile(
      run.logPath,
      `${JSON.stringify(entry)}\n{"st\n${JSON.stringify(entry)}\n`,
    );
    await assert.rejects(
      () => run.readLog(),
      (e: Error) =>
        e.message.startsWith(
          `Cannot read '${run.logPath}' as line 2 is not JSON`,
        ),
    );
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

// Writes real checkpoints: coarse finished at epoch 1, pretrain at epochs
// 1 and 2 (unfinished), and `last.json` naming pretrain-epoch2.
async function threeCheckpoints(run: RunDir): Promise<LastPointer> {
  const w = tf.variable(tf.tensor1d([1, 2, 3]));
  try {
    const save = (
      name: string,
      meta: Parameters<typeof saveStageCheckpoint>[4],
    ) => saveStageCheckpoint(run, name, { w }, null, meta);
    await save("coarse-epoch1", {
      stage: "coarse",
      epoch: 1,
      step: 2,
      extra: null,
      stageDone: true,
    });
    await save("pretrain-epoch1", {
      stage: "pretrain",
      epoch: 1,
      step: 3,
      extra: null,
      stageDone: false,
    });
    await save("pretrain-epoch2", {
      stage: "pretrain",
      epoch: 2,
      step: 6,
      extra: null,
      stageDone: false,
    });
  } finally {
    w.dispose();
  }
  const pointer: LastPointer = {
    stage: "pretrain",
    epoch: 2,
    step: 6,
    name: "pretrain-epoch2",
    stageDone: false,
    finished: { coarse: "coarse-epoch1" },
  };
  await run.setLast(pointer);
  return pointer;
}

async function withRun(fn: (run: RunDir) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    const run = new RunDir(dir);
    await run.init();
    await fn(run);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("RunDir.readLast() returns undefined for a run without checkpoints and a sound pointer as is", async () => {
  await withRun(async (run) => {
    const warnings: string[] = [];
    const onWarning = (m: string) => warnings.push(m);
    assert.equal(await run.readLast({ onWarning }), undefined);
    const pointer = await threeCheckpoints(run);
    assert.deepEqual(await run.readLast({ onWarning }), pointer);
    assert.deepEqual(warnings, []);
  });
});

Deno.test("RunDir.readLast() falls back to the newest complete checkpoint when last.json is damaged, with a warning naming both", async () => {
  const cases: [string, (run: RunDir) => Promise<void>, string, RegExp][] = [
    [
      "cut",
      (run) =>
        Deno.writeTextFile(
          join(run.checkpointDir, "last.json"),
          '{"stage": "pre',
        ),
      "pretrain-epoch2",
      /last\.json is not valid JSON/,
    ],
    [
      "missing",
      (run) => Deno.remove(join(run.checkpointDir, "last.json")),
      "pretrain-epoch2",
      /last\.json is missing/,
    ],
    [
      "not a pointer",
      (run) => Deno.writeTextFile(join(run.checkpointDir, "last.json"), "[]"),
      "pretrain-epoch2",
      /last\.json lacks a valid stage, step, name or finished/,
    ],
    [
      "dangling",
      (run) =>
        run.setLast({
          stage: "pretrain",
          epoch: 3,
          step: 9,
          name: "pretrain-epoch3",
          stageDone: false,
          finished: { coarse: "coarse-epoch1" },
        }),
      "pretrain-epoch2",
      /last\.json names checkpoint 'pretrain-epoch3', which cannot be used: Cannot read checkpoint '.*pretrain-epoch3\.json': it does not exist/,
    ],
    [
      "same-size corruption",
      async (run) => {
        const path = run.checkpointBase("pretrain-epoch2") + ".safetensors";
        const bytes = await Deno.readFile(path);
        bytes.fill(0xff, bytes.length - 12);
        await Deno.writeFile(path, bytes);
      },
      "pretrain-epoch1",
      /last\.json names checkpoint 'pretrain-epoch2', which cannot be used: Cannot read checkpoint '.*pretrain-epoch2\.safetensors' as its SHA-256 is [0-9a-f]{64}, expected [0-9a-f]{64} \(the file is corrupt\)/,
    ],
  ];
  for (const [what, damage, want, message] of cases) {
    await withRun(async (run) => {
      await threeCheckpoints(run);
      await damage(run);
      const warnings: string[] = [];
      const got = await run.readLast({ onWarning: (m) => warnings.push(m) });
      assert.equal(got?.name, want, what);
      assert.equal(got?.stage, "pretrain", what);
      assert.equal(got?.stageDone, false, what);
      assert.deepEqual(got?.finished, { coarse: "coarse-epoch1" }, what);
      assert.equal(warnings.length, 1, what);
      assert.match(warnings[0]!, message, what);
      assert.match(
        warnings[0]!,
        new RegExp(
          `resuming from checkpoint '${want}' \\(pretrain, step \\d+\\), the newest complete one found in `,
        ),
        what,
      );
    });
  }
});

Deno.test("RunDir.readLast() rebuilds finished stages from checkpoints without stageDone", async () => {
  await withRun(async (run) => {
    await threeCheckpoints(run);
    for (
      const name of ["coarse-epoch1", "pretrain-epoch1", "pretrain-epoch2"]
    ) {
      const p = run.checkpointBase(name) + ".json";
      const meta = JSON.parse(await Deno.readTextFile(p));
      delete meta.stageDone;
      await Deno.writeTextFile(p, JSON.stringify(meta));
    }
    await Deno.writeTextFile(join(run.checkpointDir, "last.json"), "");
    const got = await run.readLast({ onWarning: () => {} });
    assert.deepEqual(got, {
      stage: "pretrain",
      epoch: 2,
      step: 6,
      name: "pretrain-epoch2",
      stageDone: false,
      finished: { coarse: "coarse-epoch1" },
    });
  });
});

Deno.test("RunDir.readLast() refuses a fallback whose earlier stage lost its final checkpoint", async () => {
  await withRun(async (run) => {
    await threeCheckpoints(run);
    await Deno.remove(run.checkpointBase("coarse-epoch1") + ".safetensors");
    await Deno.writeTextFile(join(run.checkpointDir, "last.json"), "{");
    await assert.rejects(run.readLast({ onWarning: () => {} }), {
      name: "Error",
      message: new RegExp(
        `^Cannot resume the run in .* as .*last\\.json is not valid JSON \\(.*\\), and none of the 3 checkpoint\\(s\\) in .*checkpoints is complete; move the run directory aside to start over$`,
      ),
    });
  });
});

Deno.test("RunDir.readLast() stops with an error naming last.json when nothing complete is left", async () => {
  await withRun(async (run) => {
    await Deno.writeTextFile(
      join(run.checkpointDir, "last.json"),
      '{"stage": "pre',
    );
    await assert.rejects(run.readLast(), {
      name: "Error",
      message:
        /^Cannot resume the run in .* as .*checkpoints\/last\.json is not valid JSON \(.*\), and none of the 0 checkpoint\(s\) in .*checkpoints is complete; move the run directory aside to start over$/,
    });
  });
});

Deno.test("RunDir.readLast() refuses a run of an earlier version (var/… training-state checkpoints), naming the file and why", async () => {
  await withRun(async (run) => {
    // What earlier versions wrote: `var/` and `opt/` names, tfjs layouts,
    // and a sidecar without `format`.
    const bytes = encodeSafetensors({
      "var/coarse.w": { dtype: "F32", shape: [2], data: Float32Array.of(1, 2) },
    }, { stage: "coarse" });
    const base = run.checkpointBase("coarse-epoch1");
    await Deno.writeFile(`${base}.safetensors`, bytes);
    await Deno.writeTextFile(
      `${base}.json`,
      JSON.stringify({
        stage: "coarse",
        epoch: 1,
        step: 2,
        optimizerStep: 2,
        extra: null,
        bytes: bytes.length,
        sha256: await sha256Hex(bytes),
        stageDone: true,
      }),
    );
    await run.setLast({
      stage: "coarse",
      epoch: 1,
      step: 2,
      name: "coarse-epoch1",
      stageDone: true,
      finished: { coarse: "coarse-epoch1" },
    });
    await assert.rejects(run.readLast({ onWarning: () => {} }), {
      name: "Error",
      message: new RegExp(
        `names checkpoint 'coarse-epoch1', which cannot be used: Cannot read checkpoint '${base}\\.json' as it is in the training-state format of earlier versions \\(var/… names, tfjs layouts, optimiser slots in the tensor file\\), which this version no longer reads: train the run again in a new directory, and none of the 1 checkpoint\\(s\\)`,
        "u",
      ),
    });
  });
});

Deno.test("RunDir.init() removes stale temporary files of interrupted writes", async () => {
  await withRun(async (run) => {
    const stale = [
      join(run.checkpointDir, "coarse-epoch1.safetensors.tmp-4242-0badc0de"),
      join(run.root, "metrics.json.tmp-17-00000001"),
      join(run.predictionDir, "a.nii.gz.tmp-9-abcdef01"),
    ];
    for (const p of stale) await Deno.writeTextFile(p, "partial");
    const keep = join(run.root, "notes.tmp-x");
    await Deno.writeTextFile(keep, "mine");
    const removed = await run.init();
    assert.deepEqual(removed.sort(), [...stale].sort());
    for (const p of stale) {
      await assert.rejects(Deno.stat(p), Deno.errors.NotFound);
    }
    await Deno.stat(keep);
  });
});

Deno.test("writeFileAtomic() removes its temporary file on failure and names the target", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // Renaming a file over a non-empty folder fails after the data is written.
    const target = join(dir, "out.json");
    await Deno.mkdir(join(target, "inside"), { recursive: true });
    await assert.rejects(writeFileAtomic(target, "x"), {
      name: "Error",
      message: new RegExp(`^Cannot write '${target}': `),
    });
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), [
      "out.json",
    ]);
    // A parent that is a file: nothing can be created.
    const file = join(dir, "plain");
    await Deno.writeTextFile(file, "");
    await assert.rejects(writeFileAtomic(join(file, "x.json"), "x"), {
      message: new RegExp(`^Cannot write '${join(file, "x.json")}': `),
    });
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
