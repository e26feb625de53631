import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { segmentVolume } from "../../pipeline/infer.ts";
import type { DeepLab } from "../../pipeline/_models.ts";

/** A stand-in network that is sure of the foreground everywhere. */
const sure = {
  config: { nClasses: 2 },
  apply: (x: tf.Tensor4D) => {
    const [n, h, w] = x.shape;
    return tf.concat([tf.zeros([n, h, w, 1]), tf.fill([n, h, w, 1], 9)], 3);
  },
} as unknown as DeepLab;

Deno.test("segmentVolume() labels only within `margin` pixels of each target's attention", async () => {
  await tf.setBackend("cpu");
  const [nx, ny] = [12, 10];
  const attention = new Uint8Array(nx * ny);
  attention[4 * nx + 5] = 2; // one pixel of target 2 at (x 5, y 4)
  const c = {
    dims: [nx, ny, 1] as [number, number, number],
    channels: 1,
    image: new Float32Array(nx * ny),
  };
  const options = {
    patchSize: 8,
    overlap: 0.25,
    batchSize: 4,
    mode: "gaussian" as const,
    sigmaScale: 0.125,
    targets: [1, 2],
  };
  const before = tf.memory().numTensors;
  const inside = await segmentVolume(sure, c, {
    ...options,
    attention,
    margin: 0,
  });
  assert.deepEqual(Array.from(inside), Array.from(attention));
  const out = await segmentVolume(sure, c, {
    ...options,
    attention,
    margin: 2,
  });
  for (let y = 0; y < ny; y++) {
    for (let x = 0; x < nx; x++) {
      const near = Math.abs(x - 5) <= 2 && Math.abs(y - 4) <= 2;
      assert.equal(out[y * nx + x], near ? 2 : 0, `(${x}, ${y})`);
    }
  }
  assert.equal(tf.memory().numTensors, before);
});
