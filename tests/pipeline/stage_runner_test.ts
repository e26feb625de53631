import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { selectBackend } from "../../backends/mod.ts";
import { Prng, type PrngState } from "../../random/prng.ts";
import { createSgd } from "../../pipeline/optim.ts";
import { RunDir } from "../../pipeline/run_dir.ts";
import { sha256Hex } from "../../data/_io.ts";
import {
  loadStageCheckpoint,
  runStage,
  type StageContext,
  type StageSpec,
} from "../../pipeline/_stage_runner.ts";
import { optimizeStep } from "../../pipeline/_train_util.ts";
import { encodeSafetensors } from "../../models/mod.ts";

await selectBackend("cpu", { purpose: "train" });

// A toy stage: fit w·x ≈ 3x with random x drawn from a Prng saved in the
// checkpoint; `crashAt` throws at that step, as a kill would interrupt it.
function toyStage(crashAt = -1): { spec: StageSpec; w: tf.Variable } {
  const w = tf.variable(tf.tensor1d([0.5, -0.5]));
  const opt = createSgd({ w }, { momentum: 0.9, weightDecay: 0.01 });
  const prng = new Prng(11);
  const spec: StageSpec = {
    stage: "pretrain",
    epochs: 3,
    stepsPerEpoch: 4,
    variables: { w },
    optimizer: opt,
    getExtra: () => ({ prng: prng.getState() }),
    setExtra: (e) => prng.setState((e as { prng: PrngState }).prng),
    async step(_epoch, step) {
      if (step === crashAt) throw new Error("killed");
      const x = tf.tensor1d([prng.normal(), prng.normal()]);
      const loss = await optimizeStep(
        () => tf.tidy(() => w.mul(x).sub(x.mul(3)).square().sum() as tf.Scalar),
        { w },
        opt,
        0.05,
      );
      x.dispose();
      return { loss, lr: 0.05 };
    },
  };
  return { spec, w };
}

Deno.test("runStage() resumed after a crash reaches the same weights and log as an uninterrupted run", async () => {
  const dirA = await Deno.makeTempDir();
  const dirB = await Deno.makeTempDir();
  try {
    const a = toyStage();
    const runA = new RunDir(dirA);
    await runA.init();
    await runStage({ run: runA, progress: "quiet", finished: {} }, a.spec);

    const runB = new RunDir(dirB);
    await runB.init();
    const b1 = toyStage(6); // dies in epoch 2 after 2 logged steps of it
    await assert.rejects(
      runStage({ run: runB, progress: "quiet", finished: {} }, b1.spec),
      /killed/,
    );
    const last = await runB.readLast();
    assert.equal(last?.name, "pretrain-epoch1");
    assert.equal((await runB.readLog()).length, 6);
    const b2 = toyStage();
    const name = await runStage(
      { run: runB, progress: "quiet", finished: {} },
      b2.spec,
      last,
    );
    assert.equal(name, "pretrain-epoch3");
    assert.deepEqual(
      Array.from(await b2.w.data()),
      Array.from(await a.w.data()),
    );
    const strip = (l: { ms: number }[]) => l.map((e) => ({ ...e, ms: 0 }));
    assert.deepEqual(strip(await runB.readLog()), strip(await runA.readLog()));
    const final = await runB.readLast();
    assert.equal(final?.stageDone, true);
    assert.equal(final?.finished.pretrain, "pretrain-epoch3");
    // The saved checkpoint holds the weights (a state dict) and its
    // sidecar the optimiser's slots.
    const ck = await loadStageCheckpoint(runB, "pretrain-epoch3");
    assert.deepEqual(Object.keys(ck.file.tensors), ["w"]);
    assert.deepEqual(
      Array.from(ck.file.tensors.w!.data as Float32Array),
      Array.from(await a.w.data()),
    );
    assert.equal(ck.meta.optimizer?.step, 12);
    assert.deepEqual(Object.keys(ck.meta.optimizer?.slots ?? {}), [
      "w/momentum",
    ]);
    tf.dispose([a.w, b1.w, b2.w]);
  } finally {
    await Deno.remove(dirA, { recursive: true });
    await Deno.remove(dirB, { recursive: true });
  }
});

