import assert from "node:assert/strict";
import { knnAccuracy, silhouetteScore } from "../../metrics/separation.ts";

// Two 1-D clusters: a = {0, 1}, b = {10, 12}, and a stray "a" at 11.
const points = new Float64Array([0, 1, 10, 12, 11]);
const labels = ["a", "a", "b", "b", "a"];

Deno.test("knnAccuracy() leaves each point out and votes among its k nearest", () => {
  // k = 1: 0→1 (a ✓), 1→0 (a ✓), 10→11 (a ✗), 12→11 (a ✗), 11→10 or 12 (b ✗; 10 first).
  assert.equal(knnAccuracy({ data: points, dim: 1 }, labels, { k: 1 }), 2 / 5);
  // k = 3: 0→{1,10,11} a,b,a → a ✓; 1→{0,10,11} a ✓; 10→{11,12,1} a,b,a → a ✗;
  // 12→{11,10,1} a,b,a → a ✗; 11→{10,12,1} b,b,a → b ✗.
  assert.equal(knnAccuracy({ data: points, dim: 1 }, labels, { k: 3 }), 2 / 5);
  // A tie (k = 2 at point 11: one b at 10, one b at 12 → b; at 0: 1 (a), 10 (b) → tie, nearest a).
  assert.equal(
    knnAccuracy(
      { data: new Float64Array([0, 1, 10]), dim: 1 },
      ["a", "a", "b"],
      { k: 2 },
    ),
    2 / 3,
  );
  assert.equal(knnAccuracy({ data: new Float32Array([3]), dim: 1 }, [0]), null);
});

Deno.test("silhouetteScore() matches the definition on a hand-computed example", () => {
  // a = {0, 1}, b = {10, 12}.
  const p = new Float64Array([0, 1, 10, 12]);
  const s0 = (11 - 1) / 11; // a = 1, b = mean(10, 12) = 11
  const s1 = (10 - 1) / 10; // a = 1, b = mean(9, 11) = 10
  const s2 = (9.5 - 2) / 9.5; // a = 2, b = mean(10, 9)
  const s3 = (11.5 - 2) / 11.5; // a = 2, b = mean(12, 11)
  const want = (s0 + s1 + s2 + s3) / 4;
  assert.ok(
    Math.abs(silhouetteScore({ data: p, dim: 1 }, [0, 0, 1, 1])! - want) <
      1e-12,
  );
  // A singleton scores 0 and still counts in the mean.
  const withLone = silhouetteScore({
    data: new Float64Array([0, 1, 10]),
    dim: 1,
  }, [0, 0, 1])!;
  const t0 = (10 - 1) / 10, t1 = (9 - 1) / 9;
  assert.ok(Math.abs(withLone - (t0 + t1) / 3) < 1e-12);
  assert.equal(silhouetteScore({ data: p, dim: 1 }, [0, 0, 0, 0]), null);
  assert.equal(silhouetteScore({ data: p, dim: 1 }, [0, 1, 2, 3]), null);
});

Deno.test("knnAccuracy() and silhouetteScore() name a shape mismatch", () => {
  assert.throws(
    () => knnAccuracy({ data: new Float32Array(5), dim: 2 }, [0, 1]),
    /Cannot compute knnAccuracy as 'embedding.data' must hold labels.length × dim = 2 × 2 values: current length is 5/,
  );
  assert.throws(
    () => silhouetteScore({ data: new Float32Array(4), dim: 0 }, [0, 1]),
    /'embedding.dim' must be a positive integer: current value is 0/,
  );
  assert.throws(
    () => knnAccuracy({ data: new Float32Array(4), dim: 2 }, [0, 1], { k: 0 }),
    /'k' must be a positive integer/,
  );
});
