import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { selectBackend } from "../../backends/mod.ts";
import type { DeepLab } from "../../pipeline/_models.ts";
import {
  coarseValidator,
  pickValidationSlices,
  segmentValidator,
} from "../../pipeline/validation.ts";
import { assertNoLeakAsync } from "../_utils.ts";

await selectBackend("cpu");

/** A stand-in network whose `apply` is `f` (only `apply` is called). */
function fakeNet(f: (x: tf.Tensor4D) => tf.Tensor4D): DeepLab {
  return {
    config: { nClasses: 2 }, // stage 3's binary head
    apply: (x: tf.Tensor4D) => f(x),
  } as unknown as DeepLab;
}

Deno.test("pickValidationSlices() spreads slices with foreground over cases and within each", () => {
  // 1×1 slices: case 0 has foreground in z = 1..4, case 1 in z = 0 only.
  const a = {
    dims: [1, 1, 6] as [number, number, number],
    label: Uint8Array.of(0, 1, 1, 1, 1, 0),
  };
  const b = {
    dims: [1, 1, 2] as [number, number, number],
    label: Uint8Array.of(2, 0),
  };
  const none = { dims: [1, 1, 2] as [number, number, number] };
  assert.deepEqual(pickValidationSlices([a, b, none], 2), [[0, 3], [1, 0]]);
  assert.deepEqual(pickValidationSlices([a, b], 4), [[0, 2], [1, 0], [0, 4]]);
  assert.deepEqual(pickValidationSlices([none], 4), []);
  // VOC's 255 (ignore) is not foreground.
  const ignored = {
    dims: [1, 1, 1] as [number, number, number],
    label: Uint8Array.of(255),
  };
  assert.deepEqual(pickValidationSlices([ignored], 1), []);
});

Deno.test("coarseValidator() scores the argmax per target over the picked slices, padding left out", async () => {
  // One 3×2 slice (nx 3, ny 2) padded to 4×4; truth: label 1 on x < 2, 2 at x = 2.
  const label = Uint8Array.of(1, 1, 2, 1, 1, 2);
  const c = {
    dims: [3, 2, 1] as [number, number, number],
    channels: 1,
    image: new Float32Array(6),
    label,
  };
  // Predicts class 1 everywhere (padding too, which must not count).
  const net = fakeNet((x) =>
    tf.tidy(() => {
      const [n, h, w] = x.shape;
      return tf.oneHot(tf.fill([n, h, w], 1, "int32"), 3) as tf.Tensor4D;
    })
  );
  const check = coarseValidator(net, [c], {
    multiple: 4,
    targets: [{ id: 1, name: "a" }, { id: 2, name: "b" }],
  })!;
  await assertNoLeakAsync(async () => {
    const v = await check();
    // a: 4 true pixels, 6 predicted, 4 shared → 8/10; b: none predicted.
    assert.deepEqual(v.targets, { a: 0.8, b: 0 });
    assert.equal(v.dice, 0.4);
    assert.equal(v.sample, "1 slice(s) of 1 case(s)");
  });
  assert.equal(
    coarseValidator(net, [{ ...c, label: new Uint8Array(6) }], {
      multiple: 4,
      targets: [{ id: 1, name: "a" }],
    }),
    null,
  );
});

Deno.test("segmentValidator() scores thresholded foreground per target over its patches", async () => {
  // One 8×8 slice: target 1's truth and attention in rows 0–3; the fake
  // network's foreground is its attention channel, so Dice is 1 where the
  // attention equals the truth.
  const label = new Uint8Array(64).fill(1, 0, 32);
  const attention = label.slice();
  const c = {
    id: "c",
    domain: 0,
    dims: [8, 8, 1] as [number, number, number],
    channels: 1,
    image: new Float32Array(64),
    attention,
    label,
  };
  const net = fakeNet((x) =>
    tf.tidy(() => {
      const [n, h, w] = x.shape;
      const a = x.slice([0, 0, 0, 1], [n, h, w, 1]).mul(20).sub(10);
      return tf.concat([tf.neg(a), a], -1) as tf.Tensor4D;
    })
  );
  const targets = [{ id: 1, name: "one" }, { id: 2, name: "two" }];
  const check = segmentValidator(net, [c], { targets, patchSize: 4, seed: 0 })!;
  await assertNoLeakAsync(async () => {
    const v = await check();
    assert.deepEqual(v.targets, { one: 1, two: null });
    assert.equal(v.dice, 1);
    assert.equal(v.sample, "1 patch(es) of 1 case(s)");
  });
  const { label: _, ...unlabelled } = c;
  assert.equal(
    segmentValidator(net, [unlabelled], { targets, patchSize: 4, seed: 0 }),
    null,
  );
});
