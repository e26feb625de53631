/** Parity suite of the wasm kernels against cpu, run with and without BLAS. */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { selectBackend } from "../../backends/mod.ts";
import { limits } from "../../backends/_limits.ts";
import { WASM_TRAINING_KERNELS } from "../../backends/_wasm_kernels.ts";
import { Prng } from "../../random/mod.ts";
import { assertNoLeak } from "../_utils.ts";
import {
  assertParity,
  type ConvCase,
  convCases,
  outShape,
  randn,
  runOn,
} from "./_parity.ts";

function describe(c: ConvCase): string {
  return `x [${c.n},${c.h},${c.w},${c.c}] f [${c.kh},${c.kw},${c.c},${c.co}] s ${c.strides} d ${c.dilations} pad ${
    JSON.stringify(c.pad)
  }`;
}

/** Forward, input gradient and filter gradient through tf.grads. */
function convAndGrads(
  c: ConvCase,
  xs: Float32Array,
  fs: Float32Array,
  dys: Float32Array,
) {
  return () => {
    const x = tf.tensor4d(xs, [c.n, c.h, c.w, c.c]);
    const f = tf.tensor4d(fs, [c.kh, c.kw, c.c, c.co]);
    const dy = tf.tensor4d(dys, outShape(c));
    const y = tf.conv2d(x, f, c.strides, c.pad, "NHWC", c.dilations);
    const [dx, df] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(
        tf.mul(
          tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.strides, c.pad),
          dy,
        ),
      )
    )([x, f]);
    return [y, dx!, df!];
  };
}

/**
 * Registers the parity tests of every wasm kernel this library adds or
 * replaces, labelled `tag`; `ignore` skips them (e.g. BLAS absent).
 */
