import assert from "node:assert/strict";
import { fuseLabels } from "../../pipeline/mod.ts";

Deno.test("fuseLabels() takes the argmax among targets above 0.5 inside their attention", () => {
  // Voxels: 0 both high (2 wins by p), 1 only target 1 above 0.5,
  // 2 target 2 higher but outside its attention, 3 both at or below 0.5,
  // 4 exact tie at 0.7 (first listed wins), 5 nothing.
  const fused = fuseLabels([
    {
      label: 3,
      prob: new Float32Array([0.6, 0.9, 0.55, 0.5, 0.7, 0]),
      attention: [1, 1, 1, 1, 1, 0],
    },
    {
      label: 7,
      prob: new Float32Array([0.8, 0.1, 0.99, 0.5, 0.7, 0]),
      attention: [1, 1, 0, 1, 1, 1],
    },
  ]);
  assert.ok(fused instanceof Uint8Array);
  assert.deepEqual(Array.from(fused), [7, 3, 3, 0, 3, 0]);
});

Deno.test("fuseLabels() tie goes to the target listed first", () => {
  const p = new Float32Array([0.75]);
  assert.deepEqual(
    Array.from(
      fuseLabels([{ label: 2, prob: p, attention: [1] }, {
        label: 1,
        prob: p,
        attention: [1],
      }]),
    ),
    [2],
  );
  assert.deepEqual(
    Array.from(
      fuseLabels([{ label: 1, prob: p, attention: [1] }, {
        label: 2,
        prob: p,
        attention: [1],
      }]),
    ),
    [1],
  );
});

Deno.test("fuseLabels() returns Int16Array for labels above 255 and honours threshold", () => {
  const fused = fuseLabels([{
    label: 300,
    prob: new Float32Array([0.3, 0.2]),
    attention: [1, 1],
  }], { threshold: 0.25 });
  assert.ok(fused instanceof Int16Array);
  assert.deepEqual(Array.from(fused), [300, 0]);
});

Deno.test("fuseLabels() rejects mismatched lengths and bad labels", () => {
  assert.throws(
    () => fuseLabels([{ label: 1, prob: new Float32Array(2), attention: [1] }]),
    {
      name: "TypeError",
      message: /targets\[0\]' must have 2 voxels: prob has 2, attention has 1/,
    },
  );
  assert.throws(
    () => fuseLabels([{ label: 0, prob: new Float32Array(1), attention: [1] }]),
    {
      name: "RangeError",
      message:
        /'targets\[0\].label' must be an integer in \[1, 32767\]: current value is 0/,
    },
  );
  assert.throws(() => fuseLabels([], { threshold: 1 }), { name: "RangeError" });
});
