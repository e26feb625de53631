/** Helpers for the loss tests: the PyTorch reference fixture, random inputs, finite differences. */
import * as tf from "@tensorflow/tfjs";
import { selectBackend } from "../../backends/mod.ts";
import { Prng } from "../../random/mod.ts";
import { assertAlmostEquals, AVAILABLE } from "../_utils.ts";

// Activate wasm once before any test: its first activation may open the
// OpenBLAS library through FFI, which the resource sanitizer of whichever
// test came first would report as a leak. Then run plain tests on cpu.
if (AVAILABLE.includes("wasm")) {
  await selectBackend("wasm", { purpose: "infer" });
}
await selectBackend("cpu", { purpose: "infer" });

/** One case of `testdata/contrastive_reference.json`. */
export interface ReferenceCase {
  features: number[][][];
  labels?: number[];
  domain?: number[];
  target?: number[];
  partialPositiveWeight?: number;
  temperature: number;
  baseTemperature: number;
  loss: number;
  grad: number[];
}

/**
 * Loss and gradient computed by `testdata/contrastive_reference.py`: the
 * SupContrast formulas written out as loops over anchors and positives, in
 * float64 with torch 1.13 autograd (Debian's /usr/bin/python3).
 */
export const REFERENCE: Record<
  "supcon_a" | "ntxent_a" | "modal_b" | "modal_b_partial",
  ReferenceCase
> = JSON.parse(
  await Deno.readTextFile(
    new URL("./testdata/contrastive_reference.json", import.meta.url),
  ),
);

/** Seeded normal features `[batch, views, dim]`. */
export function randomFeatures(
  shape: [number, number, number],
  seed: number,
): tf.Tensor3D {
  const prng = new Prng(seed);
  const n = shape[0] * shape[1] * shape[2];
  return tf.tensor3d(
    Float32Array.from({ length: n }, () => prng.normal()),
    shape,
  );
}

/** Reads a tensor asynchronously (WebGPU cannot read synchronously). */
export async function read(t: tf.Tensor): Promise<number[]> {
  return Array.from(await t.data());
}

/** Asserts every value is finite (no NaN, no ±Infinity). */
export function assertFinite(values: ArrayLike<number>, what: string): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      throw new Error(
        `${what}[${i}] is ${values[i]}, expected a finite number`,
      );
    }
  }
}

/**
 * Compares `tf.grad(f)` at `x` with central finite differences
 * (f(x + h·eₖ) − f(x − h·eₖ)) / 2h in every coordinate.
 */
export async function checkGradient(
  f: (x: tf.Tensor) => tf.Scalar,
  x: tf.Tensor,
  { h = 1e-3, tol = 2e-3 }: { h?: number; tol?: number } = {},
): Promise<void> {
  const g = tf.grad(f)(x);
  const analytic = await read(g);
  g.dispose();
  const base = await read(x);
  const numeric: number[] = [];
  for (let k = 0; k < base.length; k++) {
    const plus = base.slice();
    const minus = base.slice();
    plus[k]! += h;
    minus[k]! -= h;
    const [lp, lm] = tf.tidy(() => [
      f(tf.tensor(plus, x.shape)),
      f(tf.tensor(minus, x.shape)),
    ]);
    numeric.push(((await read(lp!))[0]! - (await read(lm!))[0]!) / (2 * h));
    tf.dispose([lp!, lm!]);
  }
  assertAlmostEquals(analytic, numeric, tol, "gradient vs finite differences:");
}

/**
 * The contrastive loss written out in float64 loops, independently of the
 * tensor code: rows view-major, each anchor's weighted mean of
 * −log(exp(zᵢ·zⱼ/T) / Σ_{k≠i} exp(zᵢ·zₖ/T)), anchors without a positive
 * dropped, times T / baseT.
 */
export function referenceLoss(
  features: number[][][],
  weight: (i: number, j: number) => number,
  temperature: number,
  baseTemperature = temperature,
): number {
  const batch = features.length;
  const views = features[0]!.length;
  const rows: number[][] = [];
  for (let v = 0; v < views; v++) {
    for (let b = 0; b < batch; b++) {
      const x = features[b]![v]!;
      const norm = Math.max(Math.hypot(...x), 1e-12);
      rows.push(x.map((c) => c / norm));
    }
  }
  const dot = (a: number[], b: number[]) =>
    a.reduce((s, c, k) => s + c * b[k]!, 0);
  let total = 0;
  let anchors = 0;
  for (let i = 0; i < rows.length; i++) {
    const logits = rows.map((r) => dot(rows[i]!, r) / temperature);
    const others = logits.filter((_, k) => k !== i);
    const max = Math.max(...others);
    const logDen = max +
      Math.log(others.reduce((s, l) => s + Math.exp(l - max), 0));
    let num = 0;
    let wsum = 0;
    for (let j = 0; j < rows.length; j++) {
      const w = j === i ? 0 : weight(i % batch, j % batch);
      num += w * (logits[j]! - logDen);
      wsum += w;
    }
    if (wsum > 0) {
      total -= num / wsum;
      anchors++;
    }
  }
  return (temperature / baseTemperature) * total / Math.max(anchors, 1);
}
