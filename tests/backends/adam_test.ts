import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { selectBackend } from "../../backends/mod.ts";
import {
  ADAM_UPDATE,
  ADAM_UPDATE_KERNELS,
  ADAM_UPDATE_MAX_SIZE,
  adamUpdate,
  adamUpdateRouted,
} from "../../backends/_adam.ts";
import { createAdam } from "../../pipeline/optim.ts";
import { Prng } from "../../random/mod.ts";

function values(prng: Prng, n: number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => scale * prng.normal());
}

Deno.test("Adam on wasm: the fused update is bit for bit the ops' over many steps, small and large variables alike", async () => {
  await selectBackend("wasm", { purpose: "train" });
  try {
    const prng = new Prng(4);
    const shapes = [[3, 3, 4, 8], [17], [1], [ADAM_UPDATE_MAX_SIZE + 5]];
    const inits = shapes.map((s) => values(prng, s.reduce((a, b) => a * b)));
    const make = () =>
      Object.fromEntries(
        shapes.map((s, i) => [`v${i}`, tf.variable(tf.tensor(inits[i]!, s))]),
      );
    const fused = make();
    const plain = make();
    assert.ok(adamUpdateRouted(fused.v0!));
    assert.ok(!adamUpdateRouted(fused.v3!)); // too large: the ops
    const a = createAdam(fused, { beta1: 0.8, epsilon: 1e-6 });
    const b = createAdam(plain, { beta1: 0.8, epsilon: 1e-6 });
    for (let step = 0; step < 6; step++) {
      const grads = Object.fromEntries(
        shapes.map((s, i) => [
          `v${i}`,
          tf.tensor(
            values(prng, s.reduce((x, y) => x * y), 10 ** (step - 3)),
            s,
          ),
        ]),
      );
      const lr = 0.01 * (1 + step);
      a.apply(grads, lr);
      // The same update with the kernel gone: the ops.
      tf.unregisterKernel(ADAM_UPDATE, "wasm");
      try {
        assert.ok(!adamUpdateRouted(plain.v0!));
        b.apply(grads, lr);
      } finally {
        tf.registerKernel(ADAM_UPDATE_KERNELS[0]!);
      }
      tf.dispose(Object.values(grads));
    }
    const sa = await a.getState();
    const sb = await b.getState();
    for (const k of Object.keys(fused)) {
      assert.deepEqual(await fused[k]!.data(), await plain[k]!.data(), k);
      assert.deepEqual(sa.slots[`${k}/m`], sb.slots[`${k}/m`], `${k}/m`);
      assert.deepEqual(sa.slots[`${k}/v`], sb.slots[`${k}/v`], `${k}/v`);
    }
    a.dispose();
    b.dispose();
    tf.dispose([...Object.values(fused), ...Object.values(plain)]);
  } finally {
    await selectBackend("cpu");
  }
});

Deno.test("adamUpdate on wasm: leak-free, and mismatched inputs are a TypeError naming them", async () => {
  await selectBackend("wasm", { purpose: "train" });
  try {
    const w = tf.tensor([1, 2, 3]);
    const zero = tf.zeros([3]);
    const before = tf.memory().numTensors;
    // The first step's constants: c1 = 1 − 0.9, c2 = 1 − 0.999.
    const attrs = {
      lr: 0.1,
      beta1: 0.9,
      beta2: 0.999,
      epsilon: 1e-8,
      c1: 0.1,
      c2: 0.001,
    };
    const out = adamUpdate({ w, m: zero, v: zero, g: w }, attrs);
    // First step: every weight moves by lr against its gradient's sign.
    const moved = await out[0].data();
    [0.9, 1.9, 2.9].forEach((e, i) =>
      assert.ok(Math.abs(moved[i]! - e) < 1e-6)
    );
    tf.dispose(out);
    assert.equal(tf.memory().numTensors, before);
    const short = tf.zeros([2]);
    assert.throws(
      () => adamUpdate({ w, m: short, v: zero, g: w }, attrs),
      {
        name: "TypeError",
        message:
          "AgclAdamUpdate needs float32 'm' of 3 elements as 'w': current float32 [2]",
      },
    );
    tf.dispose([w, zero, short]);
    // Elsewhere the ops run.
    await selectBackend("cpu");
    const c = tf.tensor([1, 2, 3]);
    assert.equal(adamUpdateRouted(c), false);
    c.dispose();
  } finally {
    await selectBackend("cpu");
  }
});
