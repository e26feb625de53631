import assert from "node:assert/strict";
import { embed2d } from "../../report/embedding.ts";
import { Prng } from "../../random/prng.ts";

Deno.test("embed2d is deterministic for a seed and separates clusters", () => {
  const prng = new Prng(5);
  const vectors = Array.from(
    { length: 40 },
    (_, i) =>
      Array.from({ length: 6 }, (_, k) => (k === i % 2 ? 10 : 0) + prng.next()),
  );
  const a = embed2d(vectors, { seed: 2 });
  const b = embed2d(vectors, { seed: 2 });
  assert.deepEqual(a, b);
  assert.equal(a.length, 40);
  // Cluster centres are further apart than the mean within-cluster spread.
  const centre = (k: number) =>
    [0, 1].map((d) =>
      a.filter((_, i) => i % 2 === k).reduce((s, p) => s + p[d]!, 0) / 20
    );
  const [c0, c1] = [centre(0), centre(1)];
  const between = Math.hypot(c0[0]! - c1[0]!, c0[1]! - c1[1]!);
  const within = a.reduce((s, p, i) => {
    const c = i % 2 === 0 ? c0 : c1;
    return s + Math.hypot(p[0]! - c[0]!, p[1]! - c[1]!);
  }, 0) / 40;
  assert.ok(between > 2 * within, `between ${between}, within ${within}`);
});

Deno.test("embed2d rejects too few or ragged vectors", () => {
  assert.throws(() => embed2d([[1], [2]]), {
    name: "TypeError",
    message:
      "Cannot compute embed2d as 'vectors' needs at least 3 rows: found 2",
  });
  assert.throws(() => embed2d([[1, 2], [2, 3], [4]]), /row 2 has 1/);
});
