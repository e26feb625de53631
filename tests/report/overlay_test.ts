import assert from "node:assert/strict";
import { decode } from "fast-png";
import { labelColor, overlayPng } from "../../report/overlay.ts";

Deno.test("overlayPng draws image | prediction | truth with label colours", () => {
  const png = overlayPng({
    image: [0, 0, 10, 10],
    pred: [1, 0, 0, 0],
    truth: [0, 0, 0, 2],
    width: 2,
    height: 2,
  }, { scale: 1, alpha: 1 });
  const img = decode(png);
  assert.equal(img.width, 3 * 2 + 2 * 4);
  assert.equal(img.height, 2);
  const px = (x: number, y: number) =>
    Array.from(
      img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3),
    );
  assert.deepEqual(px(0, 0), [0, 0, 0]); // image panel, dark
  assert.deepEqual(px(1, 1), [255, 255, 255]); // bright
  assert.deepEqual(px(6, 0), labelColor(1)); // prediction panel, label 1
  assert.deepEqual(px(6 + 6 + 1, 1), labelColor(2)); // truth panel, label 2
  assert.throws(
    () =>
      overlayPng({ image: [0], pred: [0, 1], truth: [0], width: 1, height: 1 }),
    {
      name: "TypeError",
      message: /'pred' has 2 pixels but width × height is 1/,
    },
  );
});
