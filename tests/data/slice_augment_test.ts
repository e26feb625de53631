import assert from "node:assert/strict";
import {
  augmentSlice,
  augmentSliceBatch,
  sampleSliceTransform,
  type SliceTransform,
} from "../../data/slice_augment.ts";
import { Prng } from "../../random/prng.ts";

const ID: SliceTransform = { angle: 0, scale: 1, shift: [0, 0], flip: false };

/** A 3×5 slice whose pixel (r, c) holds 10r + c, labels r * 5 + c. */
function ramp(h = 3, w = 5): { image: Float32Array; labels: Int32Array } {
  const image = new Float32Array(h * w);
  const labels = new Int32Array(h * w);
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      image[r * w + c] = 10 * r + c;
      labels[r * w + c] = r * w + c;
    }
  }
  return { image, labels };
}

Deno.test("augmentSlice: the identity transform copies image and labels exactly", () => {
  const { image, labels } = ramp();
  const r = augmentSlice(image, labels, {
    size: [3, 5],
    channels: 1,
    transform: ID,
  });
  assert.deepEqual([...r.image], [...image]);
  assert.deepEqual([...r.labels!], [...labels]);
  assert.ok(r.labels instanceof Int32Array);
});

Deno.test("augmentSlice: flip reverses the columns of a rectangular slice, twice is the identity", () => {
  const { image, labels } = ramp();
  const once = augmentSlice(image, labels, {
    size: [3, 5],
    channels: 1,
    transform: { ...ID, flip: true },
  });
  for (let r = 0; r < 3; r++) {
    for (let c = 0; c < 5; c++) {
      assert.equal(once.image[r * 5 + c], 10 * r + (4 - c));
      assert.equal(once.labels![r * 5 + c], r * 5 + (4 - c));
    }
  }
  const twice = augmentSlice(once.image, once.labels, {
    size: [3, 5],
    channels: 1,
    transform: { ...ID, flip: true },
  });
  assert.deepEqual([...twice.image], [...image]);
});

Deno.test("augmentSlice: a 90° rotation of a square slice moves pixels as displayed (counter-clockwise)", () => {
  // 4×4, one labelled pixel at row 0, column 3 (top right).
  const image = new Float32Array(16);
  const labels = new Uint8Array(16);
  image[3] = 1;
  labels[3] = 7;
  const r = augmentSlice(image, labels, {
    size: [4, 4],
    channels: 1,
    transform: { ...ID, angle: 90 },
  });
  // Counter-clockwise as displayed: top right goes to top left.
  assert.equal(r.labels![0], 7);
  assert.equal(r.labels!.reduce((a, v) => a + (v ? 1 : 0), 0), 1);
  assert.ok(Math.abs(r.image[0]! - 1) < 1e-5);
  assert.ok(Math.abs(r.image.reduce((a, v) => a + v, 0) - 1) < 1e-5);
});

Deno.test("augmentSlice: an integer shift moves content and fills with 0 / fill", () => {
  const { image, labels } = ramp();
  const r = augmentSlice(image, labels, {
    size: [3, 5],
    channels: 1,
    transform: { ...ID, shift: [2, 1] },
    fill: 99,
  });
  for (let row = 0; row < 3; row++) {
    for (let c = 0; c < 5; c++) {
      const sr = row - 1, sc = c - 2;
      const inside = sr >= 0 && sc >= 0;
      assert.equal(r.labels![row * 5 + c], inside ? sr * 5 + sc : 99);
      if (inside) assert.equal(r.image[row * 5 + c], 10 * sr + sc);
    }
  }
  // Entirely outside: image 0.
  assert.equal(r.image[0], 0);
});

Deno.test("augmentSlice: zoom 2 reads the centre of the source; labels keep only source values", () => {
  const h = 8, w = 8;
  const image = new Float32Array(h * w);
  const labels = new Uint8Array(h * w);
  for (let i = 0; i < h * w; i++) {
    const r = Math.floor(i / w), c = i % w;
    image[i] = c;
    labels[i] = r < 4 ? 1 : 2;
  }
  const r = augmentSlice(image, labels, {
    size: [h, w],
    channels: 1,
    transform: { ...ID, scale: 2 },
  });
  // Output column j samples source x = 4 + (j + 0.5 - 4) / 2; image = x - 0.5.
  for (let j = 1; j < w - 1; j++) {
    assert.ok(
      Math.abs(r.image[3 * w + j]! - (4 + (j + 0.5 - 4) / 2 - 0.5)) < 1e-5,
    );
  }
  assert.deepEqual(new Set(r.labels), new Set([1, 2]));
  // The upper half stays label 1, the lower half label 2.
  assert.equal(r.labels![0], 1);
  assert.equal(r.labels![h * w - 1], 2);
});

