import assert from "node:assert/strict";
import { type DenoRun, runDeno } from "./_run.ts";
import { basename, join } from "node:path";
import { parseTrainArgs } from "../../cli/train.ts";
import { PRESETS } from "../../pipeline/config.ts";
import { readNifti } from "../../data/mod.ts";

const MICRO =
  new URL("../testdata/micro_config.json", import.meta.url).pathname;
const ROOT = new URL("../../", import.meta.url).pathname;

function deno(args: string[]): Promise<DenoRun> {
  return runDeno(args, { cwd: ROOT, env: { NO_COLOR: "1" } });
}

Deno.test("parseTrainArgs() with no flags gives the tiny preset", async () => {
  const inv = await parseTrainArgs([]);
  assert.deepEqual(inv.config, PRESETS.tiny);
  assert.equal(inv.backend, "auto");
  assert.equal(inv.resume, false);
});

Deno.test("parseTrainArgs() applies preset, --config, --set, then named flags", async () => {
  const inv = await parseTrainArgs([
    "--preset",
    "paper-r50",
    "--config",
    MICRO,
    "--set",
    "pretrain.lr=0.01",
    "--pretrain",
    "supcon",
    "--backbone",
    "resnet101",
    "--epochs",
    "3",
    "--temperature",
    "0.07",
    "--patch-size",
    "64",
    "--seed",
    "9",
    "--coarse",
    "/masks",
    "--data",
    "d.json",
  ]);
  const c = inv.config;
  assert.equal(c.pretrain.method, "supcon");
  assert.equal(c.pretrain.lr, 0.01);
  assert.equal(c.model.backbone, 101);
  assert.equal(c.model.widthMultiplier, 0.0625); // from --config
  assert.equal(c.model.stem, "imagenet"); // from the preset
  assert.deepEqual([c.coarse.epochs, c.pretrain.epochs, c.segment.epochs], [
    3,
    3,
    3,
  ]);
  assert.equal(c.pretrain.temperature, 0.07);
  assert.equal(c.patchSize, 64);
  assert.equal(c.seed, 9);
  assert.equal(c.coarse.masks, "/masks");
  assert.equal(c.data, "d.json");
});

Deno.test("parseTrainArgs() --set intensity.window=-1000,1000 and friends set the intensity", async () => {
  const set = async (...sets: string[]) =>
    (await parseTrainArgs(sets.flatMap((s) => ["--set", s]))).config
      .intensity;
  assert.deepEqual(await set("intensity.window=-1000,1000"), {
    mode: "auto",
    window: [-1000, 1000],
    percentiles: [1, 99],
  });
  assert.deepEqual(
    await set(
      "intensity.mode=percentile",
      "intensity.percentiles=0.5, 99.5",
    ),
    { mode: "percentile", window: [-175, 250], percentiles: [0.5, 99.5] },
  );
  assert.equal((await set("intensity.window=bone")).window, "bone");
  assert.equal((await set("intensity=window")).mode, "window");
  await assert.rejects(set("intensity.window=1000,-1000"), {
    name: "UsageError",
    message:
      /^train: Invalid config field 'intensity\.window': expected \[min, max\]/,
  });
  await assert.rejects(set("intensity.min=-1000"), {
    name: "UsageError",
    message: /^train: Unknown config field 'intensity\.min'/,
  });
});

Deno.test("parseTrainArgs() errors list the valid flags, fields and presets", async () => {
  await assert.rejects(parseTrainArgs(["--epoch", "3"]), {
    name: "UsageError",
    message: /valid flags: --data, --preset, --config/,
  });
  await assert.rejects(parseTrainArgs(["--set", "pretrain.lrate=1"]), {
    message:
      /Unknown config field 'pretrain.lrate': valid fields of 'pretrain' are 'method'/,
  });
  await assert.rejects(parseTrainArgs(["--preset", "huge"]), {
    message:
      /unknown preset "huge": expected one of "tiny", "paper-r50", "paper-r101"/,
  });
  await assert.rejects(parseTrainArgs(["--pretrain", "simclr"]), {
    message: /'pretrain.method': expected one of "agcl"/,
  });
  await assert.rejects(parseTrainArgs(["--epochs", "two"]), {
    message: /--epochs must be an integer/,
  });
  await assert.rejects(parseTrainArgs(["--epochs", "-1"]), {
    name: "UsageError",
    message:
      "train: the value of --epochs starts with a dash ('-1'): write --epochs=-1 to pass it",
  });
  await assert.rejects(parseTrainArgs(["--backbone", "152"]), {
    message: /--backbone must be one of 18, 34, 50, 101/,
  });
  await assert.rejects(parseTrainArgs(["--config", "/nonexistent.json"]), {
    message: /Cannot read config file \/nonexistent.json/,
  });
});

