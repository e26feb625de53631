/**
 * The resize gradient kernels backends/ registers (`_resize_grad.ts`) on
 * non-square images: against PyTorch (testdata/resize_grad_reference.json),
 * against central finite differences of each backend's own forward kernel in
 * all three modes, for leaks, and a DeepLabv3+ training step whose low-level
 * skip resizes a non-square feature map (upstream's cpu kernel threw there).
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  accumulateResizeGrad,
  axisTaps,
  type ResizeMode,
} from "../../backends/_resize_grad.ts";
import { createDeepLab } from "../../models/mod.ts";
import {
  assertAlmostEquals,
  assertNoLeakAsync,
  testOnBackends,
  tolerance,
} from "../_utils.ts";

interface Case {
  mode: string;
  shape: [number, number, number, number];
  size: [number, number];
  y: number[];
  dx: number[];
}

const REFERENCE: { cases: Case[] } = JSON.parse(
  await Deno.readTextFile(
    new URL("./testdata/resize_grad_reference.json", import.meta.url),
  ),
);

const MODES: Record<string, ResizeMode> = {
  "bilinear-legacy": {
    nearest: false,
    alignCorners: false,
    halfPixelCenters: false,
  },
  "bilinear-alignCorners": {
    nearest: false,
    alignCorners: true,
    halfPixelCenters: false,
  },
  "bilinear-halfPixelCenters": {
    nearest: false,
    alignCorners: false,
    halfPixelCenters: true,
  },
  "nearest-legacy": {
    nearest: true,
    alignCorners: false,
    halfPixelCenters: false,
  },
  "nearest-alignCorners": {
    nearest: true,
    alignCorners: true,
    halfPixelCenters: false,
  },
  "nearest-halfPixelCenters": {
    nearest: true,
    alignCorners: false,
    halfPixelCenters: true,
  },
};

function resize(
  x: tf.Tensor4D,
  size: [number, number],
  mode: ResizeMode,
): tf.Tensor4D {
  return mode.nearest
    ? tf.image.resizeNearestNeighbor(
      x,
      size,
      mode.alignCorners,
      mode.halfPixelCenters,
    )
    : tf.image.resizeBilinear(
      x,
      size,
      mode.alignCorners,
      mode.halfPixelCenters,
    );
}

/** Deterministic values: cos(i) for images, sin(1.7 i + 0.3) for weights. */
function cosines(n: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.cos(i));
}
function sines(n: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(1.7 * i + 0.3));
}

/** d/dx of sum(w · resize(x)), by tf.grad on the active backend. */
async function gradient(
  shape: [number, number, number, number],
  size: [number, number],
  mode: ResizeMode,
): Promise<{ shape: number[]; values: Float32Array }> {
  const [b, , , c] = shape;
  const w = tf.tensor4d(sines(b * size[0] * size[1] * c), [b, ...size, c]);
  const x = tf.tensor4d(cosines(shape.reduce((p, q) => p * q)), shape);
  const g = tf.grad((t: tf.Tensor) =>
    tf.sum(tf.mul(resize(t as tf.Tensor4D, size, mode), w))
  )(x);
  try {
    return { shape: g.shape, values: (await g.data()) as Float32Array };
  } finally {
    tf.dispose([w, x, g]);
  }
}

/**
 * Central differences of f(x) = sum(w · resize(x)) with the backend's
 * forward kernel, every input element perturbed at once (one batch entry
 * per element and sign). f is linear, so the step can be large.
 */
async function finiteDifferences(
  shape: [number, number, number, number],
  size: [number, number],
  mode: ResizeMode,
): Promise<Float32Array> {
  const [b, h, wd, c] = shape;
  const n = b * h * wd * c;
  const step = 0.5;
  const x = cosines(n);
  const w = sines(b * size[0] * size[1] * c);
  // Row k of the stack: one image of the batch with element k's value moved.
  const stacked = new Float32Array(2 * n * h * wd * c);
  const weights = new Float32Array(2 * n * size[0] * size[1] * c);
  const image = h * wd * c;
  const out = size[0] * size[1] * c;
  for (let s = 0; s < 2; s++) {
    for (let k = 0; k < n; k++) {
      const row = s * n + k;
      const bi = Math.floor(k / image);
      stacked.set(x.subarray(bi * image, (bi + 1) * image), row * image);
      stacked[row * image + (k % image)]! += s === 0 ? step : -step;
      weights.set(w.subarray(bi * out, (bi + 1) * out), row * out);
    }
  }
  const f = tf.tidy(() =>
    tf.sum(
      tf.mul(
        resize(tf.tensor4d(stacked, [2 * n, h, wd, c]), size, mode),
        tf.tensor4d(weights, [2 * n, ...size, c]),
      ),
      [1, 2, 3],
    )
  );
  const v = await f.data();
  f.dispose();
  return Float32Array.from(
    { length: n },
    (_, k) => (v[k]! - v[n + k]!) / (2 * step),
  );
}

Deno.test("axisTaps() weights of every output position sum to 1 and stay inside the input", () => {
  for (const mode of Object.values(MODES)) {
    for (const [inSize, outSize] of [[1, 5], [3, 7], [7, 3], [5, 1], [4, 4]]) {
      const t = axisTaps(inSize!, outSize!, mode);
      for (let o = 0; o < outSize!; o++) {
        let sum = 0;
        for (let k = 0; k < t.count[o]!; k++) {
          sum += t.weight[2 * o + k]!;
          const i = t.index[2 * o + k]!;
          assert.ok(i >= 0 && i < inSize!, `index ${i} of ${inSize}`);
        }
        assertAlmostEquals(sum, 1, 1e-12, `${JSON.stringify(mode)} o=${o}`);
      }
    }
  }
});