export function registerParitySuite(tag: string, ignore: boolean): void {
  Deno.test({
    name: `wasm (${tag}) registers every training kernel it lacks upstream`,
    ignore,
  }, async () => {
    await selectBackend("wasm", { purpose: "train" });
    for (const { kernelName: k } of WASM_TRAINING_KERNELS) {
      assert.ok(tf.getKernel(k, "wasm"), `${k} is registered for wasm`);
    }
    await selectBackend("cpu");
  });

  Deno.test({
    name:
      `conv2d forward and gradients on wasm (${tag}) match cpu (strides, paddings, batch > 1)`,
    ignore,
  }, async () => {
    const prng = new Prng(11);
    for (const c of convCases(prng, 12, false)) {
      const xs = randn(prng, c.n * c.h * c.w * c.c);
      const fs = randn(prng, c.kh * c.kw * c.c * c.co);
      const dys = randn(prng, outShape(c).reduce((a, b) => a * b, 1));
      const ref = await runOn("cpu", convAndGrads(c, xs, fs, dys));
      const got = await runOn("wasm", convAndGrads(c, xs, fs, dys));
      assertParity(got, ref, describe(c));
    }
    await selectBackend("cpu");
  });

  Deno.test({
    name:
      `conv2d gradients on wasm (${tag}) match cpu when the patch matrix is built in chunks`,
    ignore,
  }, async () => {
    const prng = new Prng(18);
    const saved = limits.chunkFloats;
    limits.chunkFloats = 97;
    try {
      for (const c of convCases(prng, 4, false)) {
        const xs = randn(prng, c.n * c.h * c.w * c.c);
        const fs = randn(prng, c.kh * c.kw * c.c * c.co);
        const dys = randn(prng, outShape(c).reduce((a, b) => a * b, 1));
        const ref = await runOn("cpu", convAndGrads(c, xs, fs, dys));
        const got = await runOn("wasm", convAndGrads(c, xs, fs, dys));
        assertParity(got, ref, describe(c));
      }
    } finally {
      limits.chunkFloats = saved;
    }
    await selectBackend("cpu");
  });

  Deno.test({
    name:
      `Conv2DBackpropFilter on wasm (${tag}) handles dilations (checked against the dense equivalent filter on cpu)`,
    ignore,
  }, async () => {
    const prng = new Prng(12);
    for (const c of convCases(prng, 6, true)) {
      const xs = randn(prng, c.n * c.h * c.w * c.c);
      const out = outShape(c);
      const dys = randn(prng, out.reduce((a, b) => a * b, 1));
      const [d] = c.dilations;
      const got = await runOn("wasm", () => {
        const x = tf.tensor4d(xs, [c.n, c.h, c.w, c.c]);
        const dy = tf.tensor4d(dys, out);
        return [
          tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, {
            strides: c.strides,
            pad: c.pad,
            dataFormat: "NHWC",
            dilations: c.dilations,
            filterShape: [c.kh, c.kw, c.c, c.co],
          }) as tf.Tensor,
        ];
      });
      const ref = await runOn("cpu", () => {
        const x = tf.tensor4d(xs, [c.n, c.h, c.w, c.c]);
        const dy = tf.tensor4d(dys, out);
        const kh = (c.kh - 1) * d + 1;
        const kw = (c.kw - 1) * d + 1;
        const dense = tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, {
          strides: c.strides,
          pad: c.pad,
          dataFormat: "NHWC",
          filterShape: [kh, kw, c.c, c.co],
        }) as tf.Tensor;
        // Keep every d-th tap: the dilated filter's own taps.
        const rows = tf.gather(dense, tf.range(0, kh, d, "int32"), 0);
        return [tf.gather(rows, tf.range(0, kw, d, "int32"), 1)];
      });
      assertParity(got, ref, describe(c));
    }
    await selectBackend("cpu");
  });

  Deno.test({
    name: `dilated conv2d forward on wasm (${tag}) matches cpu`,
    ignore,
  }, async () => {
    const prng = new Prng(13);
    for (const c of convCases(prng, 4, true)) {
      const xs = randn(prng, c.n * c.h * c.w * c.c);
      const fs = randn(prng, c.kh * c.kw * c.c * c.co);
      const f = () => [
        tf.conv2d(
          tf.tensor4d(xs, [c.n, c.h, c.w, c.c]),
          tf.tensor4d(fs, [c.kh, c.kw, c.c, c.co]),
          c.strides,
          c.pad,
          "NHWC",
          c.dilations,
        ),
      ];
      assertParity(await runOn("wasm", f), await runOn("cpu", f), describe(c));
    }
    await selectBackend("cpu");
  });

  Deno.test({
    name:
      `fused conv2d (bias, relu) and its gradients on wasm (${tag}) match cpu`,
    ignore,
  }, async () => {
    const prng = new Prng(14);
    for (const c of convCases(prng, 4, false)) {
      const xs = randn(prng, c.n * c.h * c.w * c.c);
      const fs = randn(prng, c.kh * c.kw * c.c * c.co);
      const bs = randn(prng, c.co);
      const dys = randn(prng, outShape(c).reduce((a, b) => a * b, 1));
      const f = () => {
        const x = tf.tensor4d(xs, [c.n, c.h, c.w, c.c]);
        const w = tf.tensor4d(fs, [c.kh, c.kw, c.c, c.co]);
        const b = tf.tensor1d(bs);
        const dy = tf.tensor4d(dys, outShape(c));
        const g = tf.grads((x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.mul(
            tf.fused.conv2d({
              x: x as tf.Tensor4D,
              filter: w as tf.Tensor4D,
              strides: c.strides,
              pad: c.pad,
              bias: b,
              activation: "relu",
            }),
            dy,
          ))
        )([x, w, b]);
        return g;
      };
      assertParity(await runOn("wasm", f), await runOn("cpu", f), describe(c));
    }
    await selectBackend("cpu");
  });

  Deno.test({
    name: `depthwise conv2d gradients on wasm (${tag}) match cpu`,
    ignore,
  }, async () => {
    const prng = new Prng(15);
    for (const c of convCases(prng, 6, false)) {
      const mult = 1 + prng.int(3);
      // tfjs's depthwise conv takes equal strides only.
      const s: [number, number] = [c.strides[0], c.strides[0]];
      const pad = typeof c.pad === "string" ? c.pad : "valid";
      const fshape: [number, number, number, number] = [c.kh, c.kw, c.c, mult];
      const xs = randn(prng, c.n * c.h * c.w * c.c);
      const fs = randn(prng, c.kh * c.kw * c.c * mult);
      const f = () => {
        const x = tf.tensor4d(xs, [c.n, c.h, c.w, c.c]);
        const w = tf.tensor4d(fs, fshape);
        return tf.grads((x: tf.Tensor, w: tf.Tensor) =>
          tf.sum(
            tf.square(
              tf.depthwiseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, s, pad),
            ),
          )
        )([x, w]);
      };
      assertParity(await runOn("wasm", f), await runOn("cpu", f), describe(c));
    }
    await selectBackend("cpu");
  });

  Deno.test({
    name: `gather gradient (UnsortedSegmentSum) on wasm (${tag}) matches cpu`,
    ignore,
  }, async () => {
    const prng = new Prng(16);
    const xs = randn(prng, 7 * 5);
    const idx = Array.from({ length: 11 }, () => prng.int(7));
    const f = () => {
      const x = tf.tensor2d(xs, [7, 5]);
      const i = tf.tensor1d(idx, "int32");
      return [
        tf.grad((x: tf.Tensor) => tf.sum(tf.square(tf.gather(x, i))))(x),
        tf.unsortedSegmentSum(
          tf.tensor2d(xs, [7, 5]),
          tf.tensor1d([0, 2, -1, 2, 1, 0, 3], "int32"),
          4,
        ),
      ];
    };
    assertParity(await runOn("wasm", f), await runOn("cpu", f), "gather");
    await selectBackend("cpu");
  });

  Deno.test({
    name: `matMul with transposes on wasm (${tag}) matches cpu`,
    ignore,
  }, async () => {
    const prng = new Prng(17);
    for (
      const [ta, tb] of [[false, false], [true, false], [false, true], [
        true,
        true,
      ]] as const
    ) {
      const [m, k, n] = [3 + prng.int(20), 3 + prng.int(20), 3 + prng.int(20)];
      const as = randn(prng, 2 * m * k);
      const bs = randn(prng, 2 * k * n);
      const f = () => [
        tf.matMul(
          tf.tensor3d(as, ta ? [2, k, m] : [2, m, k]),
          tf.tensor3d(bs, tb ? [2, n, k] : [2, k, n]),
          ta,
          tb,
        ),
        tf.matMul(
          tf.tensor2d(as.subarray(0, m * k), ta ? [k, m] : [m, k]),
          tf.tensor2d(bs.subarray(0, k * n), tb ? [n, k] : [k, n]),
          ta,
          tb,
        ),
      ];
      assertParity(
        await runOn("wasm", f),
        await runOn("cpu", f),
        `matMul ${ta} ${tb}`,
      );
    }
    await selectBackend("cpu");
  });

  Deno.test({
    name: `conv2d gradient on wasm (${tag}) leaks no tensor`,
    ignore,
  }, async () => {
    await selectBackend("wasm", { purpose: "train" });
    const x = tf.randomNormal([2, 9, 9, 3]) as tf.Tensor4D;
    const f = tf.randomNormal([3, 3, 3, 4]) as tf.Tensor4D;
    assertNoLeak(() =>
      tf.grads((x: tf.Tensor, f: tf.Tensor) =>
        tf.sum(tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, 2, "same"))
      )([x, f])
    );
    tf.dispose([x, f]);
    await selectBackend("cpu");
  });
  Deno.test({
    name: `fused and broadcast batched matMul on wasm (${tag}) match cpu`,
    ignore,
  }, async () => {
    const prng = new Prng(22);
    for (
      const [ta, tb] of [[false, false], [true, false], [false, true], [
        true,
        true,
      ]] as const
    ) {
      for (
        const act of [
          "linear",
          "relu",
          "elu",
          "relu6",
          "leakyrelu",
          "sigmoid",
        ] as const
      ) {
        const [m, k, n] = [
          20 + prng.int(40),
          20 + prng.int(40),
          20 + prng.int(40),
        ];
        const as = randn(prng, 3 * m * k);
        const bs = randn(prng, k * n);
        const bias = randn(prng, n);
        const f = () => {
          const a = tf.tensor3d(as, ta ? [3, k, m] : [3, m, k]);
          const b = tf.tensor3d(bs, tb ? [1, n, k] : [1, k, n]);
          const a2 = tf.tensor2d(as.subarray(0, m * k), ta ? [k, m] : [m, k]);
          const b2 = tf.tensor2d(bs, tb ? [n, k] : [k, n]);
          const bi = tf.tensor1d(bias);
          return [
            tf.matMul(a, b, ta, tb),
            tf.fused.matMul({
              a: a2,
              b: b2,
              transposeA: ta,
              transposeB: tb,
              bias: bi,
              activation: act,
            }),
            ...tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
              tf.sum(
                tf.square(
                  tf.fused.matMul({
                    a: a as tf.Tensor2D,
                    b: b as tf.Tensor2D,
                    transposeA: ta,
                    transposeB: tb,
                    bias: c,
                    activation: act === "relu" ? "relu" : "linear",
                  }),
                ),
              )
            )([a2, b2, bi]),
          ];
        };
        assertParity(
          await runOn("wasm", f),
          await runOn("cpu", f),
          `matMul ${ta} ${tb} ${act}`,
        );
      }
    }
    await selectBackend("cpu");
  });

  Deno.test({
    name:
      `maxPool gradient, tile, and per-channel sum/mean on wasm (${tag}) match cpu`,
    ignore,
  }, async () => {
    const prng = new Prng(19);
    for (let i = 0; i < 6; i++) {
      const [n, h, w, c] = [
        1 + prng.int(3),
        4 + prng.int(9),
        4 + prng.int(9),
        1 + prng.int(9),
      ];
      const k = 1 + prng.int(3);
      const s = 1 + prng.int(3);
      const pad = (["same", "valid", 1] as const)[i % 3]!;
      const xs = randn(prng, n * h * w * c);
      const f = () => {
        const x = tf.tensor4d(xs, [n, h, w, c]);
        const v = tf.tensor1d(xs.subarray(0, c));
        return [
          tf.grad((x: tf.Tensor) =>
            tf.sum(
              tf.square(
                tf.maxPool(
                  x as tf.Tensor4D,
                  k,
                  s,
                  pad === 1 && k < 3 ? 0 : pad,
                ),
              ),
            )
          )(x),
          tf.tile(tf.reshape(v, [1, 1, 1, c]), [n, h, w, 1]),
          tf.tile(x, [2, 1, 3, 1]),
          tf.sum(x, [0, 1, 2]),
          tf.sum(x, [2, 0, 1], true),
          tf.mean(x, [0, 1, 2]),
          tf.mean(x, [1, 2]),
          tf.sum(tf.reshape(x, [-1, c]), 0),
        ];
      };
      assertParity(
        await runOn("wasm", f),
        await runOn("cpu", f),
        `pool/tile/sum ${[n, h, w, c, k, s, pad]}`,
      );
    }
    await selectBackend("cpu");
  });

  Deno.test(
    { name: `reverse and slice on wasm (${tag}) match cpu`, ignore },
    async () => {
      const prng = new Prng(20);
      for (let i = 0; i < 8; i++) {
        const shape = [
          1 + prng.int(4),
          1 + prng.int(5),
          1 + prng.int(5),
          1 + prng.int(6),
        ];
        const xs = randn(prng, shape.reduce((a, b) => a * b, 1));
        const dims = [[0, 1], [3], [1, 2], [0, 3], [2]][i % 5]!;
        const begin = shape.map((d) => prng.int(d));
        const size = shape.map((
          d,
          j,
        ) => (prng.next() < 0.3 ? -1 : 1 + prng.int(d - begin[j]!)));
        const f = () => {
          const x = tf.tensor(xs, shape);
          return [
            tf.reverse(x, dims),
            tf.slice(x, begin, size),
            tf.slice(tf.reshape(x, [-1]), [1], [Math.max(0, xs.length - 2)]),
            tf.reverse(tf.cast(x, "int32"), [1]),
            tf.transpose(tf.reshape(tf.range(0, 2 * 40 * 33), [2, 40, 33]), [
              0,
              2,
              1,
            ]),
            tf.transpose(tf.tile(x, [1, 1, 5, 4]), [0, 1, 3, 2]),
            tf.transpose(
              tf.reshape(tf.tile(x, [1, 1, 5, 4]), [-1, 20 * shape[3]!]),
              [1, 0],
            ),
          ];
        };
        assertParity(
          await runOn("wasm", f),
          await runOn("cpu", f),
          `reverse/slice ${shape} ${dims} ${begin} ${size}`,
        );
      }
      await selectBackend("cpu");
    },
  );

  Deno.test(
    { name: `concat and split on wasm (${tag}) match cpu`, ignore },
    async () => {
      const prng = new Prng(31);
      for (let i = 0; i < 8; i++) {
        const shape = [
          1 + prng.int(3),
          1 + prng.int(4),
          1 + prng.int(5),
          1 + prng.int(70),
        ];
        const axis = i % 4;
        const other = [...shape];
        other[axis] = 1 + prng.int(3);
        const empty = [...shape];
        empty[axis] = 0;
        const xs = randn(prng, shape.reduce((a, b) => a * b, 1));
        const ys = randn(prng, other.reduce((a, b) => a * b, 1));
        const f = () => {
          const x = tf.tensor(xs, shape);
          const y = tf.tensor(ys, other);
          const both = tf.concat([x, tf.zeros(empty), y, x], axis);
          const n = both.shape[axis]!;
          return [
            both,
            tf.concat([tf.cast(x, "int32"), tf.cast(y, "int32")], axis - 4),
            ...tf.split(both, [1, -1, n > 2 ? 1 : 0], axis),
            ...tf.split(tf.cast(both, "int32"), [n - 1, 1], axis),
            ...tf.split(x, shape[axis] === 1 ? 1 : [1, shape[axis]! - 1], axis),
            // The gradient of a concat is a split, and of a split a concat.
            tf.grad((v: tf.Tensor) =>
              tf.sum(tf.mul(tf.concat([v, y, v], axis), 1.5))
            )(x),
            tf.grad((v: tf.Tensor) => {
              const [p, q] = tf.split(v, [1, -1], axis);
              return tf.add(tf.sum(tf.mul(p!, 2)), tf.sum(tf.square(q!)));
            })(tf.concat([x, y], axis)),
          ];
        };
        assertParity(
          await runOn("wasm", f),
          await runOn("cpu", f),
          `concat/split ${shape} axis ${axis}`,
        );
      }
      await selectBackend("cpu");
    },
  );

  Deno.test(
    {
      name: `clone on wasm (${tag}) shares memory until both are gone`,
      ignore,
    },
    async () => {
      await selectBackend("wasm", { purpose: "train" });
      const before = tf.memory();
      const a = tf.tensor([1, 2, 3, 4], [2, 2]);
      const i = tf.tensor([5, 6], [2], "int32");
      const b = a.clone();
      const j = tf.clone(i);
      // One more tensor each, no new buffer: the clone is a reference.
      assert.equal(tf.memory().numTensors, before.numTensors + 4);
      assert.equal(tf.memory().numDataBuffers, before.numDataBuffers + 2);
      a.dispose();
      i.dispose();
      assert.deepEqual([...await b.data()], [1, 2, 3, 4]);
      assert.deepEqual(b.shape, [2, 2]);
      assert.deepEqual([...await j.data()], [5, 6]);
      assert.equal(j.dtype, "int32");
      // An op on the clone leaves the memory it shared alone.
      const c = tf.tensor([7, 8, 9, 10], [2, 2]);
      const d = c.clone();
      const e = tf.add(d, 1);
      assert.deepEqual([...await c.data()], [7, 8, 9, 10]);
      assert.deepEqual([...await e.data()], [8, 9, 10, 11]);
      tf.dispose([b, j, c, d, e]);
      assert.equal(tf.memory().numTensors, before.numTensors);
      assert.equal(tf.memory().numDataBuffers, before.numDataBuffers);
      // Strings keep upstream's copy.
      const t = tf.tensor(["x"]);
      const u = t.clone();
      t.dispose();
      assert.deepEqual(await u.data(), ["x"]);
      u.dispose();
      await selectBackend("cpu");
    },
  );

  Deno.test({
    name: `per-channel sum/mean of large tensors on wasm (${tag}) match cpu`,
    ignore,
  }, async () => {
    const prng = new Prng(23);
    const xs = randn(prng, 4 * 16 * 16 * 70);
    const f = () => {
      const x = tf.tensor4d(xs, [4, 16, 16, 70]);
      return [
        tf.sum(x, [0, 1, 2]),
        tf.mean(x, [0, 1, 2], true),
        tf.sum(tf.reshape(x, [-1, 70]), 0),
        tf.mean(x, [1, 2]),
      ];
    };
    assertParity(
      await runOn("wasm", f),
      await runOn("cpu", f),
      "large sum/mean",
      1e-4,
    );
    await selectBackend("cpu");
  });
}

