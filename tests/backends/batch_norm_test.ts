import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { selectBackend, setWasmAcceleration } from "../../backends/mod.ts";
import {
  BATCH_NORM_TRAINING,
  BATCH_NORM_TRAINING_GRAD,
  batchNormTraining,
  batchNormTrainingGrad,
  batchNormTrainingRouted,
} from "../../backends/_batch_norm.ts";
import { openDnnl } from "../../backends/_dnnl.ts";
import { batchNorm } from "../../models/_layers.ts";
import { Prng } from "../../random/mod.ts";
import { assertNoLeak } from "../_utils.ts";
import { assertParity, randn, runOn } from "./_parity.ts";

// The training batch norm kernel pair of wasm's oneDNN layer, through the
// model's batchNorm, against the composed ops the plain cpu backend runs.
// Skipped (and reported as ignored) where no oneDNN 2.x library or no
// --allow-ffi.
const ignore = openDnnl().dnnl === undefined;

/** [batch, height, width, channels] */
type Shape = [number, number, number, number];

const SHAPES: readonly Shape[] = [
  [2, 4, 5, 3],
  [3, 7, 6, 16],
  [1, 3, 3, 67], // channels not a multiple of the vector width
  [4, 1, 1, 8], // one value per sample
];

/**
 * y, dx, dγ, dβ (and d residual) of `Σ batchNorm(x) · r` in training mode,
 * then the running mean and variance it moved, for one seeded case.
 */
function stepOf(
  shape: Shape,
  relu: boolean,
  residual: boolean,
): () => tf.Tensor[] {
  const [n, h, w, c] = shape;
  const size = n * h * w * c;
  const prng = new Prng(7 + size + c);
  const xs = randn(prng, size).map((v) => 2 * v + 1);
  const rs = randn(prng, size);
  const ss = randn(prng, size);
  const gs = randn(prng, c);
  const bs = randn(prng, c);
  return () => {
    const bn = {
      gamma: tf.variable(tf.tensor1d(gs)),
      beta: tf.variable(tf.tensor1d(bs)),
      runningMean: tf.variable(tf.zeros([c])),
      runningVar: tf.variable(tf.ones([c])),
      count: tf.variable(tf.scalar(0, "int32")),
    };
    const x = tf.tensor4d(xs, shape);
    const r = tf.tensor4d(rs, shape);
    const s = tf.tensor4d(ss, shape);
    const f = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor, sc?: tf.Tensor) =>
      batchNorm(
        a as tf.Tensor4D,
        { ...bn, gamma: g as tf.Variable, beta: b as tf.Variable },
        sc
          ? { training: true, relu, residual: sc as tf.Tensor4D }
          : { training: true, relu },
      );
    const inputs = residual
      ? [x, bn.gamma, bn.beta, s]
      : [x, bn.gamma, bn.beta];
    const { value, grads } = tf.valueAndGrads(
      (...a: tf.Tensor[]) => tf.sum(tf.mul(f(a[0]!, a[1]!, a[2]!, a[3]), r)),
    )(inputs);
    const y = f(x, bn.gamma, bn.beta, residual ? s : undefined);
    const out = [
      y,
      ...grads,
      tf.clone(bn.runningMean),
      tf.clone(bn.runningVar),
      value,
    ];
    tf.dispose(Object.values(bn));
    return out;
  };
}

/** Runs `fn` on wasm with oneDNN, then puts wasm back on auto and cpu. */
async function withOnednn(fn: () => Promise<void>): Promise<void> {
  try {
    await selectBackend("wasm", { purpose: "train" });
    assert.equal((await setWasmAcceleration("onednn"))?.name, "onednn");
    await fn();
  } finally {
    await setWasmAcceleration("auto");
    await selectBackend("cpu");
  }
}

for (const shape of SHAPES) {
  for (const relu of [false, true]) {
    for (const residual of [false, true]) {
      Deno.test({
        name:
          `training batchNorm [${shape}] relu=${relu} residual=${residual}` +
          ": wasm (oneDNN kernels) matches cpu, values, gradients, running stats",
        ignore,
      }, async () => {
        await withOnednn(async () => {
          const f = stepOf(shape, relu, residual);
          const got = await runOn("wasm", f);
          const want = await runOn("cpu", f);
          assertParity(got, want, `[${shape}] relu=${relu} res=${residual}`);
        });
      });
    }
  }
}

Deno.test({
  name:
    "training batchNorm on wasm with oneDNN runs the kernel pair, and leaks no tensor",
  ignore,
}, async () => {
  await withOnednn(async () => {
    const f = stepOf([2, 5, 4, 6], true, true);
    const info = await tf.profile(() => tf.dispose(f()));
    const names = new Set(info.kernels.map((k) => k.name));
    assert.ok(names.has(BATCH_NORM_TRAINING), [...names].join(" "));
    assert.ok(names.has(BATCH_NORM_TRAINING_GRAD), [...names].join(" "));
    // Neither tensors nor wasm heap buffers outlive the step.
    const backend = tf.engine().backend;
    for (
      const g of [
        f,
        stepOf([1, 3, 3, 5], true, false),
        stepOf(
          [1, 3, 3, 5],
          false,
          true,
        ),
      ]
    ) {
      const ids = backend.numDataIds();
      assertNoLeak(() => tf.tidy(g));
      assert.equal(backend.numDataIds(), ids, "wasm data leaked");
    }
  });
});

Deno.test({
  name:
    "the training batch norm route is on for wasm with oneDNN only, and off again without it",
  ignore,
}, async () => {
  const x = () => tf.zeros([1, 2, 2, 3]) as tf.Tensor4D;
  const routed = () => {
    const t = x();
    const on = batchNormTrainingRouted(t);
    t.dispose();
    return on;
  };
  await withOnednn(async () => {
    assert.equal(routed(), true);
    const empty = tf.zeros([0, 2, 2, 3]) as tf.Tensor4D;
    assert.equal(batchNormTrainingRouted(empty), false);
    empty.dispose();
    await setWasmAcceleration("xnnpack");
    assert.equal(routed(), false);
    assert.equal(tf.getKernel(BATCH_NORM_TRAINING, "wasm"), undefined);
    await setWasmAcceleration("onednn");
    assert.equal(routed(), true);
  });
  assert.equal(routed(), false); // cpu
});

Deno.test({
  name:
    "the oneDNN batch norm kernels refuse mismatched inputs with a TypeError, leaking nothing",
  ignore,
}, async () => {
  await withOnednn(() => {
    const x = tf.zeros([1, 2, 2, 3]) as tf.Tensor4D;
    const g3 = tf.ones([3]) as tf.Tensor1D;
    const g4 = tf.ones([4]) as tf.Tensor1D;
    const r = tf.zeros([1, 2, 3, 3]) as tf.Tensor4D;
    const ids = tf.engine().backend.numDataIds();
    const attrs = { epsilon: 1e-5, relu: true };
    assert.throws(
      () => batchNormTraining({ x, gamma: g4, beta: g4 }, attrs),
      /per-channel vectors \[3\]: found \[4\]/,
    );
    assert.throws(
      () => batchNormTraining({ x, gamma: g3, beta: g3, residual: r }, attrs),
      /maps shaped as x/,
    );
    assert.throws(
      () =>
        batchNormTrainingGrad(
          { dy: x, x, mean: g3, variance: g3, gamma: g3, y: r },
          attrs,
        ),
      /maps shaped as x/,
    );
    assert.equal(tf.engine().backend.numDataIds(), ids);
    tf.dispose([x, g3, g4, r]);
    return Promise.resolve();
  });
});
