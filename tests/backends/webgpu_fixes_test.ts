import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { ADDN_CHUNK } from "../../backends/_webgpu_fixes.ts";
import { testOnBackends } from "../_utils.ts";

testOnBackends(
  "addN of any number of inputs sums them all, and frees its partial sums",
  async (backend) => {
    for (const n of [1, 2, ADDN_CHUNK, ADDN_CHUNK + 1, 7, 8, 9, 13, 17]) {
      const ts = Array.from({ length: n }, (_, i) => tf.fill([3, 5], i + 1));
      const before = {
        tensors: tf.memory().numTensors,
        data: tf.backend().numDataIds(),
      };
      const sum = tf.addN(ts);
      // With two or more inputs the backend holds the sum's data and
      // nothing else new (one input may come back as itself or a copy).
      if (n > 1) assert.equal(tf.backend().numDataIds(), before.data + 1);
      // 1 + 2 + … + n in each of the 15 entries.
      assert.deepEqual(
        [...await sum.data()],
        Array(15).fill(n * (n + 1) / 2),
        `${n} inputs on ${backend}`,
      );
      sum.dispose();
      assert.equal(tf.memory().numTensors, before.tensors);
      tf.dispose(ts);
    }
  },
);