Deno.test("augmentSlice: intensity is applied to pixels that sample the slice only", () => {
  const image = new Float32Array([0.25, 0.5, 1, 0.25]);
  const t: SliceTransform = {
    ...ID,
    shift: [1, 0],
    intensity: { scale: 2, shift: 0.1, gamma: 2 },
  };
  const r = augmentSlice(image, null, {
    size: [1, 4],
    channels: 1,
    transform: t,
  });
  assert.equal(r.labels, null);
  // Column 0 reads source column -1 (outside, partially by bilinear 0).
  const expect = [0, 2 * 0.25 ** 2 + 0.1, 2 * 0.5 ** 2 + 0.1, 2 * 1 + 0.1];
  expect.slice(1).forEach((e, i) =>
    assert.ok(Math.abs(r.image[i + 1]! - e) < 1e-6, `${r.image[i + 1]} vs ${e}`)
  );
});

Deno.test("augmentSlice: colour jitter on RGB changes inside pixels and leaves fill pixels 0", () => {
  const n = 4 * 4;
  const image = new Float32Array(n * 3);
  for (let i = 0; i < n; i++) image.set([0.6, 0.3, 0.2], i * 3);
  const t: SliceTransform = {
    ...ID,
    shift: [2, 0],
    color: { brightness: 1.2, contrast: 1, saturation: 1, hue: 0 },
  };
  const r = augmentSlice(image, null, {
    size: [4, 4],
    channels: 3,
    transform: t,
  });
  // Output column 0 reads source x = -1.5: wholly outside, so 0.
  assert.deepEqual([...r.image.subarray(0, 3)], [0, 0, 0]);
  const o = (0 * 4 + 3) * 3;
  assert.ok(Math.abs(r.image[o]! - 0.72) < 1e-6);
  assert.ok(Math.abs(r.image[o + 1]! - 0.36) < 1e-6);
});

Deno.test("augmentSlice: wrong array lengths are a TypeError naming the shapes", () => {
  assert.throws(
    () =>
      augmentSlice(new Float32Array(5), null, {
        size: [2, 3],
        channels: 1,
        transform: ID,
      }),
    {
      name: "TypeError",
      message:
        "Cannot augment slice as its arrays must be image [2, 3, 1] and labels [2, 3]: current lengths are 5, -",
    },
  );
});

Deno.test("augmentSliceBatch: imageChannels draws a grey image's jitter for a 3-slice stack, applied alike to each", () => {
  const x = new Float32Array(2 * 3 * 4 * 3).fill(0.5);
  const y = new Int32Array(2 * 3 * 4);
  const ts = augmentSliceBatch(x, y, {
    shape: [2, 3, 4, 3],
    imageChannels: 1,
    prng: new Prng(1),
    intensity: { p: 1 },
  });
  // Drawn as a grey image: an intensity transform, never a colour one.
  assert.ok(
    ts.every((t) => t.intensity !== undefined && t.color === undefined),
  );
  for (let v = 0; v < x.length; v += 3) {
    assert.equal(x[v], x[v + 1]);
    assert.equal(x[v], x[v + 2]);
  }
  // Without it, three channels read as RGB.
  const rgb = augmentSliceBatch(
    new Float32Array(x.length),
    new Int32Array(y.length),
    {
      shape: [2, 3, 4, 3],
      prng: new Prng(1),
      intensity: { p: 1 },
    },
  );
  assert.ok(rgb.every((t) => t.intensity === undefined));
});

