import assert from "node:assert/strict";
import { Prng } from "../../random/mod.ts";

Deno.test("Prng gives the same sequence for the same seed", () => {
  const a = new Prng(7);
  const b = new Prng(7);
  for (let i = 0; i < 100; i++) assert.equal(a.nextUint32(), b.nextUint32());
});

Deno.test("Prng gives different sequences for different seeds", () => {
  const a = new Prng(1);
  const b = new Prng(2);
  const same = Array.from({ length: 50 }, () => a.next() === b.next()).filter(
    Boolean,
  );
  assert.equal(same.length, 0);
});

Deno.test("Prng.next() is uniform in [0, 1)", () => {
  const r = new Prng(3);
  const bins = new Array(10).fill(0);
  const n = 100_000;
  for (let i = 0; i < n; i++) {
    const x = r.next();
    assert.ok(x >= 0 && x < 1);
    bins[Math.floor(x * 10)]++;
  }
  // Chi-squared with 9 degrees of freedom: 27.9 is the 0.999 quantile.
  const chi2 = bins.reduce((s, c) => s + (c - n / 10) ** 2 / (n / 10), 0);
  assert.ok(chi2 < 27.9, `chi2 = ${chi2}`);
});

Deno.test("Prng.normal() has mean 0 and variance 1", () => {
  const r = new Prng(4);
  const n = 50_000;
  let s = 0;
  let s2 = 0;
  for (let i = 0; i < n; i++) {
    const x = r.normal();
    s += x;
    s2 += x * x;
  }
  assert.ok(Math.abs(s / n) < 0.02);
  assert.ok(Math.abs(s2 / n - 1) < 0.03);
});

Deno.test("Prng state round-trips and resumes the same stream", () => {
  const r = new Prng(5);
  r.next();
  const state = r.getState();
  const expected = [r.next(), r.next(), r.next()];
  const s = new Prng(999);
  s.setState(JSON.parse(JSON.stringify(state)));
  assert.deepEqual([s.next(), s.next(), s.next()], expected);
});

Deno.test("Prng.int() stays in range and hits every value", () => {
  const r = new Prng(8);
  const seen = new Set<number>();
  for (let i = 0; i < 1000; i++) {
    const k = r.int(7);
    assert.ok(Number.isInteger(k) && k >= 0 && k < 7);
    seen.add(k);
  }
  assert.equal(seen.size, 7);
});

Deno.test("Prng.shuffle() permutes deterministically", () => {
  const a = new Prng(9).shuffle([1, 2, 3, 4, 5, 6]);
  const b = new Prng(9).shuffle([1, 2, 3, 4, 5, 6]);
  assert.deepEqual(a, b);
  assert.deepEqual([...a].sort(), [1, 2, 3, 4, 5, 6]);
});

Deno.test("Prng rejects bad seeds, bounds and states", () => {
  assert.throws(() => new Prng(NaN), {
    name: "RangeError",
    message:
      "Cannot create Prng as 'seed' must be a finite number: current value is NaN",
  });
  assert.throws(() => new Prng(1).int(0), {
    name: "RangeError",
    message: /'n' must be an integer/,
  });
  assert.throws(() => new Prng(1).setState([0, 0, 0, 0]), {
    name: "TypeError",
    message: /'state' must be 4 unsigned 32-bit integers/,
  });
  assert.throws(() => new Prng(1).setState([1, 2, 3]), { name: "TypeError" });
});
