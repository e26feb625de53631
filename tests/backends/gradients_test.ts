import * as tf from "@tensorflow/tfjs";
import { Prng } from "../../random/mod.ts";
import { assertNoLeak, testOnBackends, tolerance } from "../_utils.ts";
import { assertParity, randn } from "./_parity.ts";

/** Batch norm written with elementary ops, whose gradients are upstream's. */
function reference(
  x: tf.Tensor,
  mean: tf.Tensor,
  variance: tf.Tensor,
  offset: tf.Tensor,
  scale: tf.Tensor | undefined,
): tf.Tensor {
  const n = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-3)));
  return tf.add(scale ? tf.mul(n, scale) : n, offset);
}

testOnBackends(
  "batchNorm gradient (lean) matches the elementary-op formula",
  async (backend) => {
    const prng = new Prng(31);
    for (
      const [shape, withScale] of [[[2, 3, 4, 5], true], [[7, 6], true], [[
        3,
        5,
        8,
      ], true]] as const
    ) {
      const c = shape[shape.length - 1]!;
      const size = shape.reduce((a, b) => a * b, 1);
      const xs = randn(prng, size);
      const dys = randn(prng, size);
      const ps = [
        randn(prng, c),
        randn(prng, c).map((v) => 0.5 + v * v),
        randn(prng, c),
        randn(prng, c),
      ];
      const grads = (f: typeof reference) => {
        const x = tf.tensor(xs, [...shape]);
        const dy = tf.tensor(dys, [...shape]);
        const [m, v, o, s] = ps.map((p) => tf.tensor1d(p));
        // Batch statistics too, so the moments' gradients flow through mean/variance.
        return tf.grads(
          (
            x: tf.Tensor,
            m: tf.Tensor,
            v: tf.Tensor,
            o: tf.Tensor,
            s: tf.Tensor,
          ) => {
            const mom = tf.moments(x, [...Array(shape.length - 1).keys()]);
            const a = f(x, m, v, o, withScale ? s : undefined);
            const b = f(
              x,
              mom.mean,
              mom.variance,
              o,
              withScale ? s : undefined,
            );
            return tf.sum(tf.mul(tf.add(a, b), dy));
          },
        )([x, m!, v!, o!, s!]);
      };
      const lean = tf.tidy(() =>
        grads((x, m, v, o, s) =>
          tf.batchNorm(
            x as tf.Tensor4D,
            m as tf.Tensor1D,
            v as tf.Tensor1D,
            o as tf.Tensor1D,
            s as tf.Tensor1D | undefined,
            1e-3,
          )
        )
      );
      const ref = tf.tidy(() => grads(reference));
      const a = await Promise.all(
        lean.map(async (t) => await t.data() as Float32Array),
      );
      const b = await Promise.all(
        ref.map(async (t) => await t.data() as Float32Array),
      );
      tf.dispose([lean, ref]);
      assertParity(
        withScale ? a : a.slice(0, 4),
        withScale ? b : b.slice(0, 4),
        `batchNorm ${shape} on ${backend}`,
        backend === "webgpu" ? tolerance(backend) : 1e-5,
      );
    }
  },
  { purpose: "train" },
);

testOnBackends("batchNorm gradient (lean) leaks no tensor", () => {
  const x = tf.randomNormal([2, 3, 3, 4]);
  const p = [tf.zeros([4]), tf.ones([4]), tf.zeros([4]), tf.ones([4])];
  assertNoLeak(() =>
    tf.grads((x: tf.Tensor, s: tf.Tensor) =>
      tf.sum(
        tf.batchNorm(
          x as tf.Tensor4D,
          p[0] as tf.Tensor1D,
          p[1] as tf.Tensor1D,
          p[2] as tf.Tensor1D,
          s as tf.Tensor1D,
        ),
      )
    )([x, p[3]!])
  );
  tf.dispose([x, ...p]);
}, { purpose: "train" });
