import "./_setup.ts";
import * as tf from "@tensorflow/tfjs";
import { batchNorm, disposeAll, ParamBuilder } from "../../models/_layers.ts";
import { Prng } from "../../random/mod.ts";
import { assertAlmostEquals, assertNoLeak, testOnBackends } from "../_utils.ts";

/** BN by autodiff through tfjs's own ops: the reference. */
function reference(
  x: tf.Tensor4D,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  relu: boolean,
  residual?: tf.Tensor,
): tf.Tensor {
  const { mean, variance } = tf.moments(x, [0, 1, 2]);
  let y = tf.batchNorm(x, mean, variance, beta, gamma, 1e-5);
  if (residual) y = tf.add(y, residual);
  return relu ? tf.relu(y) : y;
}

testOnBackends(
  "batchNorm() training mode: values and gradients match autodiff of moments → batchNorm → relu",
  async (backend) => {
    const b = new ParamBuilder(new Prng(1));
    const bn = b.batchNorm("bn", 3);
    bn.gamma.assign(tf.tensor1d([0.5, 1.5, -1]));
    bn.beta.assign(tf.tensor1d([0.1, -0.2, 0.3]));
    const x = tf.randomNormal([2, 4, 5, 3], 1, 2, "float32", 2) as tf.Tensor4D;
    const r = tf.randomNormal([2, 4, 5, 3], 0, 1, "float32", 3);
    const tol = backend === "webgpu" ? 1e-3 : 1e-4;
    for (const relu of [false, true]) {
      // γ and β enter the op as tensors, so gradients reach substitutes too.
      const ours = (a: tf.Tensor, g: tf.Tensor, be: tf.Tensor) =>
        tf.sum(tf.mul(
          batchNorm(a as tf.Tensor4D, {
            ...bn,
            gamma: g as tf.Variable,
            beta: be as tf.Variable,
          }, {
            training: true,
            relu,
          }),
          r,
        ));
      const theirs = (a: tf.Tensor, g: tf.Tensor, be: tf.Tensor) =>
        tf.sum(tf.mul(reference(a as tf.Tensor4D, g, be, relu), r));
      const got = tf.grads(ours)([x, bn.gamma, bn.beta]);
      const want = tf.grads(theirs)([x, bn.gamma, bn.beta]);
      for (let k = 0; k < 3; k++) {
        assertAlmostEquals(
          await got[k]!.data(),
          await want[k]!.data(),
          tol,
          `${["dx", "dγ", "dβ"][k]} relu=${relu}`,
        );
      }
      const y = batchNorm(x, bn, { training: true, relu });
      const yRef = reference(x, bn.gamma, bn.beta, relu);
      assertAlmostEquals(
        await y.data(),
        await yRef.data(),
        tol,
        `value relu=${relu}`,
      );
      tf.dispose([y, yRef, ...got, ...want]);
    }
    // The block's last unit: relu(bn(x) + shortcut), gradients to all four.
    const res = tf.randomNormal(
      [2, 4, 5, 3],
      0,
      1,
      "float32",
      4,
    ) as tf.Tensor4D;
    const got = tf.grads((
      a: tf.Tensor,
      g: tf.Tensor,
      be: tf.Tensor,
      s: tf.Tensor,
    ) =>
      tf.sum(tf.mul(
        batchNorm(a as tf.Tensor4D, {
          ...bn,
          gamma: g as tf.Variable,
          beta: be as tf.Variable,
        }, {
          training: true,
          relu: true,
          residual: s as tf.Tensor4D,
        }),
        r,
      ))
    )([x, bn.gamma, bn.beta, res]);
    const want = tf.grads((
      a: tf.Tensor,
      g: tf.Tensor,
      be: tf.Tensor,
      s: tf.Tensor,
    ) => tf.sum(tf.mul(reference(a as tf.Tensor4D, g, be, true, s), r)))([
      x,
      bn.gamma,
      bn.beta,
      res,
    ]);
    for (let k = 0; k < 4; k++) {
      assertAlmostEquals(
        await got[k]!.data(),
        await want[k]!.data(),
        tol,
        `residual gradient ${k}`,
      );
    }
    tf.dispose([res, ...got, ...want]);
    assertNoLeak(() =>
      tf.grads((a: tf.Tensor) =>
        batchNorm(a as tf.Tensor4D, bn, { training: true, relu: true }).sum()
      )([x])
    );
    tf.dispose([x, r]);
    disposeAll(b.params, b.state);
  },
  { purpose: "train" },
);
