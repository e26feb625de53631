/** Shared helpers for kernel parity tests against the cpu backend. */
import * as tf from "@tensorflow/tfjs";
import { selectBackend } from "../../backends/mod.ts";
import type { Prng } from "../../random/mod.ts";
import { assertAlmostEquals } from "../_utils.ts";

/** Seeded standard-normal values. */
export function randn(prng: Prng, n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = prng.normal();
  return a;
}

/** Runs `fn` on `backend` and reads every returned tensor. */
export async function runOn(
  backend: "cpu" | "wasm",
  fn: () => tf.Tensor[],
): Promise<Float32Array[]> {
  await selectBackend(backend, { purpose: "train" });
  const before = tf.memory().numTensors;
  const ts = tf.tidy(fn);
  const out = await Promise.all(
    ts.map(async (t) => await t.data() as Float32Array),
  );
  tf.dispose(ts);
  if (tf.memory().numTensors !== before) {
    throw new Error(`Tensors leaked on ${backend}`);
  }
  return out;
}

/** Asserts each array agrees with the reference within a relative tolerance. */
export function assertParity(
  actual: Float32Array[],
  expected: Float32Array[],
  what: string,
  rel = 2e-5,
): void {
  if (actual.length !== expected.length) {
    throw new Error(
      `${what}: ${actual.length} outputs, expected ${expected.length}`,
    );
  }
  for (let i = 0; i < actual.length; i++) {
    let scale = 1;
    for (const v of expected[i]!) scale = Math.max(scale, Math.abs(v));
    assertAlmostEquals(
      actual[i]!,
      expected[i]!,
      rel * scale * 10,
      `${what} output ${i}:`,
    );
  }
}

/** A random convolution case. */
export interface ConvCase {
  n: number;
  h: number;
  w: number;
  c: number;
  co: number;
  kh: number;
  kw: number;
  strides: [number, number];
  dilations: [number, number];
  pad: "same" | "valid" | [
    [number, number],
    [number, number],
    [number, number],
    [number, number],
  ];
}

/** Draws `count` convolution cases covering strides, dilations and paddings. */
export function convCases(
  prng: Prng,
  count: number,
  dilated: boolean,
): ConvCase[] {
  const out: ConvCase[] = [];
  for (let i = 0; i < count; i++) {
    const k = [1, 2, 3, 5, 7][prng.int(5)]!;
    const kw = prng.next() < 0.7 ? k : [1, 3][prng.int(2)]!;
    const s = dilated ? 1 : [1, 2, 3][prng.int(3)]!;
    const d = dilated ? [2, 3][prng.int(2)]! : 1;
    const padKind = i % 3;
    const pad: ConvCase["pad"] = padKind === 0
      ? "same"
      : padKind === 1
      ? "valid"
      : [[0, 0], [prng.int(3), prng.int(3)], [prng.int(3), prng.int(3)], [
        0,
        0,
      ]];
    const span = Math.max((k - 1) * d + 1, (kw - 1) * d + 1);
    out.push({
      n: 1 + prng.int(3),
      h: span + prng.int(9),
      w: span + prng.int(9),
      c: 1 + prng.int(20),
      co: 1 + prng.int(20),
      kh: k,
      kw,
      strides: [s, prng.next() < 0.8 ? s : 1],
      dilations: [d, d],
      pad,
    });
  }
  return out;
}

/** Output spatial size of a case (tfjs's rules). */
export function outShape(c: ConvCase): [number, number, number, number] {
  const info = tf.backend_util.computeConv2DInfo(
    [c.n, c.h, c.w, c.c],
    [c.kh, c.kw, c.c, c.co],
    c.strides,
    c.dilations,
    c.pad,
  );
  return info.outShape as [number, number, number, number];
}