Deno.test("sampleSliceTransform: off by default, no draws; seeded and within ranges when on", () => {
  const prng = new Prng(5);
  const before = JSON.stringify(prng.getState());
  assert.deepEqual(
    sampleSliceTransform(prng, { size: [10, 20], channels: 1 }),
    ID,
  );
  assert.equal(JSON.stringify(prng.getState()), before);
  const opts = {
    flipP: 0.5,
    degrees: 15,
    scale: [0.8, 1.25] as [number, number],
    translate: 0.1,
    intensity: {},
  };
  const a = Array.from(
    { length: 200 },
    (_, i) =>
      sampleSliceTransform(new Prng(i), {
        ...opts,
        size: [10, 20],
        channels: 1,
      }),
  );
  const b = sampleSliceTransform(new Prng(3), {
    ...opts,
    size: [10, 20],
    channels: 1,
  });
  assert.deepEqual(a[3], b);
  for (const t of a) {
    assert.ok(Math.abs(t.angle) <= 15);
    assert.ok(t.scale >= 0.8 && t.scale <= 1.25);
    assert.ok(Math.abs(t.shift[0]) <= 2 && Math.abs(t.shift[1]) <= 1);
    assert.equal(t.color, undefined);
  }
  const flips = a.filter((t) => t.flip).length;
  assert.ok(flips > 70 && flips < 130, `${flips} flips of 200`);
  const jittered = a.filter((t) => t.intensity).length;
  assert.ok(jittered > 130 && jittered < 190, `${jittered} of 200`); // p = 0.8
  // RGB gets colour instead of intensity.
  const rgb = sampleSliceTransform(new Prng(1), {
    color: { p: 1 },
    size: [4, 4],
    channels: 3,
  });
  assert.ok(rgb.color && !rgb.intensity);
});

Deno.test("sampleSliceTransform: out-of-range options are a RangeError naming the option", () => {
  assert.throws(
    () =>
      sampleSliceTransform(new Prng(0), {
        flipP: 2,
        size: [4, 4],
        channels: 1,
      }),
    {
      name: "RangeError",
      message:
        "Cannot augment slices as 'flipP' must be in [0, 1]: current value is 2",
    },
  );
  assert.throws(
    () =>
      sampleSliceTransform(new Prng(0), {
        scale: [1.2, 0.9],
        size: [4, 4],
        channels: 1,
      }),
    /'scale' must be \[low, high\] with 0 < low <= high: current value is \[1.2,0.9\]/,
  );
});

Deno.test("augmentSliceBatch: each slice gets its own draw, in place, equal to augmentSlice", () => {
  const h = 6, w = 7, b = 3;
  const prng = new Prng(11);
  const x = new Float32Array(b * h * w);
  const y = new Int32Array(b * h * w);
  for (let i = 0; i < x.length; i++) {
    x[i] = (i % 13) / 13;
    y[i] = i % 4;
  }
  const x0 = x.slice(), y0 = y.slice();
  const opts = {
    degrees: 20,
    flipP: 0.5,
    scale: [0.9, 1.1] as [number, number],
  };
  const ts = augmentSliceBatch(x, y, { ...opts, shape: [b, h, w, 1], prng });
  assert.equal(ts.length, b);
  for (let k = 0; k < b; k++) {
    const n = h * w;
    const ref = augmentSlice(
      x0.slice(k * n, (k + 1) * n),
      y0.slice(k * n, (k + 1) * n),
      { size: [h, w], channels: 1, transform: ts[k]! },
    );
    assert.deepEqual([...x.subarray(k * n, (k + 1) * n)], [...ref.image]);
    assert.deepEqual([...y.subarray(k * n, (k + 1) * n)], [...ref.labels!]);
  }
  assert.throws(
    () => augmentSliceBatch(x, y, { shape: [b, h, w, 2], prng }),
    /Cannot augment slice batch as x must hold \[3,6,7,2\]/,
  );
});