Deno.test("parseTrainArgs() --minutes sets budget.minutes; epochs stay auto unless set", async () => {
  const inv = await parseTrainArgs(["--minutes", "2.5"]);
  assert.deepEqual(inv.config.budget, { minutes: 2.5, fill: false });
  assert.deepEqual(
    [
      inv.config.coarse.epochs,
      inv.config.pretrain.epochs,
      inv.config.segment.epochs,
    ],
    ["auto", "auto", "auto"],
  );
  const set = await parseTrainArgs([
    "--set",
    "budget.minutes=30",
    "--set",
    "budget.fill=true",
    "--set",
    "coarse.epochs=12",
  ]);
  assert.deepEqual(set.config.budget, { minutes: 30, fill: true });
  assert.equal(set.config.coarse.epochs, 12);
  const back = await parseTrainArgs(["--epochs", "auto", "--config", MICRO]);
  assert.equal(back.config.segment.epochs, "auto");
});

Deno.test("parseTrainArgs() refuses a bad --minutes with a clear error", async () => {
  for (
    const [args, message] of [
      [
        ["--minutes", "ten"],
        'train: --minutes must be a number: current value is "ten"',
      ],
      [
        ["--minutes", "0"],
        'train: --minutes must be > 0: current value is "0"',
      ],
      [
        ["--minutes", ""],
        'train: --minutes must be a number: current value is ""',
      ],
      [["--minutes=-3"], 'train: --minutes must be > 0: current value is "-3"'],
      [
        ["--minutes", "5", "--resume", "--out", "x"],
        "train: --minutes cannot change a resumed run: it keeps the budget recorded in its config.json",
      ],
      [
        ["--set", "budget.minutes=0"],
        "train: Invalid config field 'budget.minutes': expected > 0: current value is 0",
      ],
      [
        ["--set", "coarse.epochs=many"],
        `train: Invalid config field 'coarse.epochs': expected an integer >= 0 or "auto": current value is "many"`,
      ],
      [
        ["--set", "budget.fill=yes"],
        "train: Invalid config field 'budget.fill': expected a boolean",
      ],
    ] as const
  ) {
    await assert.rejects(parseTrainArgs([...args]), {
      name: "UsageError",
      message,
    });
  }
});

Deno.test("deno task train: a bad flag is one line on stderr and exit code 2", async () => {
  const r = await deno(["run", "-A", "cli/train.ts", "--nope"]);
  assert.equal(r.code, 2);
  assert.equal(r.stderr.trim().split("\n").length, 1);
  assert.match(r.stderr, /^error: train: .*valid flags: --data/);
});

