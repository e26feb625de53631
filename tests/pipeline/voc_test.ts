import assert from "node:assert/strict";
import { join } from "node:path";
import { encode as encodeJpeg } from "jpeg-js";
import { encode as encodePng } from "fast-png";
import { vocColor } from "../../data/mod.ts";
import { parseTrainArgs } from "../../cli/train.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const MICRO =
  new URL("../testdata/micro_config.json", import.meta.url).pathname;
const W = 40, H = 32;

// A VOC folder: a bright disc of class 8 ("cat") with a 255 border and a
// dark square of class 12 ("dog") on a noisy background.
async function vocFixture(root: string): Promise<void> {
  for (
    const d of ["JPEGImages", "SegmentationClass", "ImageSets/Segmentation"]
  ) {
    await Deno.mkdir(join(root, d), { recursive: true });
  }
  const palette = Array.from({ length: 256 }, (_, i) => vocColor(i));
  const ids = ["a1", "a2", "a3", "a4", "b1", "b2"];
  for (const [k, id] of ids.entries()) {
    const rgb = new Uint8Array(W * H * 4);
    const mask = new Uint8Array(W * H);
    const cx = 10 + k, cy = 12;
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const i = y * W + x;
        const d2 = (x - cx) ** 2 + (y - cy) ** 2;
        let v = 100 + ((i * 37 + k) % 30);
        if (d2 < 36) [mask[i], v] = [8, 230];
        else if (d2 < 49) mask[i] = 255;
        if (x >= 24 && x < 34 && y >= 16 && y < 26) [mask[i], v] = [12, 20];
        rgb.set([v, v, 255 - v, 255], 4 * i);
      }
    }
    const jpg = encodeJpeg({ width: W, height: H, data: rgb }, 95);
    await Deno.writeFile(
      join(root, "JPEGImages", `${id}.jpg`),
      new Uint8Array(jpg.data),
    );
    await Deno.writeFile(
      join(root, "SegmentationClass", `${id}.png`),
      encodePng({
        width: W,
        height: H,
        data: mask,
        channels: 1,
        depth: 8,
        palette,
      }),
    );
  }
  await Deno.writeTextFile(
    join(root, "ImageSets/Segmentation/train.txt"),
    "a1\na2\na3\na4\n",
  );
  await Deno.writeTextFile(
    join(root, "ImageSets/Segmentation/val.txt"),
    "b1\nb2\n",
  );
}

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
      const conv1 = header["var/segment.backbone.conv1.weight"].shape; // HWIO
      assert.equal(conv1[2], 4);
      await Deno.stat(join(out, "predictions", "b1.nii.gz"));
    } finally {
      await Deno.remove(root, { recursive: true });
      await Deno.remove(out, { recursive: true });
    }
  },
});