Deno.test("augmentSlice: an elastic warp of zero offsets is the identity, a constant offset a shift", () => {
  const { image, labels } = ramp(4, 6);
  const zero = {
    ...ID,
    elastic: {
      grid: [3, 3] as [number, number],
      dx: new Float32Array(9),
      dy: new Float32Array(9),
    },
  };
  const r = augmentSlice(image, labels, {
    size: [4, 6],
    channels: 1,
    transform: zero,
  });
  assert.deepEqual([...r.image], [...image]);
  assert.deepEqual([...r.labels!], [...labels]);
  // Every point moved by (+2 columns, +1 row): output (r, c) reads source
  // (r + 1, c + 2), with 0 / fill beyond the slice, exactly as a shift of
  // (−2, −1) pixels.
  const moved = {
    ...ID,
    elastic: {
      grid: [2, 2] as [number, number],
      dx: new Float32Array(4).fill(2),
      dy: new Float32Array(4).fill(1),
    },
  };
  const shifted = { ...ID, shift: [-2, -1] as [number, number] };
  const a = augmentSlice(image, labels, {
    size: [4, 6],
    channels: 1,
    transform: moved,
    fill: -1,
  });
  const b = augmentSlice(image, labels, {
    size: [4, 6],
    channels: 1,
    transform: shifted,
    fill: -1,
  });
  assert.deepEqual([...a.image], [...b.image]);
  assert.deepEqual([...a.labels!], [...b.labels!]);
  assert.equal(a.image[0], image[1 * 6 + 2]);
  assert.equal(a.labels![3 * 6 + 5], -1);
});

Deno.test("augmentSlice: an elastic warp blends its control points' offsets bilinearly", () => {
  // A 1×9 ramp, grid 2×2: dx 0 at the left column of points, 4 at the
  // right. Output pixel centre x = c + 0.5 moves by 4x/9 and samples the
  // ramp (value = column) at x + 4x/9 − 0.5 between pixel centres, the
  // last pixel blending with the 0 beyond the slice.
  const w = 9;
  const image = Float32Array.from({ length: w }, (_, c) => c);
  const t = {
    ...ID,
    elastic: {
      grid: [2, 2] as [number, number],
      dx: new Float32Array([0, 4, 0, 4]),
      dy: new Float32Array(4),
    },
  };
  const r = augmentSlice(image, null, {
    size: [1, w],
    channels: 1,
    transform: t,
  });
  for (let c = 0; c < w; c++) {
    const x = c + 0.5;
    const u = x + 4 * x / w - 0.5;
    const want = u > w - 1 ? (u < w ? (w - 1) * (w - u) : 0) : u;
    assert.ok(
      Math.abs(r.image[c]! - Math.max(0, want)) < 1e-4,
      `column ${c}: ${r.image[c]} against ${want}`,
    );
  }
  assert.equal(r.labels, null);
});

Deno.test("sampleSliceTransform: the elastic warp is drawn last, within its range, and leaves the other draws alone", () => {
  const opts = {
    flipP: 0.5,
    degrees: 15,
    translate: 0.1,
    intensity: {},
    size: [10, 20] as [number, number],
    channels: 1,
  };
  for (let seed = 0; seed < 50; seed++) {
    const plain = sampleSliceTransform(new Prng(seed), opts);
    const warped = sampleSliceTransform(new Prng(seed), {
      ...opts,
      elastic: 0.1,
      elasticGrid: 5,
    });
    const { elastic, ...rest } = warped;
    assert.deepEqual(rest, plain);
    assert.deepEqual(elastic!.grid, [5, 5]);
    assert.equal(elastic!.dx.length, 25);
    // ±0.1 × the shorter side (10 rows) = ±1 pixel.
    for (const v of [...elastic!.dx, ...elastic!.dy]) {
      assert.ok(Math.abs(v) <= 1);
    }
  }
  assert.throws(
    () => sampleSliceTransform(new Prng(0), { ...opts, elastic: 0.6 }),
    /'elastic' must be in \[0, 0\.5\]: current value is 0\.6/,
  );
  assert.throws(
    () =>
      sampleSliceTransform(new Prng(0), {
        ...opts,
        elastic: 0.1,
        elasticGrid: 1,
      }),
    /'elasticGrid' must be an integer >= 2: current value is 1/,
  );
  assert.throws(
    () =>
      augmentSlice(new Float32Array(4), null, {
        size: [2, 2],
        channels: 1,
        transform: {
          ...ID,
          elastic: {
            grid: [2, 2],
            dx: new Float32Array(3),
            dy: new Float32Array(4),
          },
        },
      }),
    /elastic warp must hold a grid of at least 2 × 2 offsets/,
  );
});
