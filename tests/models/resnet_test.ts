import "./_setup.ts";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { countParameters, createEncoder } from "../../models/mod.ts";
import { convBn, disposeAll, ParamBuilder } from "../../models/_layers.ts";
import { Prng } from "../../random/mod.ts";
import {
  assertAlmostEquals,
  assertNoLeak,
  testOnBackends,
  tolerance,
} from "../_utils.ts";

const TINY = {
  depth: 18,
  inChannels: 2,
  widthMultiplier: 0.125,
  seed: 1,
} as const;

Deno.test("createEncoder() has torchvision's parameter counts (no fc)", () => {
  // torchvision: resnet50 25,557,032 − fc 2,049,000; resnet18 11,689,512 − 513,000.
  for (
    const [depth, expected] of [[50, 23_508_032], [18, 11_176_512], [
      34,
      21_284_672,
    ]] as const
  ) {
    const e = createEncoder({ depth, inChannels: 3 });
    assert.equal(countParameters(e), expected, `ResNet-${depth}`);
    e.dispose();
  }
});

Deno.test("createEncoder() names and shapes variables as torchvision (HWIO inside)", () => {
  const e = createEncoder({ depth: 50, inChannels: 2, widthMultiplier: 0.25 });
  const shape = (k: string) => (e.params[k] ?? e.state[k])?.shape;
  assert.deepEqual(shape("conv1.weight"), [7, 7, 2, 16]);
  assert.deepEqual(shape("bn1.running_mean"), [16]);
  assert.deepEqual(shape("layer1.0.conv1.weight"), [1, 1, 16, 16]);
  assert.deepEqual(shape("layer1.0.downsample.0.weight"), [1, 1, 16, 64]);
  assert.deepEqual(shape("layer2.0.conv2.weight"), [3, 3, 32, 32]);
  assert.deepEqual(shape("layer4.2.bn3.num_batches_tracked"), []);
  assert.equal(e.state["layer4.2.bn3.num_batches_tracked"]!.dtype, "int32");
  assert.equal(e.featureChannels, 512);
  assert.equal(e.lowLevelChannels, 64);
  // 4 stages of [3, 4, 6, 3] bottlenecks, 3 convs each, + stem + 4 downsamples.
  const convs = Object.keys(e.params).filter((k) =>
    /conv\d\.weight$|downsample\.0\.weight$/.test(k)
  );
  assert.equal(convs.length, 1 + 16 * 3 + 4);
  assert.equal(Object.keys(e.state).length, 3 * (1 + 16 * 3 + 4));
  e.dispose();
});

Deno.test("createEncoder() initialises convs He-normal (fan-out) and BN as torchvision", async () => {
  const e = createEncoder({ depth: 18, inChannels: 3, seed: 7 });
  const w = await e.params["layer3.1.conv2.weight"]!.data() as Float32Array; // 3×3, 256 → 256
  const mean = w.reduce((a, b) => a + b, 0) / w.length;
  const std = Math.sqrt(w.reduce((a, b) => a + (b - mean) ** 2, 0) / w.length);
  assertAlmostEquals(
    std,
    Math.sqrt(2 / (256 * 9)),
    0.02 * Math.sqrt(2 / (256 * 9)),
  );
  assert.ok(Math.abs(mean) < 1e-3);
  assert.deepEqual(
    Array.from(await e.params["bn1.weight"]!.data()),
    Array(64).fill(1),
  );
  assert.deepEqual(
    Array.from(await e.state["bn1.running_var"]!.data()),
    Array(64).fill(1),
  );
  const again = createEncoder({ depth: 18, inChannels: 3, seed: 7 });
  const other = createEncoder({ depth: 18, inChannels: 3, seed: 8 });
  assert.deepEqual(await again.params["layer3.1.conv2.weight"]!.data(), w);
  assert.notDeepEqual(await other.params["layer3.1.conv2.weight"]!.data(), w);
  [e, again, other].forEach((m) => m.dispose());
});

Deno.test("createEncoder() gives the output stride asked for, per stem", () => {
  for (
    const [stem, os, size, expected] of [
      ["imagenet", 32, 64, 2],
      ["imagenet", 16, 64, 4],
      ["imagenet", 8, 64, 8],
      ["imagenet", 4, 64, 16],
      ["cifar", 8, 32, 4],
      ["cifar", 4, 32, 8],
      ["cifar", 2, 32, 16],
      ["cifar", 1, 32, 32],
    ] as const
  ) {
    const e = createEncoder({ ...TINY, stem, outputStride: os });
    const x = tf.zeros([1, size, size, 2]) as tf.Tensor4D;
    const { features, pooled, lowLevel } = e.apply(x, { lowLevel: true });
    assert.deepEqual(
      features.shape,
      [1, expected, expected, e.featureChannels],
      `${stem} ${os}`,
    );
    assert.deepEqual(pooled.shape, [1, e.featureChannels]);
    assert.equal(lowLevel!.shape[1], stem === "imagenet" ? size / 4 : size);
    tf.dispose([x, features, pooled, lowLevel!]);
    e.dispose();
  }
});

