import assert from "node:assert/strict";
import { encode as encodeJpeg } from "jpeg-js";
import { decode as decodePng, encode as encodePng } from "fast-png";
import {
  decodeLabelPng,
  loadVoc,
  readVocSample,
  VOC_CLASSES,
  VOC_IGNORE,
  vocColor,
} from "../../data/mod.ts";

const W = 24, H = 16;
const PALETTE = Array.from({ length: 256 }, (_, i) => vocColor(i));

/** A mask: background, a "cat" (8) box with a 255 border, a "dog" (12) box. */
function mask(): Uint8Array {
  const m = new Uint8Array(W * H);
  for (let y = 2; y < 10; y++) {
    for (let x = 3; x < 11; x++) {
      m[y * W + x] = y === 2 || y === 9 || x === 3 || x === 10 ? 255 : 8;
    }
  }
  for (let y = 8; y < 15; y++) for (let x = 14; x < 22; x++) m[y * W + x] = 12;
  return m;
}

function rgb(seed: number): Uint8Array {
  const out = new Uint8Array(W * H * 4);
  for (let i = 0; i < W * H; i++) {
    out[4 * i] = (i * 5 + seed) & 255;
    out[4 * i + 1] = (i * 3) & 255;
    out[4 * i + 2] = 128;
    out[4 * i + 3] = 255;
  }
  return out;
}

async function fixture(root: string): Promise<void> {
  for (
    const d of ["JPEGImages", "SegmentationClass", "ImageSets/Segmentation"]
  ) {
    await Deno.mkdir(`${root}/${d}`, { recursive: true });
  }
  const ids = ["2007_000001", "2007_000002", "2008_000003"];
  for (const [k, id] of ids.entries()) {
    const jpg = encodeJpeg({ width: W, height: H, data: rgb(k) }, 95);
    await Deno.writeFile(
      `${root}/JPEGImages/${id}.jpg`,
      new Uint8Array(jpg.data),
    );
    const png = encodePng({
      width: W,
      height: H,
      data: mask(),
      channels: 1,
      depth: 8,
      palette: PALETTE,
    });
    await Deno.writeFile(`${root}/SegmentationClass/${id}.png`, png);
  }
  await Deno.writeTextFile(
    `${root}/ImageSets/Segmentation/train.txt`,
    "2007_000001\n2007_000002\n",
  );
  await Deno.writeTextFile(
    `${root}/ImageSets/Segmentation/val.txt`,
    "2008_000003\n",
  );
}

Deno.test("loadVoc and readVocSample read the VOC layout: JPEG images and palette PNG masks with 255 = ignore", async () => {
  const root = await Deno.makeTempDir();
  try {
    await fixture(root);
    const voc = await loadVoc(root);
    assert.deepEqual(voc.splits.train, ["2007_000001", "2007_000002"]);
    assert.deepEqual(voc.splits.val, ["2008_000003"]);
    assert.equal(voc.classes.length, 21);
    assert.equal(VOC_CLASSES[8], "cat");
    const s = await readVocSample(voc, "2007_000002");
    assert.equal(s.image.width, W);
    assert.equal(s.image.height, H);
    assert.equal(s.image.data.length, W * H * 3);
    assert.deepEqual(s.label!.data, mask());
    // the fixture's masks really are palette PNGs, like VOC's
    const raw = decodePng(
      await Deno.readFile(`${root}/SegmentationClass/2007_000002.png`),
    );
    assert.equal(raw.palette?.length, 256);
    assert.ok(s.label!.data.includes(VOC_IGNORE));
    // JPEG is lossy: the decoded pixels are close to what was encoded
    const src = rgb(1);
    let err = 0;
    for (let i = 0; i < W * H; i++) {
      for (let c = 0; c < 3; c++) {
        err += Math.abs(s.image.data[3 * i + c]! - src[4 * i + c]!);
      }
    }
    assert.ok(err / (W * H * 3) < 12, `mean abs error ${err / (W * H * 3)}`);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("decodeLabelPng maps RGB and grey masks, and VOC errors name the file", async () => {
  const m = mask();
  const rgbMask = new Uint8Array(W * H * 3);
  m.forEach((v, i) => rgbMask.set(vocColor(v), 3 * i));
  assert.deepEqual(
    decodeLabelPng(
      encodePng({ width: W, height: H, data: rgbMask, channels: 3, depth: 8 }),
    ).data,
    m,
  );
  assert.deepEqual(
    decodeLabelPng(
      encodePng({ width: W, height: H, data: m, channels: 1, depth: 8 }),
    ).data,
    m,
  );
  rgbMask.set([1, 2, 3], 0);
  assert.throws(
    () =>
      decodeLabelPng(
        encodePng({
          width: W,
          height: H,
          data: rgbMask,
          channels: 3,
          depth: 8,
        }),
        "x.png",
      ),
    /x\.png as a VOC mask: pixel 0 has colour \[1, 2, 3\]/,
  );
  assert.throws(
    () => decodeLabelPng(new Uint8Array([1, 2, 3]), "y.png"),
    /Cannot decode y\.png as a PNG/,
  );

  const root = await Deno.makeTempDir();
  try {
    await assert.rejects(
      () => loadVoc(root),
      /ImageSets\/Segmentation' does not exist/,
    );
    await fixture(root);
    const voc = await loadVoc(root);
    await assert.rejects(
      () => readVocSample(voc, "nope"),
      /VOC image '.*nope\.jpg' as it does not exist/,
    );
    const bad = mask();
    bad[5] = 40;
    await Deno.writeFile(
      `${root}/SegmentationClass/2007_000001.png`,
      encodePng({
        width: W,
        height: H,
        data: bad,
        channels: 1,
        depth: 8,
        palette: PALETTE,
      }),
    );
    await assert.rejects(
      () => readVocSample(voc, "2007_000001"),
      /2007_000001\.png' has label 40 at pixel 5/,
    );
    await Deno.writeFile(
      `${root}/SegmentationClass/2007_000001.png`,
      encodePng({
        width: 4,
        height: 4,
        data: new Uint8Array(16),
        channels: 1,
        depth: 8,
        palette: PALETTE,
      }),
    );
    await assert.rejects(
      () => readVocSample(voc, "2007_000001"),
      /is 4×4 but its image is 24×16/,
    );
    await Deno.writeFile(
      `${root}/JPEGImages/2007_000002.jpg`,
      new Uint8Array([0xff, 0xd8, 0, 1, 2]),
    );
    await assert.rejects(
      () => readVocSample(voc, "2007_000002"),
      /2007_000002\.jpg' as a JPEG/,
    );
    await Deno.writeTextFile(`${root}/ImageSets/Segmentation/val.txt`, "\n");
    await assert.rejects(() => loadVoc(root), /val\.txt' is missing or empty/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
