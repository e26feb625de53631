import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { selectBackend, setWasmAcceleration } from "../../backends/mod.ts";
import { openBlas } from "../../backends/_blas.ts";
import { openDnnl } from "../../backends/_dnnl.ts";
import { limits } from "../../backends/_limits.ts";
import { atrousConv2d } from "../../models/mod.ts";
import { Prng } from "../../random/mod.ts";
import { assertNoLeak } from "../_utils.ts";
import { assertParity, randn, runOn } from "./_parity.ts";

// The dilated gradients of atrousConv2d through wasm's oneDNN and BLAS
// gradient kernels, against the per-tap gradient the plain cpu backend runs.
// Skipped (and reported as ignored) where the library or --allow-ffi is
// missing.
const ACCELERATIONS = [
  { acc: "onednn", ignore: openDnnl().dnnl === undefined },
  { acc: "blas", ignore: openBlas().blas === undefined },
] as const;

/** [batch, height, width, inChannels, outChannels, rate] */
type Case = [number, number, number, number, number, number];

const CASES: readonly Case[] = [
  [2, 7, 6, 3, 4, 2], // every tap live
  [3, 9, 5, 4, 3, 3], // every tap live, taller than wide
  [2, 5, 9, 3, 5, 6], // the centre row alone (shifts of 6 miss 5 rows)
  [2, 9, 4, 2, 3, 5], // the centre column alone
  [3, 4, 4, 2, 3, 5], // the centre tap alone
  [1, 6, 8, 5, 2, 1], // rate 1: tf.conv2d's own gradient
];

/** dx and dFilter of `Σ atrous(x, f) · r` for one case, seeded. */
function gradsOf(c: Case): () => tf.Tensor[] {
  const [n, h, w, ci, co, rate] = c;
  const prng = new Prng(31 + h * 7 + w);
  const xs = randn(prng, n * h * w * ci);
  const fs = randn(prng, 9 * ci * co);
  const rs = randn(prng, n * h * w * co);
  return () =>
    tf.tidy(() => {
      const x = tf.tensor4d(xs, [n, h, w, ci]);
      const f = tf.tensor4d(fs, [3, 3, ci, co]);
      const r = tf.tensor4d(rs, [n, h, w, co]);
      return tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(
          tf.mul(
            atrousConv2d(a as tf.Tensor4D, b as tf.Tensor4D, { rate }),
            r,
          ),
        )
      )([x, f]);
    });
}

/** Runs `fn` with `acc` on wasm, every convolution sent to oneDNN. */
async function withAcceleration(
  acc: "onednn" | "blas" | "xnnpack",
  fn: () => Promise<void>,
): Promise<void> {
  const minWork = limits.dnnlMinWork;
  limits.dnnlMinWork = 0; // the cases are tiny
  try {
    await selectBackend("wasm", { purpose: "train" });
    assert.equal((await setWasmAcceleration(acc))?.name, acc);
    await fn();
  } finally {
    limits.dnnlMinWork = minWork;
    await setWasmAcceleration("auto");
    await selectBackend("cpu");
  }
}

/** Names of the kernels `fn` runs on the active backend. */
async function kernelsOf(fn: () => tf.Tensor[]): Promise<Set<string>> {
  const info = await tf.profile(() => tf.dispose(fn()));
  return new Set(info.kernels.map((k) => k.name));
}

for (const { acc, ignore } of ACCELERATIONS) {
  Deno.test({
    name:
      `atrousConv2d() gradients on wasm (${acc}) match the cpu backend's per-tap gradients`,
    ignore,
  }, async () => {
    for (const c of CASES) {
      const ref = await runOn("cpu", gradsOf(c));
      let got: Float32Array[] = [];
      await withAcceleration(acc, async () => {
        got = await runOn("wasm", gradsOf(c));
      });
      assertParity(got, ref, `${acc} [${c}]`, 1e-4);
    }
  });

  Deno.test({
    name:
      `atrousConv2d() gradients on wasm (${acc}) run the dilated gradient kernels, not a product per tap`,
    ignore,
  }, async () => {
    await withAcceleration(acc, async () => {
      for (const c of CASES.filter((c) => c[5] > 1)) {
        const kernels = await kernelsOf(gradsOf(c));
        assert.ok(kernels.has("Conv2DBackpropFilter"), `[${c}]`);
        assert.ok(kernels.has("Conv2DBackpropInput"), `[${c}]`);
      }
      // Every tap live: the forward is one dilated Conv2D, so no matrix
      // product at all.
      const all = await kernelsOf(gradsOf(CASES[0]!));
      assert.ok(!all.has("BatchMatMul"), [...all].join(", "));
    });
  });

  Deno.test({
    name: `atrousConv2d() gradients on wasm (${acc}) leave no tensors behind`,
    ignore,
  }, async () => {
    await withAcceleration(acc, () => {
      for (const c of CASES) {
        const before = tf.memory().numTensors;
        for (let i = 0; i < 3; i++) assertNoLeak(gradsOf(c));
        assert.equal(tf.memory().numTensors, before, `[${c}]`);
      }
      return Promise.resolve();
    });
  });
}

Deno.test("atrousConv2d() gradients on plain wasm (XNNPACK) stay per tap", async () => {
  await withAcceleration("xnnpack", async () => {
    const kernels = await kernelsOf(gradsOf(CASES[0]!));
    assert.ok(kernels.has("BatchMatMul"), [...kernels].join(", "));
    assert.ok(!kernels.has("Conv2DBackpropFilter"), [...kernels].join(", "));
  });
});