Deno.test("encoder apply returns the stem's or layer1's output as low-level features", async () => {
  for (const depth of [18, 50] as const) {
    const e = createEncoder({ ...TINY, depth, stem: "cifar" });
    const x = tf.randomNormal(
      [1, 16, 16, 2],
      0,
      1,
      "float32",
      3,
    ) as tf.Tensor4D;
    const a = e.apply(x, { lowLevel: "stem" });
    const b = e.apply(x, { lowLevel: "layer1" });
    const c = e.apply(x, { lowLevel: true });
    assert.deepEqual(a.lowLevel!.shape, [1, 16, 16, e.stemChannels]);
    assert.deepEqual(b.lowLevel!.shape, [1, 16, 16, e.lowLevelChannels]);
    assert.equal(e.stemChannels, 8);
    assert.equal(e.lowLevelChannels, depth === 50 ? 32 : 8);
    // true is layer1; the stem's output is a different map.
    assert.deepEqual(await b.lowLevel!.data(), await c.lowLevel!.data());
    assert.notDeepEqual(await a.lowLevel!.data(), await b.lowLevel!.data());
    // The stem's output is conv1 → BN (eval) → ReLU of the input.
    const stem = tf.tidy(() => {
      const w = e.params["conv1.weight"]!;
      const g = e.params["bn1.weight"]!;
      const beta = e.params["bn1.bias"]!;
      const mean = e.state["bn1.running_mean"]!;
      const v = e.state["bn1.running_var"]!;
      const y = tf.conv2d(x, w as tf.Tensor4D, 1, "same");
      return tf.relu(tf.batchNorm(y, mean, v, beta, g, 1e-5));
    });
    const got = await a.lowLevel!.data();
    const want = await stem.data();
    for (let i = 0; i < want.length; i++) {
      assert.ok(Math.abs(got[i]! - want[i]!) < 1e-4, `element ${i}`);
    }
    tf.dispose([x, a, b, c, stem]);
    e.dispose();
  }
});

Deno.test("encoder training mode updates BN running statistics as PyTorch (momentum 0.1, unbiased)", async () => {
  const e = createEncoder({ ...TINY, stem: "cifar" });
  const x = tf.randomNormal([2, 8, 8, 2], 0, 1, "float32", 3) as tf.Tensor4D;
  tf.dispose(e.apply(x, { training: true }));
  const y = tf.conv2d(x, e.params["conv1.weight"] as tf.Tensor4D, 1, "same");
  const { mean, variance } = tf.moments(y, [0, 1, 2]);
  const n = 2 * 8 * 8;
  const expectedMean = (await mean.data()).map((m) => 0.1 * m);
  const expectedVar = (await variance.data()).map((v) =>
    0.9 + 0.1 * v * n / (n - 1)
  );
  assertAlmostEquals(
    await e.state["bn1.running_mean"]!.data(),
    expectedMean,
    1e-5,
  );
  assertAlmostEquals(
    await e.state["bn1.running_var"]!.data(),
    expectedVar,
    1e-5,
  );
  assert.equal((await e.state["bn1.num_batches_tracked"]!.data())[0], 1);
  // Eval mode reads the statistics and leaves them alone.
  const before = await e.state["layer1.0.bn1.running_mean"]!.data();
  tf.dispose(e.apply(x, { training: false }));
  assert.deepEqual(await e.state["layer1.0.bn1.running_mean"]!.data(), before);
  tf.dispose([x, y, mean, variance]);
  e.dispose();
});

Deno.test("convBn() eval mode (BN folded into the conv) equals conv → BN → ReLU", async () => {
  const b = new ParamBuilder(new Prng(1));
  const x = tf.randomNormal([2, 9, 9, 3], 0, 1, "float32", 4) as tf.Tensor4D;
  for (
    const [k, stride, dilation] of [
      [3, 1, 1],
      [3, 2, 1],
      [7, 2, 1],
      [3, 1, 2],
      [1, 2, 1],
    ] as const
  ) {
    const unit = b.convBn(
      `c${k}${stride}${dilation}`,
      `b${k}${stride}${dilation}`,
      { k, cin: 3, cout: 4, stride, dilation },
    );
    unit.bn.runningMean.assign(tf.randomNormal([4], 0, 1, "float32", 5));
    unit.bn.runningVar.assign(tf.randomUniform([4], 0.5, 2, "float32", 6));
    unit.bn.gamma.assign(tf.randomUniform([4], 0.5, 2, "float32", 7));
    const folded = convBn(x, unit, { training: false, relu: true });
    // PyTorch's padding written out: dilation·(k−1)/2 on every side.
    const p = (dilation * (k - 1)) / 2;
    const y = tf.conv2d(
      tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]]),
      unit.weight as tf.Tensor4D,
      stride,
      "valid",
      "NHWC",
      dilation,
    );
    const ref = tf.relu(
      tf.batchNorm(
        y,
        unit.bn.runningMean,
        unit.bn.runningVar,
        unit.bn.beta,
        unit.bn.gamma,
        1e-5,
      ),
    );
    assert.deepEqual(folded.shape, ref.shape);
    assertAlmostEquals(
      await folded.data(),
      await ref.data(),
      1e-4,
      `k ${k} stride ${stride} dilation ${dilation}`,
    );
    tf.dispose([folded, y, ref]);
  }
  disposeAll(b.params, b.state);
  x.dispose();
});

