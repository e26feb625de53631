import assert from "node:assert/strict";
import {
  labelDtype,
  maxValue,
  newLabelMap,
  scale8bit,
  toLabelMap,
} from "../../pipeline/_arrays.ts";

Deno.test("newLabelMap() and toLabelMap() take 8 bits up to label 255, else 16", () => {
  assert.equal(labelDtype(255), "uint8");
  assert.equal(labelDtype(256), "int16");
  assert.ok(newLabelMap(3, 255) instanceof Uint8Array);
  assert.ok(newLabelMap(3, 256) instanceof Int16Array);
  assert.deepEqual(Array.from(newLabelMap(3, 1)), [0, 0, 0]);
  const small = toLabelMap([0, 3, 255]);
  assert.ok(small instanceof Uint8Array);
  assert.deepEqual(Array.from(small), [0, 3, 255]);
  const wide = toLabelMap([0, 300]);
  assert.ok(wide instanceof Int16Array);
  assert.deepEqual(Array.from(wide), [0, 300]);
  // The given largest label chooses the type, not the data.
  assert.ok(toLabelMap([0, 1], 300) instanceof Int16Array);
  assert.equal(maxValue([]), 0);
  assert.equal(maxValue([-2, 7, 3]), 7);
});

Deno.test("scale8bit() maps v to v / 255, interleaving when asked, and refuses non-8-bit values", () => {
  assert.deepEqual(Array.from(scale8bit(new Uint8Array([0, 255]))), [0, 1]);
  const into = new Float32Array(4);
  scale8bit([51, 255], { into, offset: 1, stride: 2 });
  assert.deepEqual(Array.from(into), [0, 51 / 255, 0, 1].map(Math.fround));
  assert.throws(
    () => scale8bit([0, 256], { source: "channel 1" }),
    new RangeError(
      "Cannot predict channel 1: voxel 1 is 256, expected 8-bit values 0..255 (the run maps them to [0, 1] as its training images)",
    ),
  );
});
