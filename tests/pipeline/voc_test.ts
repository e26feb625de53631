import assert from "node:assert/strict";
import { join } from "node:path";
import { parseTrainArgs } from "../../cli/train.ts";
import { vocFixture } from "./_voc_fixture.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const MICRO =
  new URL("../testdata/micro_config.json", import.meta.url).pathname;

Deno.test({
  name:
    "deno task train on a PASCAL VOC folder: RGB + attention, T = 0.07, mIoU beside Dice",
  sanitizeResources: false,
  async fn() {
    const root = await Deno.makeTempDir();
    const out = await Deno.makeTempDir();
    try {
      await vocFixture(root);
      const inv = await parseTrainArgs(["--data", root]);
      assert.equal(inv.config.pretrain.temperature, 0.07);
      assert.equal(
        (await parseTrainArgs(["--data", root, "--temperature", "0.2"])).config
          .pretrain.temperature,
        0.2,
      );
      const r = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "cli/train.ts",
          "--data",
          root,
          "--config",
          MICRO,
          "--out",
          out,
          "--backend",
          "wasm",
          "--quiet",
        ],
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1" },
      }).output();
      const stdout = new TextDecoder().decode(r.stdout);
      assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
      assert.match(stdout, /mIoU \(VOC, 255 ignored\): \d\.\d{3}/);
      const config = JSON.parse(
        await Deno.readTextFile(join(out, "config.json")),
      );
      assert.deepEqual(config.labels, { 8: "cat", 12: "dog" });
      assert.equal(config.pretrain.temperature, 0.07);
      const metrics = JSON.parse(
        await Deno.readTextFile(join(out, "metrics.json")),
      );
      assert.deepEqual(Object.keys(metrics.targets), ["cat", "dog"]);
      assert.ok(metrics.miou >= 0 && metrics.miou <= 1);
      assert.equal(metrics.cases.length, 2);
      // The encoder saw 4 input channels: RGB + attention.
      const bytes = await Deno.readFile(
        join(out, "checkpoints", "segment-epoch2.safetensors"),
      );
      const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
      const header = JSON.parse(
        new TextDecoder().decode(bytes.subarray(8, 8 + n)),
      );
      const conv1 = header["backbone.conv1.weight"].shape; // OIHW
      assert.equal(conv1[1], 4);
      await Deno.stat(join(out, "predictions", "b1.nii.gz"));
    } finally {
      await Deno.remove(root, { recursive: true });
      await Deno.remove(out, { recursive: true });
    }
  },
});
