/**
 * A self-contained ResNet-18/50 encoder (ImageNet stem, output stride 32)
 * with a small segmentation head, for profiling backends without the
 * models package. The same network is written for PyTorch in
 * {@linkcode TORCH_CONVNET} so both sides run identical arithmetic.
 */
import * as tf from "@tensorflow/tfjs";
import { Prng } from "../random/mod.ts";

/** A network: its variables and a forward pass. */
export interface ConvNet {
  variables: tf.Variable[];
  apply(x: tf.Tensor4D, training: boolean): tf.Tensor4D;
  dispose(): void;
}

/** Builds ResNet-`depth` (18 or 50) + 1×1 head to `classes`, upsampled to the input. */
export function createConvNet(
  depth: 18 | 50,
  inChannels: number,
  classes: number,
  seed = 1,
): ConvNet {
  const prng = new Prng(seed);
  const variables: tf.Variable[] = [];
  const w = (kh: number, kw: number, ci: number, co: number) => {
    const std = Math.sqrt(2 / (kh * kw * co));
    const a = new Float32Array(kh * kw * ci * co);
    for (let i = 0; i < a.length; i++) a[i] = prng.normal() * std;
    const v = tf.variable(tf.tensor4d(a, [kh, kw, ci, co]));
    variables.push(v);
    return v;
  };
  const bn = (c: number) => {
    const g = tf.variable(tf.ones([c]));
    const b = tf.variable(tf.zeros([c]));
    variables.push(g, b);
    return (x: tf.Tensor4D) => {
      const { mean, variance } = tf.moments(x, [0, 1, 2]);
      return tf.batchNorm(x, mean, variance, b, g, 1e-5) as tf.Tensor4D;
    };
  };
  type Layer = (x: tf.Tensor4D) => tf.Tensor4D;
  const conv = (k: number, ci: number, co: number, s: number): Layer => {
    const f = w(k, k, ci, co);
    const pad = k === 1 ? 0 : (k - 1) / 2;
    return (x) =>
      tf.conv2d(
        x,
        f as tf.Tensor4D,
        s,
        pad === 0 ? "valid" : [[0, 0], [pad, pad], [pad, pad], [0, 0]],
      );
  };
  const convBn = (
    k: number,
    ci: number,
    co: number,
    s: number,
    relu: boolean,
  ): Layer => {
    const c = conv(k, ci, co, s);
    const n = bn(co);
    return (x) => {
      const y = n(c(x));
      return relu ? tf.relu(y) : y;
    };
  };
  const blocks: Layer[] = [];
  const stem = convBn(7, inChannels, 64, 2, true);
  const widths = [64, 128, 256, 512];
  const counts = depth === 18 ? [2, 2, 2, 2] : [3, 4, 6, 3];
  const expansion = depth === 18 ? 1 : 4;
  let cin = 64;
  for (let l = 0; l < 4; l++) {
    for (let i = 0; i < counts[l]!; i++) {
      const s = i === 0 && l > 0 ? 2 : 1;
      const wd = widths[l]!;
      const cout = wd * expansion;
      const body: Layer[] = depth === 18
        ? [convBn(3, cin, wd, s, true), convBn(3, wd, wd, 1, false)]
        : [
          convBn(1, cin, wd, 1, true),
          convBn(3, wd, wd, s, true),
          convBn(1, wd, cout, 1, false),
        ];
      const short = s !== 1 || cin !== cout
        ? convBn(1, cin, cout, s, false)
        : undefined;
      blocks.push((x) => {
        let y = x;
        for (const f of body) y = f(y);
        return tf.relu(tf.add(y, short ? short(x) : x)) as tf.Tensor4D;
      });
      cin = cout;
    }
  }
  const head = conv(1, cin, classes, 1);
  return {
    variables,
    apply(x) {
      let y = stem(x);
      y = tf.maxPool(y, 3, 2, 1);
      for (const b of blocks) y = b(y);
      const logits = head(y);
      return tf.image.resizeBilinear(logits, [x.shape[1], x.shape[2]], true);
    },
    dispose() {
      tf.dispose(variables);
    },
  };
}
