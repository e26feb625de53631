/**
 * Per-kernel profile of one DeepLab step on wasm: `deno run -A bench/_profile.ts [blas|xnnpack] [18|50] [full|frozen|infer]`.
 * Prints step times and the kernels sorted by time (tf.profile).
 */
import * as tf from "@tensorflow/tfjs";
import { selectBackend, setWasmAcceleration } from "../backends/mod.ts";
import { createDeepLab } from "../models/mod.ts";
import { paperDeepLab } from "./_common.ts";
const [acc = "blas", depth = "18", mode = "full"] = Deno.args;
await selectBackend("wasm", { purpose: "train" });
await setWasmAcceleration(acc as "blas");
const net = createDeepLab({ ...paperDeepLab(Number(depth) as 18), seed: 1 });
const x = tf.randomNormal([4, 128, 128, 2]) as tf.Tensor4D;
const y = tf.oneHot(
  tf.randomUniform([4, 128, 128], 0, 2, "int32") as tf.Tensor3D,
  2,
).toFloat();
const opt = tf.train.sgd(1e-4);
const vars = mode === "frozen"
  ? net.decoderVariables()
  : net.trainableVariables();
const step = async () => {
  if (mode === "infer") {
    const o = tf.tidy(() => net.apply(x, { training: false }));
    await o.data();
    o.dispose();
    return;
  }
  const l = opt.minimize(
    () =>
      tf.neg(
        tf.mean(
          tf.sum(
            tf.mul(
              y,
              tf.logSoftmax(
                net.apply(x, {
                  training: true,
                  freezeEncoder: mode === "frozen",
                }),
              ),
            ),
            3,
          ),
        ),
      ) as tf.Scalar,
    true,
    vars,
  )!;
  await l.data();
  l.dispose();
};
await step();
const ts: number[] = [];
for (let i = 0; i < 2; i++) {
  const t0 = performance.now();
  await step();
  ts.push(performance.now() - t0);
}
console.log("step ms", ts.map((t) => t.toFixed(0)).join(" "));
const prof = await tf.profile(step);
const by = new Map<string, { ms: number; n: number }>();
for (const k of prof.kernels) {
  const e = by.get(k.name) ?? { ms: 0, n: 0 };
  e.ms += k.kernelTimeMs as number;
  e.n++;
  by.set(k.name, e);
}
const total = [...by.values()].reduce((a, b) => a + b.ms, 0);
console.log("kernel total ms", total.toFixed(0));
for (
  const [n, e] of [...by.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(
    0,
    22,
  )
) {
  console.log(
    n.padEnd(28),
    e.ms.toFixed(1).padStart(8),
    String(e.n).padStart(5),
    (100 * e.ms / total).toFixed(1).padStart(6) + "%",
  );
}
