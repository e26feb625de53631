import "./_setup.ts";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  countParameters,
  createDeepLab,
  createEncoder,
} from "../../models/mod.ts";
import { assertAlmostEquals, assertNoLeak, testOnBackends } from "../_utils.ts";

const TINY = {
  depth: 18,
  inChannels: 2,
  stem: "cifar",
  widthMultiplier: 0.125,
  asppChannels: 8,
  seed: 2,
} as const;

Deno.test("createDeepLab() names the head as torchvision's DeepLabHead and counts the paper's head", () => {
  const net = createDeepLab({ ...TINY, nClasses: 3 });
  const c = net.encoder.featureChannels; // 64
  const shape = (k: string) => (net.params[k] ?? net.state[k])?.shape;
  assert.deepEqual(shape("backbone.conv1.weight"), [3, 3, 2, 8]);
  assert.deepEqual(shape("classifier.0.convs.0.0.weight"), [1, 1, c, 8]);
  assert.deepEqual(shape("classifier.0.convs.1.0.weight"), [3, 3, c, 8]);
  assert.deepEqual(shape("classifier.0.convs.3.1.running_var"), [8]);
  assert.deepEqual(shape("classifier.0.convs.4.1.weight"), [1, 1, c, 8]); // image pooling
  assert.deepEqual(shape("classifier.0.convs.4.2.num_batches_tracked"), []);
  assert.deepEqual(shape("classifier.0.project.0.weight"), [1, 1, 5 * 8, 8]);
  assert.deepEqual(shape("classifier.1.weight"), [1, 1, 8, 3]);
  assert.deepEqual(shape("classifier.1.bias"), [3]);
  // 1×1 + three 3×3 + pooling branches, projection, final conv; BN γ/β on
  // the five branches and the projection.
  const head = c * 8 + 3 * 9 * c * 8 + c * 8 + 5 * 8 * 8 + 6 * 2 * 8 + 8 * 3 +
    3;
  assert.equal(countParameters(net) - countParameters(net.encoder), head);
  assert.equal(net.decoderVariables().reduce((n, v) => n + v.size, 0), head);
  net.dispose();
});

Deno.test("createDeepLab() returns logits at the input size, with and without the low-level skip", () => {
  for (
    const opts of [
      { ...TINY },
      { ...TINY, stem: "imagenet", outputStride: 16 },
      { ...TINY, lowLevelSkip: true, lowLevelChannels: 4 },
      { ...TINY, stem: "imagenet", lowLevelSkip: true, alignCorners: false },
      { ...TINY, lowLevelSkip: true, lowLevelSource: "stem" },
      { ...TINY, depth: 50, lowLevelSkip: true, lowLevelSource: "stem" },
    ] as const
  ) {
    const net = createDeepLab(opts);
    const x = tf.randomNormal(
      [2, 32, 32, 2],
      0,
      1,
      "float32",
      1,
    ) as tf.Tensor4D;
    for (const training of [false, true]) {
      const y = net.apply(x, { training });
      assert.deepEqual(y.shape, [2, 32, 32, 2], JSON.stringify(opts));
      y.dispose();
    }
    if ((opts as { lowLevelSkip?: boolean }).lowLevelSkip) {
      assert.ok(
        "decoder.low.0.weight" in net.params &&
          "decoder.fuse.1.weight" in net.params,
      );
      // The skip's 1×1 conv reads the width of its source.
      const source = (opts as { lowLevelSource?: string }).lowLevelSource;
      assert.equal(net.config.lowLevelSource, source ?? "layer1");
      assert.equal(
        net.params["decoder.low.0.weight"]!.shape[2],
        source === "stem"
          ? net.encoder.stemChannels
          : net.encoder.lowLevelChannels,
      );
    }
    x.dispose();
    net.dispose();
  }
});