Deno.test("encoder training steps keep the tensor count flat and reach every parameter", async () => {
  const e = createEncoder({ ...TINY, stem: "cifar", outputStride: 2 }); // dilated layer3/4
  const x = tf.randomNormal([2, 8, 8, 2], 0, 1, "float32", 5) as tf.Tensor4D;
  const vars = e.trainableVariables();
  const { grads, value } = tf.variableGrads(() => {
    const { pooled } = e.apply(x, { training: true });
    return tf.sum(tf.square(pooled));
  }, vars);
  for (const v of vars) {
    const g = grads[v.name]!;
    const absSum = (await tf.sum(tf.abs(g)).data())[0]!;
    assert.ok(
      absSum > 0,
      `no gradient reaches ${
        Object.keys(e.params).find((k) => e.params[k] === v)
      }`,
    );
  }
  tf.dispose([value, ...Object.values(grads)]);
  const opt = tf.train.sgd(0.01);
  const counts: number[] = [];
  for (let i = 0; i < 6; i++) {
    tf.dispose(
      opt.minimize(
        () => tf.sum(tf.square(e.apply(x, { training: true }).pooled)),
        true,
        vars,
      )!,
    );
    counts.push(tf.memory().numTensors);
  }
  assert.equal(counts[5], counts[1], `numTensors per step: ${counts}`);
  opt.dispose();
  x.dispose();
  e.dispose();
});

testOnBackends(
  "encoder forward agrees with the cpu backend",
  async (backend) => {
    // Build and compute the reference on cpu first: data moves to the backend
    // under test, never back (WebGPU cannot be read synchronously).
    await tf.setBackend("cpu");
    const e = createEncoder({
      ...TINY,
      depth: 50,
      stem: "imagenet",
      outputStride: 8,
      widthMultiplier: 0.0625,
    });
    const x = tf.randomNormal(
      [2, 32, 32, 2],
      0,
      1,
      "float32",
      6,
    ) as tf.Tensor4D;
    const ref = e.apply(x);
    const want = await ref.pooled.data();
    tf.dispose(ref);
    await tf.setBackend(backend);
    const { features, pooled } = e.apply(x);
    assertAlmostEquals(await pooled.data(), want, 100 * tolerance(backend));
    tf.dispose([features, pooled, x]);
    e.dispose();
  },
);

Deno.test("encoder apply leaves no tensors behind", () => {
  const e = createEncoder({ ...TINY, outputStride: 8 });
  const x = tf.zeros([1, 32, 32, 2]) as tf.Tensor4D;
  assertNoLeak(() => e.apply(x));
  assertNoLeak(() => e.apply(x, { training: true, lowLevel: true }));
  x.dispose();
  e.dispose();
  assert.equal(e.params["conv1.weight"]!.isDisposed, true);
});

Deno.test("createEncoder() rejects bad options and inputs, naming them", () => {
  assert.throws(() => createEncoder({ depth: 20 as 18 }), {
    name: "RangeError",
    message:
      "Cannot createEncoder as 'depth' must be 18, 34, 50 or 101: current value is 20",
  });
  assert.throws(() => createEncoder({ stem: "cifar", outputStride: 16 }), {
    name: "RangeError",
    message:
      /'outputStride' must be 8, 4, 2, 1 with the "cifar" stem: current value is 16/,
  });
  assert.throws(() => createEncoder({ widthMultiplier: 0 }), {
    name: "RangeError",
    message: /'widthMultiplier'/,
  });
  assert.throws(() => createEncoder({ inChannels: 1.5 }), {
    name: "RangeError",
    message: /'inChannels'/,
  });
  const e = createEncoder(TINY);
  const x = tf.zeros([1, 16, 16, 3]) as tf.Tensor4D;
  assert.throws(() => e.apply(x), {
    name: "TypeError",
    message:
      "Cannot apply encoder as 'x' must be [batch, height, width, 2]: current shape is [1,16,16,3]",
  });
  x.dispose();
  e.dispose();
});