/**
 * Registers the parity test of Conv2DBackpropInput and Conv2DBackpropFilter
 * given a `dilations` attribute (which the kernels patched over wasm honour)
 * against the dense equivalent filter on cpu, labelled `tag`.
 */
export function registerDilatedGradTest(tag: string, ignore: boolean): void {
  Deno.test({
    name:
      `dilated Conv2DBackpropInput and Filter on wasm (${tag}) match the dense equivalent filter on cpu`,
    ignore,
  }, async () => {
    const prng = new Prng(21);
    for (const c of convCases(prng, 6, true)) {
      const [d] = c.dilations;
      const out = outShape(c);
      const dys = randn(prng, out.reduce((a, b) => a * b, 1));
      const xs = randn(prng, c.n * c.h * c.w * c.c);
      const fs = randn(prng, c.kh * c.kw * c.c * c.co);
      const kh = (c.kh - 1) * d + 1;
      const kw = (c.kw - 1) * d + 1;
      const got = await runOn("wasm", () => {
        const x = tf.tensor4d(xs, [c.n, c.h, c.w, c.c]);
        const dy = tf.tensor4d(dys, out);
        const f = tf.tensor4d(fs, [c.kh, c.kw, c.c, c.co]);
        const common = {
          strides: c.strides,
          pad: c.pad,
          dataFormat: "NHWC",
          dilations: c.dilations,
        };
        return [
          tf.engine().runKernel("Conv2DBackpropInput", { dy, filter: f }, {
            ...common,
            inputShape: [c.n, c.h, c.w, c.c],
          }) as tf.Tensor,
          tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, {
            ...common,
            filterShape: [c.kh, c.kw, c.c, c.co],
          }) as tf.Tensor,
        ];
      });
      const ref = await runOn("cpu", () => {
        const x = tf.tensor4d(xs, [c.n, c.h, c.w, c.c]);
        const dy = tf.tensor4d(dys, out);
        // The dense filter: the dilated taps with zeros between them.
        const f = tf.tensor4d(fs, [c.kh, c.kw, c.c, c.co]);
        const dense = tf.buffer([kh, kw, c.c, c.co]);
        const fv = f.dataSync();
        for (let i = 0; i < fv.length; i++) {
          const co = i % c.co;
          const ci = Math.floor(i / c.co) % c.c;
          const kx = Math.floor(i / (c.co * c.c)) % c.kw;
          const ky = Math.floor(i / (c.co * c.c * c.kw));
          dense.set(fv[i]!, ky * d, kx * d, ci, co);
        }
        const common = { strides: c.strides, pad: c.pad, dataFormat: "NHWC" };
        const dw = tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, {
          ...common,
          filterShape: [kh, kw, c.c, c.co],
        }) as tf.Tensor;
        const rows = tf.gather(dw, tf.range(0, kh, d, "int32"), 0);
        return [
          tf.engine().runKernel("Conv2DBackpropInput", {
            dy,
            filter: dense.toTensor(),
          }, { ...common, inputShape: [c.n, c.h, c.w, c.c] }) as tf.Tensor,
          tf.gather(rows, tf.range(0, kw, d, "int32"), 1),
        ];
      });
      assertParity(got, ref, `dilated ${JSON.stringify(c)}`);
    }
    await selectBackend("cpu");
  });
}
