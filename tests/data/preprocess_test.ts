import assert from "node:assert/strict";
import {
  axialSlice,
  percentileNormalize,
  percentiles,
  windowIntensity,
} from "../../data/mod.ts";
import { assertAlmostEquals } from "../_utils.ts";
import { Prng } from "../../random/prng.ts";

Deno.test("windowIntensity maps −175..250 HU to [0, 1], clipped, and handles NaN/Inf", () => {
  const out = windowIntensity(
    new Float32Array([-1000, -175, 37.5, 250, 3000, NaN, Infinity, -Infinity]),
  );
  assert.deepEqual(Array.from(out), [0, 0, 0.5, 1, 1, 0, 1, 0]);
  assertAlmostEquals(
    windowIntensity(new Int16Array([0, 50, 100]), { min: 0, max: 100 }),
    [0, 0.5, 1],
  );
  assert.throws(
    () => windowIntensity(new Int16Array(1), { min: 5, max: 5 }),
    RangeError,
  );
});

Deno.test("percentiles match numpy's linear interpolation for integer and float data", async () => {
  const prng = new Prng(1);
  const i16 = Int16Array.from(
    { length: 5001 },
    () => Math.round(prng.normal() * 300),
  );
  const f32 = Float32Array.from({ length: 4000 }, () => prng.normal() * 10);
  const out = await new Deno.Command("/usr/bin/python3", {
    args: [
      "-c",
      `import sys, json, numpy as np
a = np.frombuffer(bytes.fromhex(sys.stdin.readline().strip()), "<i2")
b = np.frombuffer(bytes.fromhex(sys.stdin.readline().strip()), "<f4")
print(json.dumps([np.percentile(a, [1, 37.5, 99]).tolist(), np.percentile(b, [0, 1, 50, 99, 100]).tolist()]))`,
    ],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const hex = (x: ArrayBufferView) =>
    Array.from(new Uint8Array(x.buffer), (v) => v.toString(16).padStart(2, "0"))
      .join("");
  const w = out.stdin.getWriter();
  await w.write(new TextEncoder().encode(`${hex(i16)}\n${hex(f32)}\n`));
  await w.close();
  const [pi, pf] = JSON.parse(
    new TextDecoder().decode((await out.output()).stdout),
  );
  assertAlmostEquals(percentiles(i16, [1, 37.5, 99]), pi, 1e-9);
  assertAlmostEquals(percentiles(f32, [0, 1, 50, 99, 100]), pf, 1e-4);
});

Deno.test("percentileNormalize maps v1..v99 to [0, 1], ignores NaN, and is safe on constant images", () => {
  const ramp = Float32Array.from({ length: 101 }, (_, i) => i);
  const out = percentileNormalize(ramp);
  assertAlmostEquals([out[0]!, out[1]!, out[50]!, out[99]!, out[100]!], [
    0,
    0,
    49 / 98,
    1,
    1,
  ], 1e-6);
  const withNaN = new Float32Array([NaN, 0, 10, Infinity, -Infinity]);
  assert.deepEqual(
    Array.from(percentileNormalize(withNaN, { lower: 0, upper: 100 })),
    [0, 0, 1, 1, 0],
  );
  const constant = percentileNormalize(new Int16Array(50).fill(42));
  assert.ok(constant.every((v) => v === 0));
  assert.deepEqual(
    Array.from(
      percentileNormalize(new Int16Array([0, 10, 20]), {
        range: [0, 40],
        clip: false,
      }),
    ),
    [0, 0.25, 0.5],
  );
  assert.throws(
    () => percentileNormalize(ramp, { lower: 99, upper: 1 }),
    RangeError,
  );
});

Deno.test("axialSlice returns row-major [ny, nx] slices", () => {
  const data = Int16Array.from({ length: 24 }, (_, i) => i);
  assert.deepEqual(Array.from(axialSlice({ data, dims: [4, 3, 2] }, 1)), [
    12,
    13,
    14,
    15,
    16,
    17,
    18,
    19,
    20,
    21,
    22,
    23,
  ]);
  assert.ok(axialSlice({ data, dims: [4, 3, 2] }, 0) instanceof Int16Array);
  assert.throws(() => axialSlice({ data, dims: [4, 3, 2] }, 2), RangeError);
  assert.throws(() => axialSlice({ data, dims: [4, 4, 2] }, 0), TypeError);
});