Deno.test("loadStageCheckpoint() refuses a truncated file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const run = new RunDir(dir);
    await run.init();
    const t = toyStage();
    t.spec.epochs = 1;
    await runStage({ run, progress: "quiet", finished: {} }, t.spec);
    const path = run.checkpointBase("pretrain-epoch1") + ".safetensors";
    const bytes = await Deno.readFile(path);
    await Deno.writeFile(path, bytes.subarray(0, bytes.length - 3));
    await assert.rejects(loadStageCheckpoint(run, "pretrain-epoch1"), {
      message: /has \d+ bytes, expected \d+/,
    });
    t.w.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadStageCheckpoint() refuses same-size corruption and non-finite values, naming the file and tensor", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const run = new RunDir(dir);
    await run.init();
    const t = toyStage();
    t.spec.epochs = 1;
    await runStage({ run, progress: "quiet", finished: {} }, t.spec);
    t.w.dispose();
    const base = run.checkpointBase("pretrain-epoch1");
    const bytes = await Deno.readFile(`${base}.safetensors`);
    const bad = bytes.slice();
    bad.fill(0xff, bad.length - 8);
    await Deno.writeFile(`${base}.safetensors`, bad);
    await assert.rejects(loadStageCheckpoint(run, "pretrain-epoch1"), {
      name: "Error",
      message:
        /^Cannot read checkpoint '.*pretrain-epoch1\.safetensors' as its SHA-256 is [0-9a-f]{64}, expected [0-9a-f]{64} \(the file is corrupt\)$/,
    });
    // A file with NaN values and matching checksums (as PyTorch would
    // write it, without our metadata): the values themselves are refused.
    const nan = encodeSafetensors({
      w: { dtype: "F32", shape: [2], data: Float32Array.of(1, NaN) },
    });
    await Deno.writeFile(`${base}.safetensors`, nan);
    const meta = JSON.parse(await Deno.readTextFile(`${base}.json`));
    meta.bytes = nan.length;
    meta.sha256 = await sha256Hex(nan);
    await Deno.writeTextFile(`${base}.json`, JSON.stringify(meta));
    await assert.rejects(loadStageCheckpoint(run, "pretrain-epoch1"), {
      name: "Error",
      message:
        /^Cannot read checkpoint '.*pretrain-epoch1\.safetensors' as tensor 'w' holds a non-finite value \(NaN at index \d+\)$/,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runStage() resumed from its stage's last epoch returns that checkpoint without training", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const run = new RunDir(dir);
    await run.init();
    const a = toyStage();
    const name = await runStage(
      { run, progress: "quiet", finished: {} },
      a.spec,
    );
    a.w.dispose();
    const b = toyStage(0); // any step run would throw
    const ctx = { run, progress: "quiet" as const, finished: {} };
    const got = await runStage(ctx, b.spec, {
      stage: "pretrain",
      epoch: 3,
      step: 12,
      name,
      stageDone: false,
      finished: {},
    });
    assert.equal(got, "pretrain-epoch3");
    assert.deepEqual(ctx.finished, { pretrain: "pretrain-epoch3" });
    b.w.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("trainOrRestore() trains a stage once, then restores it from its final checkpoint", async () => {
  const { trainOrRestore } = await import("../../pipeline/_stage_runner.ts");
  const dir = await Deno.makeTempDir();
  try {
    const run = new RunDir(dir);
    await run.init();
    const ctx: StageContext = { run, progress: "quiet", finished: {} };
    const first = toyStage();
    let builds = 0;
    const restored = await trainOrRestore(
      ctx,
      "pretrain",
      first.spec.variables,
      () => {
        builds++;
        return first.spec;
      },
    );
    assert.equal(restored, false);
    assert.equal(builds, 1);
    assert.ok(ctx.finished.pretrain, "the stage is recorded as finished");
    const trained = await first.w.data();
    // A fresh variable set is restored, not retrained.
    const second = toyStage();
    const again = await trainOrRestore(
      ctx,
      "pretrain",
      second.spec.variables,
      () => {
        builds++;
        return second.spec;
      },
    );
    assert.equal(again, true);
    assert.equal(builds, 1);
    assert.deepEqual(await second.w.data(), trained);
    tf.dispose([first.w, second.w]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("saveStageCheckpoint() writes variables and optimiser slots in PyTorch layouts; restoreCheckpoint() reads them back exactly", async () => {
  const { restoreCheckpoint, saveStageCheckpoint } = await import(
    "../../pipeline/_stage_runner.ts"
  );
  const dir = await Deno.makeTempDir();
  const prng = new Prng(3);
  const draw = (shape: number[]) =>
    tf.variable(
      tf.tensor(
        Float32Array.from(
          { length: shape.reduce((a, b) => a * b, 1) },
          () => prng.normal(),
        ),
        shape,
      ),
    );
  // A 3×3 convolution (HWIO: 2 in, 4 out), a dense [in 2, out 3], BN count.
  const vars = {
    "conv.weight": draw([3, 3, 2, 4]),
    "fc.weight": draw([2, 3]),
    "bn.num_batches_tracked": tf.variable(tf.scalar(7, "int32"), false),
  };
  const fresh = {
    "conv.weight": tf.variable(tf.zeros([3, 3, 2, 4])),
    "fc.weight": tf.variable(tf.zeros([2, 3])),
    "bn.num_batches_tracked": tf.variable(tf.scalar(0, "int32"), false),
  };
  try {
    const run = new RunDir(dir);
    await run.init();
    const slots = {
      "conv.weight/momentum": Float32Array.from(
        { length: 72 },
        (_, i) => i / 7,
      ),
      "fc.weight/momentum": Float32Array.from({ length: 6 }, (_, i) => -i),
    };
    await saveStageCheckpoint(run, "segment-epoch1", vars, {
      step: 5,
      slots,
    }, { stage: "segment", epoch: 1, step: 5, extra: { k: 1 } });
    const ck = await loadStageCheckpoint(run, "segment-epoch1");
    const t = ck.file.tensors;
    assert.deepEqual(t["conv.weight"]!.shape, [4, 2, 3, 3]); // OIHW
    assert.deepEqual(t["fc.weight"]!.shape, [3, 2]); // [out, in]
    assert.deepEqual(
      [t["bn.num_batches_tracked"]!.dtype, t["bn.num_batches_tracked"]!.data],
      ["I64", BigInt64Array.of(7n)],
    );
    // File element [o, i, y, x] is variable element [y, x, i, o].
    const hwio = await vars["conv.weight"].array() as number[][][][];
    assert.equal(
      (t["conv.weight"]!.data as Float32Array)[((3 * 2 + 1) * 3 + 2) * 3 + 0],
      hwio[2]![0]![1]![3],
    );
    assert.deepEqual(ck.meta.optimizer?.slots["conv.weight/momentum"]?.shape, [
      4,
      2,
      3,
      3,
    ]);
    assert.deepEqual(ck.meta.extra, { k: 1 });
    const opt = await restoreCheckpoint(fresh, ck);
    for (const [k, v] of Object.entries(vars)) {
      assert.deepEqual(
        await fresh[k as keyof typeof fresh].data(),
        await v.data(),
        k,
      );
    }
    assert.equal(opt?.step, 5);
    assert.deepEqual(opt?.slots, slots);
    // A damaged slot is refused, naming the checkpoint.
    const json = `${run.checkpointBase("segment-epoch1")}.json`;
    const meta = JSON.parse(await Deno.readTextFile(json));
    const slot = meta.optimizer.slots["fc.weight/momentum"];
    slot.base64 = (slot.base64[0] === "A" ? "B" : "A") + slot.base64.slice(1);
    await Deno.writeTextFile(json, JSON.stringify(meta));
    await assert.rejects(
      restoreCheckpoint(
        fresh,
        await loadStageCheckpoint(run, "segment-epoch1"),
      ),
      {
        message:
          /^Cannot read checkpoint '.*segment-epoch1\.safetensors' as the SHA-256 of its optimiser slots is [0-9a-f]{64}, expected [0-9a-f]{64} \(the file is corrupt\)$/,
      },
    );
  } finally {
    tf.dispose([...Object.values(vars), ...Object.values(fresh)]);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runStage() logs a validation line per epoch that readLog leaves out and a resume keeps", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const run = new RunDir(dir);
    await run.init();
    const withCheck = (crashAt = -1) => {
      const t = toyStage(crashAt);
      let calls = 0;
      t.spec.validate = () =>
        Promise.resolve({
          dice: 0.5 + 0.1 * calls++,
          targets: { organ: 0.5 },
          sample: "toy",
        });
      return t;
    };
    const a = withCheck(6); // dies in epoch 1, after epoch 0's check
    await assert.rejects(
      runStage({ run, progress: "quiet", finished: {} }, a.spec),
      /killed/,
    );
    assert.deepEqual(
      (await run.readValidation()).map((v) => [v.epoch, v.step, v.dice]),
      [[0, 4, 0.5]],
    );
    assert.equal((await run.readLog()).length, 6);
    const b = withCheck();
    await runStage(
      { run, progress: "quiet", finished: {} },
      b.spec,
      (await run.readLast())!,
    );
    const v = await run.readValidation();
    assert.deepEqual(v.map((e) => [e.stage, e.kind, e.epoch, e.step]), [
      ["pretrain", "validation", 0, 4],
      ["pretrain", "validation", 1, 8],
      ["pretrain", "validation", 2, 12],
    ]);
    // The resumed stage checks epochs 1 and 2 with its own validator.
    assert.deepEqual(v.map((e) => e.dice), [0.5, 0.5, 0.6]);
    assert.deepEqual(v[2]!.targets, { organ: 0.5 });
    assert.equal((await run.readLog()).length, 12);
    tf.dispose([a.w, b.w]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
