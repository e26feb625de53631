import assert from "node:assert/strict";
import { join } from "node:path";
import { makePhantom } from "../../data/mod.ts";

const MICRO =
  new URL("../testdata/micro_config.json", import.meta.url).pathname;
const ROOT = new URL("../../", import.meta.url).pathname;
// The phantom's ground truth serves as coarse masks (--coarse), so the runs
// spend their time in stages 2 and 3 on the cpu backend; three pre-training
// epochs, so a kill can land in the middle of the stage.
const PHANTOM = await Deno.makeTempDir();
const DATA = await makePhantom({
  dir: PHANTOM,
  cases: 3,
  size: [48, 48, 8],
  seed: 5,
});
const MASKS = join(DATA, "..", "labelsTr");
const ARGS = [
  "run",
  "-A",
  "cli/train.ts",
  "--config",
  MICRO,
  "--data",
  DATA,
  "--coarse",
  MASKS,
  "--set",
  "pretrain.epochs=3",
  "--backend",
  "cpu",
  "--quiet",
  "--seed",
  "3",
];

function train(out: string, extra: string[] = []): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: [...ARGS, "--out", out, ...extra],
    cwd: ROOT,
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
}

async function finish(child: Deno.ChildProcess): Promise<void> {
  const { code, stderr } = await child.output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
}

async function logSteps(
  out: string,
): Promise<{ stage: string; epoch: number }[]> {
  try {
    return (await Deno.readTextFile(join(out, "log.jsonl"))).split("\n")
      .filter((l) => l.endsWith("}")).map((l) => JSON.parse(l));
  } catch {
    return [];
  }
}

Deno.test({
  name:
    "train --resume after kill -9 mid pre-training reaches the uninterrupted run's weights",
  sanitizeResources: false,
  async fn() {
    const a = await Deno.makeTempDir();
    const b = await Deno.makeTempDir();
    try {
      await finish(train(a));

      // Kill the second run with SIGKILL once pre-training is in its second epoch.
      const child = train(b);
      const deadline = Date.now() + 120_000;
      while (Date.now() < deadline) {
        const log = await logSteps(b);
        if (log.some((e) => e.stage === "pretrain" && e.epoch >= 1)) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      child.kill("SIGKILL");
      const status = await child.status;
      assert.equal(status.signal, "SIGKILL");
      await child.stderr.cancel();
      const last = JSON.parse(
        await Deno.readTextFile(join(b, "checkpoints", "last.json")),
      );
      assert.equal(last.stage, "pretrain");
      assert.equal(last.stageDone, false);

      await finish(train(b, ["--resume"]));
      const finalA = await Deno.readFile(
        join(a, "checkpoints", "segment-epoch2.safetensors"),
      );
      const finalB = await Deno.readFile(
        join(b, "checkpoints", "segment-epoch2.safetensors"),
      );
      assert.ok(finalA.length > 1000);
      assert.deepEqual(finalB, finalA);
      // And so is the model/ it leaves for predict and PyTorch (no coarse
      // network here: this run is given its coarse masks).
      const files = (await Array.fromAsync(Deno.readDir(join(a, "model"))))
        .map((e) => e.name).sort();
      assert.deepEqual(files, [
        "config.json",
        "encoder.json",
        "encoder.safetensors",
        "segment.json",
        "segment.safetensors",
      ]);
      for (const f of files) {
        assert.deepEqual(
          await Deno.readFile(join(b, "model", f)),
          await Deno.readFile(join(a, "model", f)),
          f,
        );
      }
      const strip = (l: Record<string, unknown>[]) =>
        l.map((e) => ({ ...e, ms: 0 }));
      assert.deepEqual(strip(await logSteps(b)), strip(await logSteps(a)));
      assert.deepEqual(
        JSON.parse(await Deno.readTextFile(join(b, "metrics.json"))).mean,
        JSON.parse(await Deno.readTextFile(join(a, "metrics.json"))).mean,
      );

      // A cut last.json and a stale temp file: --resume keeps every
      // finished stage (nothing retrained, log kept) and warns.
      const lastPath = join(b, "checkpoints", "last.json");
      await Deno.writeTextFile(lastPath, '{"stage": "pre');
      const stale = join(b, "checkpoints", "x.safetensors.tmp-1-0000beef");
      await Deno.writeTextFile(stale, "partial");
      const logBefore = await Deno.readTextFile(join(b, "log.jsonl"));
      const { code, stderr } = await train(b, ["--resume"]).output();
      const err = new TextDecoder().decode(stderr);
      assert.equal(code, 0, err);
      assert.match(
        err,
        /warning: .*checkpoints\/last\.json is not valid JSON .*; resuming from checkpoint 'segment-epoch2' \(segment, step \d+\), the newest complete one found in /,
      );
      assert.equal(await Deno.readTextFile(join(b, "log.jsonl")), logBefore);
      assert.deepEqual(
        await Deno.readFile(
          join(b, "checkpoints", "segment-epoch2.safetensors"),
        ),
        finalA,
      );
      await assert.rejects(Deno.stat(stale), Deno.errors.NotFound);
    } finally {
      await Deno.remove(a, { recursive: true });
      await Deno.remove(b, { recursive: true });
      await Deno.remove(PHANTOM, { recursive: true });
    }
  },
});