Deno.test("createDeepLab({ encoder }) shares the trained encoder's variables", () => {
  const encoder = createEncoder({
    depth: 18,
    inChannels: 2,
    stem: "cifar",
    widthMultiplier: 0.125,
  });
  const net = createDeepLab({
    encoder,
    asppChannels: 8,
    depth: 18,
    stem: "cifar",
  });
  assert.equal(net.encoder, encoder);
  assert.equal(
    net.params["backbone.layer1.0.conv1.weight"],
    encoder.params["layer1.0.conv1.weight"],
  );
  assert.equal(
    net.state["backbone.bn1.running_mean"],
    encoder.state["bn1.running_mean"],
  );
  assert.throws(() => createDeepLab({ encoder, depth: 50 }), {
    name: "RangeError",
    message:
      "Cannot createDeepLab as 'depth' is 50 but the given encoder has depth 18",
  });
  net.dispose();
  assert.ok(encoder.params["conv1.weight"]!.isDisposed);
  encoder.dispose(); // disposing twice is harmless
});

Deno.test("createDeepLab() seeds the decoder independently of where the encoder came from", async () => {
  const a = createDeepLab({ ...TINY, seed: 5 });
  const b = createDeepLab({
    ...TINY,
    seed: 5,
    encoder: createEncoder({ ...TINY, seed: 99 }),
  });
  const k = "classifier.0.convs.1.0.weight";
  assert.deepEqual(await a.params[k]!.data(), await b.params[k]!.data());
  assert.notDeepEqual(
    await a.params["backbone.conv1.weight"]!.data(),
    await b.params["backbone.conv1.weight"]!.data(),
  );
  a.dispose();
  b.dispose();
});

testOnBackends(
  "a frozen-encoder step trains only the decoder and keeps the tensor count flat",
  async () => {
    const net = createDeepLab({ ...TINY, lowLevelSkip: true });
    const x = tf.randomNormal(
      [2, 16, 16, 2],
      0,
      1,
      "float32",
      3,
    ) as tf.Tensor4D;
    const y = tf.oneHot(
      tf.cast(
        tf.greater(
          x.slice([0, 0, 0, 0], [2, 16, 16, 1]).reshape([2, 16, 16]),
          0,
        ),
        "int32",
      ),
      2,
    );
    const snapshot = async (vars: Record<string, tf.Variable>) =>
      Object.fromEntries(
        await Promise.all(
          Object.entries(vars).map(async ([k, v]) => [k, await v.data()]),
        ),
      );
    const before = await snapshot({ ...net.params, ...net.state });
    const opt = tf.train.adam(1e-2);
    const counts: number[] = [];
    const losses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const loss = opt.minimize(
        () =>
          tf.losses.softmaxCrossEntropy(
            y,
            net.apply(x, { training: true, freezeEncoder: true }),
          ),
        true,
        net.decoderVariables(),
      )!;
      losses.push((await loss.data())[0]!);
      loss.dispose();
      counts.push(tf.memory().numTensors);
    }
    assert.equal(counts[4], counts[1], `numTensors per step: ${counts}`);
    assert.ok(losses[4]! < losses[0]!, `loss did not fall: ${losses}`);
    const after = await snapshot({ ...net.params, ...net.state });
    for (const k of Object.keys(before)) {
      const same = String(before[k]) === String(after[k]);
      assert.equal(
        same,
        k.startsWith("backbone."),
        `${k} ${same ? "unchanged" : "changed"}`,
      );
    }
    opt.dispose();
    tf.dispose([x, y]);
    net.dispose();
    // WebGPU on this machine's software adapter spends over a minute compiling
    // shaders for this network; its gradients are covered by atrous_test.ts.
  },
  { purpose: "train", backends: ["cpu", "wasm"] },
);