Deno.test("accumulateResizeGrad() reproduces PyTorch's interpolate backward", () => {
  for (const k of REFERENCE.cases) {
    const mode = MODES[k.mode]!;
    const [b, h, w, c] = k.shape;
    const dx = new Float32Array(b * h * w * c);
    accumulateResizeGrad(
      sines(b * k.size[0] * k.size[1] * c),
      0,
      dx,
      0,
      { batch: b, inH: h, inW: w, outH: k.size[0], outW: k.size[1], depth: c },
      axisTaps(h, k.size[0], mode),
      axisTaps(w, k.size[1], mode),
    );
    assertAlmostEquals(dx, k.dx, 1e-5, `${k.mode} [${k.shape}]→[${k.size}]`);
  }
});

testOnBackends(
  "tf.image resize gradients match PyTorch on non-square images",
  async (backend) => {
    const tol = tolerance(backend);
    for (const k of REFERENCE.cases) {
      const mode = MODES[k.mode]!;
      const what = `${k.mode} [${k.shape}]→[${k.size}]`;
      const y = tf.tidy(() =>
        resize(
          tf.tensor4d(cosines(k.shape.reduce((p, q) => p * q)), k.shape),
          k.size,
          mode,
        )
      );
      assertAlmostEquals(await y.data(), k.y, tol, `forward ${what}`);
      y.dispose();
      const g = await gradient(k.shape, k.size, mode);
      assert.deepEqual(g.shape, k.shape, what);
      assertAlmostEquals(g.values, k.dx, tol, `gradient ${what}`);
    }
  },
  { purpose: "train" },
);

testOnBackends(
  "tf.image resize gradients match central finite differences in every mode",
  async (backend) => {
    const tol = 10 * tolerance(backend);
    const shapes: [[number, number, number, number], [number, number]][] = [
      [[2, 3, 5, 2], [4, 7]], // up in both
      [[1, 5, 3, 2], [2, 7]], // down in height, up in width
      [[1, 6, 9, 1], [4, 6]], // down in both
      [[1, 1, 4, 2], [5, 3]], // a size-1 axis (upstream fails with alignCorners)
      [[1, 3, 1, 1], [3, 4]],
    ];
    for (const [name, mode] of Object.entries(MODES)) {
      for (const [shape, size] of shapes) {
        const what = `${name} [${shape}]→[${size}]`;
        const g = await gradient(shape, size, mode);
        assert.deepEqual(g.shape, shape, what);
        const fd = await finiteDifferences(shape, size, mode);
        assertAlmostEquals(g.values, fd, tol, what);
      }
    }
  },
  { purpose: "train" },
);

testOnBackends(
  "tf.image resize gradients leak no tensors or backend buffers",
  async () => {
    const x = tf.tensor4d(cosines(2 * 3 * 5 * 2), [2, 3, 5, 2]);
    for (const mode of Object.values(MODES)) {
      const f = (t: tf.Tensor) =>
        tf.sum(resize(t as tf.Tensor4D, [4, 7], mode));
      await tf.grad(f)(x).data().then(() => {}); // warm-up: kernels compile
      const buffers = tf.memory().numDataBuffers;
      await assertNoLeakAsync(async () => {
        const g = tf.grad(f)(x);
        await g.data();
        return g;
      });
      assert.equal(tf.memory().numDataBuffers, buffers, JSON.stringify(mode));
    }
    x.dispose();
  },
  { purpose: "train" },
);

testOnBackends(
  "a DeepLabv3+ training step with the low-level skip runs on a non-square input",
  async () => {
    const net = createDeepLab({
      depth: 18,
      inChannels: 2,
      stem: "cifar",
      widthMultiplier: 0.125,
      asppChannels: 8,
      lowLevelSkip: true,
      lowLevelChannels: 4,
      nClasses: 3,
      seed: 5,
    });
    const optimizer = tf.train.sgd(0.1);
    const [h, w] = [16, 40]; // features 2×5 resized up to the 16×40 skip
    const x = tf.tensor4d(cosines(h * w * 2), [1, h, w, 2]);
    const labels = tf.tidy(() =>
      tf.oneHot(
        tf.tensor1d(
          Int32Array.from({ length: h * w }, (_, i) => (i % w) * 3 / w),
          "int32",
        ),
        3,
      ).reshape([1, h, w, 3])
    );
    const before = await net.params["classifier.0.project.0.weight"]!.data();
    try {
      const loss = optimizer.minimize(
        () =>
          tf.losses.softmaxCrossEntropy(
            labels,
            net.apply(x, { training: true }),
          ) as tf.Scalar,
        true,
        net.trainableVariables(),
      )!;
      const value = (await loss.data())[0]!;
      loss.dispose();
      assert.ok(Number.isFinite(value), `loss ${value}`);
      const after = await net.params["classifier.0.project.0.weight"]!.data();
      assert.ok(
        after.some((v, i) => v !== before[i]),
        "the ASPP projection (reached only through the resize) did not move",
      );
    } finally {
      optimizer.dispose();
      tf.dispose([x, labels]);
      net.dispose();
    }
  },
  { backends: ["cpu", "wasm"], purpose: "train" },
);