Deno.test("deno task train: a missing dataset is one clear line and exit code 1", async () => {
  const out = await Deno.makeTempDir();
  try {
    const r = await deno([
      "run",
      "-A",
      "cli/train.ts",
      "--data",
      "/nonexistent/dataset.json",
      "--out",
      out,
      "--quiet",
      "--backend",
      "cpu",
    ]);
    assert.equal(r.code, 1);
    const lines = r.stderr.trim().split("\n");
    assert.match(
      lines[lines.length - 1]!,
      /^error: .*\/nonexistent\/dataset.json/,
    );
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test({
  name: "deno task train end to end on a micro phantom, then deno task predict",
  sanitizeResources: false,
  async fn() {
    const out = await Deno.makeTempDir();
    try {
      const r = await deno([
        "run",
        "-A",
        "cli/train.ts",
        "--config",
        MICRO,
        "--out",
        out,
        "--backend",
        "cpu",
        "--seed",
        "1",
      ]);
      assert.equal(r.code, 0, r.stderr);
      // The merged config is printed and saved; the Dice table is printed.
      assert.match(r.stdout, /config: \{/);
      assert.match(
        r.stdout,
        /target\s+dice\s+dicePresent\s+present\s+fp\s+hd95\s+assd/,
      );
      assert.match(r.stdout, /\nmean\s+\d\.\d{3}/);
      // Progress goes to stderr, plain (not a TTY), with an ETA.
      assert.match(r.stderr, /pretrain \d+\/4 \[[#-]+\]\s+\d+% \S+ eta \S+/);
      const config = JSON.parse(
        await Deno.readTextFile(join(out, "config.json")),
      );
      assert.equal(config.split.source, "validation"); // the phantom's last quarter
      assert.equal(config.split.evaluation.length, 1);
      assert.ok(Object.keys(config.labels).length >= 8);
      const log = (await Deno.readTextFile(join(out, "log.jsonl"))).trim()
        .split("\n").map((l) => JSON.parse(l));
      assert.deepEqual([...new Set(log.map((e) => e.stage))], [
        "coarse",
        "pretrain",
        "segment",
      ]);
      for (const e of log.filter((e) => !e.kind)) {
        assert.deepEqual(Object.keys(e).sort(), [
          "epoch",
          "loss",
          "lr",
          "ms",
          "stage",
          "step",
        ]);
        assert.ok(Number.isFinite(e.loss));
      }
      // After each epoch of stages 1 and 3, a validation line.
      const checks = log.filter((e) => e.kind === "validation");
      for (const stage of ["coarse", "segment"]) {
        const own = checks.filter((e) => e.stage === stage);
        const epochs = new Set(
          log.filter((e) => e.stage === stage && !e.kind).map((e) => e.epoch),
        );
        assert.deepEqual(own.map((e) => e.epoch), [...epochs], stage);
      }
      for (const e of checks) {
        assert.deepEqual(Object.keys(e).sort(), [
          "dice",
          "epoch",
          "kind",
          "ms",
          "sample",
          "stage",
          "step",
          "targets",
        ]);
        assert.ok(e.dice === null || (e.dice >= 0 && e.dice <= 1));
      }
      assert.ok(!checks.some((e) => e.stage === "pretrain"));
      const last = JSON.parse(
        await Deno.readTextFile(join(out, "checkpoints", "last.json")),
      );
      assert.equal(last.finished.segment, "segment-epoch2");
      const metrics = JSON.parse(
        await Deno.readTextFile(join(out, "metrics.json")),
      );
      for (const k of ["dice", "hd95", "assd"]) assert.ok(k in metrics.mean, k);
      assert.equal(metrics.cases.length, 1);
      for (const m of Object.values(metrics.targets) as { dice: number }[]) {
        assert.ok(m.dice >= 0 && m.dice <= 1);
      }
      const emb = JSON.parse(
        await Deno.readTextFile(join(out, "embeddings.json")),
      );
      assert.ok(emb.points.length > 0);
      assert.equal(emb.points[0].z.length, 8);
      const id = config.split.evaluation[0];
      const predPath = join(out, "predictions", `${id}.nii.gz`);
      const pred = await readNifti(predPath);
      const image = config.dataPath.replace(/dataset\.json$/, "");
      const evalEntry = metrics.cases[0].image as string;
      const img = await readNifti(evalEntry);
      assert.deepEqual(pred.dims, img.dims);
      assert.deepEqual(pred.affine, img.affine);
      assert.ok(image.length > 0);

      // deno task predict on the same image gives the same labels.
      const predOut = join(out, "again.nii.gz");
      const p = await deno([
        "run",
        "-A",
        "cli/predict.ts",
        "--model",
        out,
        "--image",
        evalEntry,
        "--out",
        predOut,
        "--backend",
        "cpu",
      ]);
      assert.equal(p.code, 0, p.stderr);
      const again = await readNifti(predOut);
      assert.deepEqual(Array.from(again.data), Array.from(pred.data));
      assert.deepEqual(again.affine, img.affine);

      // A folder: every image, one model load, a progress bar on stderr.
      const inDir = join(out, "in"), outDir = join(out, "out");
      await Deno.mkdir(inDir);
      const base = basename(evalEntry);
      await Deno.copyFile(evalEntry, join(inDir, base));
      await Deno.copyFile(evalEntry, join(inDir, `copy_${base}`));
      await Deno.writeTextFile(join(inDir, "notes.txt"), "not an image");
      const f = await deno([
        "run",
        "-A",
        "cli/predict.ts",
        "--model",
        out,
        "--image",
        inDir,
        "--out",
        outDir,
        "--backend",
        "cpu",
      ]);
      assert.equal(f.code, 0, f.stderr);
      assert.match(f.stderr, /predict 2\/2 \[#+\] 100% /);
      assert.match(f.stdout, /wrote 2 label maps to /);
      for (const name of [base, `copy_${base}`]) {
        const labels = await readNifti(join(outDir, name));
        assert.deepEqual(Array.from(labels.data), Array.from(pred.data));
      }

      // A second run into the same directory is refused; --resume of a finished run re-evaluates.
      const twice = await deno([
        "run",
        "-A",
        "cli/train.ts",
        "--config",
        MICRO,
        "--out",
        out,
        "--quiet",
        "--backend",
        "cpu",
      ]);
      assert.equal(twice.code, 1);
      assert.match(twice.stderr, /already holds one/);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});