Deno.test("freezeEncoder runs the encoder in eval mode, off the gradient tape", async () => {
  for (const lowLevelSkip of [false, true]) {
    const net = createDeepLab({ ...TINY, lowLevelSkip });
    const x = tf.randomNormal(
      [2, 16, 16, 2],
      0,
      1,
      "float32",
      6,
    ) as tf.Tensor4D;
    tf.dispose(net.apply(x, { training: true })); // non-trivial running statistics
    const frozen = net.apply(x, { freezeEncoder: true });
    const plain = net.apply(x);
    assertAlmostEquals(await frozen.data(), await plain.data(), 1e-6);
    const dx = tf.grad((a: tf.Tensor) =>
      net.apply(a as tf.Tensor4D, { training: true, freezeEncoder: true }).sum()
    )(x);
    assert.equal((await tf.max(tf.abs(dx)).data())[0], 0);
    const { grads, value } = tf.variableGrads(
      () =>
        net.apply(x, { training: true, freezeEncoder: true })
          .sum() as tf.Scalar,
      net.decoderVariables(),
    );
    assert.equal(Object.keys(grads).length, net.decoderVariables().length);
    tf.dispose([x, frozen, plain, dx, value, ...Object.values(grads)]);
    net.dispose();
  }
});

Deno.test("a full DeepLab training step reaches every parameter", async () => {
  const net = createDeepLab({
    ...TINY,
    outputStride: 2,
    asppRates: [1, 2, 18],
  });
  const x = tf.randomNormal([2, 16, 16, 2], 0, 1, "float32", 4) as tf.Tensor4D;
  const { grads, value } = tf.variableGrads(
    () => tf.sum(tf.square(net.apply(x, { training: true }))),
    net.trainableVariables(),
  );
  const names = new Map(
    Object.entries(net.params).map(([k, v]) => [v.name, k]),
  );
  for (const [id, g] of Object.entries(grads)) {
    assert.ok(
      (await tf.sum(tf.abs(g)).data())[0]! > 0,
      `no gradient reaches ${names.get(id)}`,
    );
  }
  assert.equal(Object.keys(grads).length, Object.keys(net.params).length);
  tf.dispose([value, ...Object.values(grads), x]);
  net.dispose();
});

Deno.test("the image-pooling branch is constant over space and upsampling aligns corners", async () => {
  const net = createDeepLab({ ...TINY, stem: "imagenet" }); // 32×32 → 1×1 features
  const x = tf.randomNormal([1, 32, 32, 2], 0, 1, "float32", 5) as tf.Tensor4D;
  // A 1×1 feature map gives logits constant over the image.
  const y = await net.apply(x).data();
  assertAlmostEquals(
    y.filter((_, i) => i % 2 === 0),
    Array(32 * 32).fill(y[0]),
    1e-5,
  );
  x.dispose();
  net.dispose();
});

Deno.test("DeepLab apply leaves no tensors behind", () => {
  const net = createDeepLab({ ...TINY, lowLevelSkip: true });
  const x = tf.zeros([1, 16, 16, 2]) as tf.Tensor4D;
  assertNoLeak(() => net.apply(x));
  assertNoLeak(() => net.apply(x, { training: true }));
  assertNoLeak(() => net.apply(x, { training: true, freezeEncoder: true }));
  x.dispose();
  net.dispose();
});

Deno.test("createDeepLab() rejects bad options, naming them", () => {
  assert.throws(() => createDeepLab({ ...TINY, nClasses: 0 }), {
    name: "RangeError",
    message:
      "Cannot createDeepLab as 'nClasses' must be a positive integer: current value is 0",
  });
  assert.throws(() => createDeepLab({ ...TINY, asppRates: [6, 0] }), {
    name: "RangeError",
    message:
      "Cannot createDeepLab as 'asppRates' must be positive integers: current value is [6,0]",
  });
  assert.throws(
    () =>
      createDeepLab({
        ...TINY,
        lowLevelSkip: true,
        lowLevelSource: "layer2" as "stem",
      }),
    {
      name: "RangeError",
      message:
        'Cannot createDeepLab as \'lowLevelSource\' must be "layer1" or "stem": current value is "layer2"',
    },
  );
});
