import assert from "node:assert/strict";
import { join } from "node:path";
import { decode as decodePng, encode as encodePng } from "fast-png";
import { encode as encodeJpeg } from "jpeg-js";
import {
  decodeImage,
  decodeLabelPng,
  encodeLabelPng,
  readImage,
  vocColor,
  writeLabelPng,
} from "../../data/mod.ts";

Deno.test("decodeImage() PNG: grey stays 1 channel, RGB(A) gives RGB, palettes expand", () => {
  const grey = decodeImage(
    encodePng({
      width: 2,
      height: 1,
      data: new Uint8Array([7, 200]),
      channels: 1,
      depth: 8,
    }),
  );
  assert.deepEqual([grey.width, grey.height, grey.channels], [2, 1, 1]);
  assert.deepEqual(Array.from(grey.data), [7, 200]);
  const rgba = decodeImage(
    encodePng({
      width: 1,
      height: 2,
      data: new Uint8Array([1, 2, 3, 0, 4, 5, 6, 255]),
      channels: 4,
      depth: 8,
    }),
  );
  assert.deepEqual([rgba.width, rgba.height, rgba.channels], [1, 2, 3]);
  assert.deepEqual(Array.from(rgba.data), [1, 2, 3, 4, 5, 6]);
  // 1-bit grey: 0/1 scaled to 0/255; rows padded to whole bytes.
  const bits = decodeImage(
    encodePng({
      width: 3,
      height: 2,
      data: new Uint8Array([0b10100000, 0b01000000]),
      channels: 1,
      depth: 1,
    }),
  );
  assert.deepEqual(Array.from(bits.data), [255, 0, 255, 0, 255, 0]);
  const indexed = decodeImage(
    encodePng({
      width: 3,
      height: 1,
      data: new Uint8Array([2, 0, 1]),
      channels: 1,
      depth: 8,
      palette: [[10, 20, 30], [40, 50, 60], [70, 80, 90]],
    }),
  );
  assert.equal(indexed.channels, 3);
  assert.deepEqual(Array.from(indexed.data), [
    70,
    80,
    90,
    10,
    20,
    30,
    40,
    50,
    60,
  ]);
});

Deno.test("decodeImage() JPEG gives RGB, as the VOC reader", () => {
  const w = 8, h = 8;
  const rgba = new Uint8Array(w * h * 4);
  for (let i = 0; i < w * h; i++) rgba.set([200, 100, 50, 255], 4 * i);
  const jpg = new Uint8Array(
    encodeJpeg({ width: w, height: h, data: rgba }, 95).data,
  );
  const img = decodeImage(jpg, "flat.jpg");
  assert.deepEqual([img.width, img.height, img.channels], [8, 8, 3]);
  for (let i = 0; i < w * h; i++) {
    const [r, g, b] = img.data.subarray(3 * i, 3 * i + 3);
    assert.ok(
      Math.abs(r! - 200) <= 3 && Math.abs(g! - 100) <= 3 &&
        Math.abs(b! - 50) <= 3,
    );
  }
});

Deno.test("decodeImage() and readImage() errors name the file", async () => {
  assert.throws(() => decodeImage(new Uint8Array([1, 2, 3, 4]), "x.png"), {
    name: "Error",
    message:
      /Cannot decode x\.png: expected a JPEG or PNG file, found neither signature \(first bytes 01 02 03 04\)/,
  });
  const sixteen = encodePng({
    width: 1,
    height: 1,
    data: new Uint16Array([1000]),
    channels: 1,
    depth: 16,
  });
  assert.throws(() => decodeImage(sixteen, "deep.png"), {
    message: /Cannot decode deep\.png: expected an 8-bit PNG .* found 16 bits/,
  });
  await assert.rejects(() => readImage("photo.tiff"), {
    name: "TypeError",
    message:
      /image 'photo\.tiff' as its extension is not one of \.jpg, \.jpeg, \.png/,
  });
  await assert.rejects(() => readImage("/nonexistent/a.JPG"), {
    name: "Error",
    message: /Cannot read image '\/nonexistent\/a\.JPG' as it does not exist/,
  });
});

Deno.test("encodeLabelPng() writes an indexed VOC-palette PNG (or grey) that reads back", () => {
  const label = {
    width: 3,
    height: 2,
    data: new Uint8Array([0, 8, 12, 255, 1, 0]),
  };
  const png = decodePng(encodeLabelPng(label));
  assert.deepEqual([png.width, png.height, png.channels, png.depth], [
    3,
    2,
    1,
    8,
  ]);
  assert.equal(png.palette!.length, 256);
  assert.deepEqual(png.palette![1], [128, 0, 0]); // aeroplane
  assert.deepEqual(png.palette![255], [224, 224, 192]); // ignore: cream
  assert.deepEqual(png.palette![12], vocColor(12));
  assert.deepEqual(Array.from(png.data), Array.from(label.data));
  const grey = decodePng(encodeLabelPng(label, { palette: "grey" }));
  assert.equal(grey.palette, undefined);
  assert.deepEqual(
    Array.from(decodeLabelPng(encodeLabelPng(label, { palette: "grey" })).data),
    Array.from(label.data),
  );
  assert.throws(
    () => encodeLabelPng({ width: 3, height: 2, data: new Uint8Array(5) }),
    { name: "TypeError", message: /3×2 = 6 ids: current length is 5/ },
  );
});

Deno.test("writeLabelPng() is atomic and checks the extension", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const label = { width: 2, height: 1, data: new Uint8Array([0, 3]) };
    await writeLabelPng(join(dir, "l.png"), label);
    assert.deepEqual(
      Array.from(decodeLabelPng(await Deno.readFile(join(dir, "l.png"))).data),
      [0, 3],
    );
    await assert.rejects(() => writeLabelPng(join(dir, "l.jpg"), label), {
      name: "TypeError",
      message: /'.*l\.jpg' as its extension is not \.png/,
    });
    // A parent that is a file: the write fails naming the target, and no
    // temporary file is left (a missing folder is created instead).
    await assert.rejects(
      () => writeLabelPng(join(dir, "l.png", "x.png"), label),
      { name: "Error", message: /^Cannot write '.*l\.png\/x\.png': / },
    );
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["l.png"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
