/** A synthetic PASCAL VOC folder for the pipeline tests (train and predict). */
import { join } from "node:path";
import { encode as encodeJpeg } from "jpeg-js";
import { encode as encodePng } from "fast-png";
import { vocColor } from "../../data/mod.ts";

/** Image width of the fixture. */
export const W = 40;
/** Image height of the fixture. */
export const H = 32;

// A VOC folder: a bright disc of class 8 ("cat") with a 255 border and a
// dark square of class 12 ("dog") on a noisy background.
export async function vocFixture(root: string): Promise<void> {
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
