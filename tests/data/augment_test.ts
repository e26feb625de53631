import assert from "node:assert/strict";
import {
  augmentPatch,
  BatchStream,
  type Patch,
  resolveAugmentOptions,
  samplePatches,
  sampleViewTransform,
  type SamplingCase,
  type ViewTransform,
} from "../../data/mod.ts";
import { Prng } from "../../random/mod.ts";
import { assertAlmostEquals } from "../_utils.ts";

const OFF = {
  crop: false,
  rotation: false,
  flip: false,
  intensity: false,
  color: false,
} as const;

/** A `p × p` patch with image `f(row, col)` (per channel) and masks from it. */
function makePatch(
  p: number,
  f: (i: number, j: number, c: number) => number,
  channels = 1,
  threshold = 0.5,
): Patch {
  const image = new Float32Array(p * p * channels);
  const attention = new Uint8Array(p * p);
  const label = new Uint8Array(p * p);
  for (let i = 0; i < p; i++) {
    for (let j = 0; j < p; j++) {
      for (let c = 0; c < channels; c++) {
        image[(i * p + j) * channels + c] = f(i, j, c);
      }
      attention[i * p + j] = f(i, j, 0) > threshold - 0.2 ? 1 : 0;
      label[i * p + j] = f(i, j, 0) > threshold ? 1 : 0;
    }
  }
  return { size: p, channels, image, attention, label };
}

/** An off-centre, elongated blob in (0, 1]: no symmetry a flip or turn could hide. */
function blob(p: number): (i: number, j: number) => number {
  return (i, j) =>
    Math.exp(
      -(((i - 0.35 * p) / (0.22 * p)) ** 2 + ((j - 0.6 * p) / (0.3 * p)) ** 2),
    );
}

/**
 * Bilinear and nearest-neighbour sample points lie < 0.71 source pixels
 * apart; the blob's slope is at most √2·e^(-1/2) / (0.22 p) per pixel, so
 * image and threshold can disagree only within this margin of 0.5.
 */
function margin(p: number): number {
  return 0.71 * Math.SQRT2 * Math.exp(-0.5) / (0.22 * p) + 1e-3;
}

Deno.test("augmentPatch() with every transform off copies the patch", () => {
  const patch = makePatch(7, (i, j, c) => i * 10 + j + c / 10, 3);
  const out = augmentPatch(patch, { ...OFF, seed: 1 });
  assert.deepEqual(out, patch);
});

Deno.test("augmentPatch() flips, turns by 90° and resizes crops exactly", () => {
  const p = 6;
  const patch = makePatch(p, (i, j) => i * 10 + j, 1, 20);
  const at = (a: ArrayLike<number>, i: number, j: number) => a[i * p + j]!;
  const full = { top: 0, left: 0, height: p, width: p };
  const flipped = augmentPatch(patch, {
    transform: { crop: full, angle: 0, flip: true },
  });
  for (let i = 0; i < p; i++) {
    for (let j = 0; j < p; j++) {
      assert.equal(at(flipped.image, i, j), at(patch.image, i, p - 1 - j));
      assert.equal(at(flipped.label, i, j), at(patch.label, i, p - 1 - j));
      assert.equal(
        at(flipped.attention, i, j),
        at(patch.attention, i, p - 1 - j),
      );
    }
  }
  // +90° turns the content counter-clockwise: the top-right corner goes to the top-left.
  const turned = augmentPatch(patch, {
    transform: { crop: full, angle: 90, flip: false },
  });
  for (let i = 0; i < p; i++) {
    for (let j = 0; j < p; j++) {
      assertAlmostEquals(
        at(turned.image, i, j),
        at(patch.image, j, p - 1 - i),
        1e-4,
      );
      assert.equal(at(turned.label, i, j), at(patch.label, j, p - 1 - i));
    }
  }
  // A 3×3 crop at (top 1, left 2) resized ×2: bilinear of a linear ramp is the
  // ramp at the mapped position, (row, col) = (1 + (i + 0.5) / 2 - 0.5, 2 + …).
  const crop = { top: 1, left: 2, height: 3, width: 3 };
  const zoomed = augmentPatch(patch, {
    transform: { crop, angle: 0, flip: false },
  });
  for (let i = 1; i < p - 1; i++) {
    for (let j = 1; j < p - 1; j++) {
      const r = 1 + (i + 0.5) / 2 - 0.5;
      const c = 2 + (j + 0.5) / 2 - 0.5;
      assertAlmostEquals(at(zoomed.image, i, j), r * 10 + c, 1e-4);
      // Nearest neighbour: the pixel containing the mapped point.
      assert.equal(
        at(zoomed.label, i, j),
        Math.floor(r + 0.5) * 10 + Math.floor(c + 0.5) > 20 ? 1 : 0,
      );
    }
  }
});

Deno.test("augmentPatch() fills pixels rotated in from outside the crop with 0", () => {
  const p = 16;
  const patch = makePatch(p, () => 1, 1, 0.5);
  const out = augmentPatch(patch, {
    transform: {
      crop: { top: 0, left: 0, height: p, width: p },
      angle: 45,
      flip: false,
    },
  });
  for (
    const [i, j] of [[0, 0], [0, p - 1], [p - 1, 0], [p - 1, p - 1]] as const
  ) {
    assert.equal(out.image[i * p + j], 0);
    assert.equal(out.attention[i * p + j], 0);
    assert.equal(out.label[i * p + j], 0);
  }
  assert.equal(out.image[8 * p + 8], 1);
  assert.equal(out.label[8 * p + 8], 1);
});

/** Asserts the label is the 0.5-threshold of the image wherever the image is clearly on one side. */
function assertAligned(
  image: ArrayLike<number>,
  stride: number,
  label: ArrayLike<number>,
  n: number,
  delta: number,
  what: string,
): number {
  let checked = 0;
  for (let k = 0; k < n; k++) {
    const v = image[k * stride]!;
    if (v > 0.5 + delta) {
      assert.equal(
        label[k],
        1,
        `${what}: pixel ${k} has image ${v} but label 0`,
      );
      checked++;
    } else if (v < 0.5 - delta && v > 0) {
      assert.equal(
        label[k],
        0,
        `${what}: pixel ${k} has image ${v} but label 1`,
      );
      checked++;
    }
  }
  return checked;
}

Deno.test("augmentPatch() keeps masks aligned with the image", () => {
  const p = 48;
  const patch = makePatch(p, blob(p), 1, 0.5);
  const prng = new Prng(21);
  let checked = 0;
  for (let k = 0; k < 40; k++) {
    const out = augmentPatch(patch, { prng, intensity: false });
    checked += assertAligned(
      out.image,
      1,
      out.label,
      p * p,
      margin(p),
      `view ${k}`,
    );
    // The attention (threshold 0.3) contains the label.
    for (let q = 0; q < p * p; q++) {
      assert.ok(out.attention[q]! >= out.label[q]!);
    }
  }
  assert.ok(checked > 40 * p * p * 0.5, `only ${checked} pixels checked`);
});

Deno.test("BatchStream views keep label and attention aligned with the image", () => {
  const [nx, ny, nz] = [40, 36, 2];
  const image = new Float32Array(nx * ny * nz);
  const attention = new Uint8Array(nx * ny * nz);
  const label = new Uint8Array(nx * ny * nz);
  const f = blob(36);
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) {
        const i = (z * ny + y) * nx + x;
        image[i] = f(y, x);
        attention[i] = image[i]! > 0.3 ? 3 : 0;
        label[i] = image[i]! > 0.5 ? 3 : 1;
      }
    }
  }
  const cases: SamplingCase[] = [{
    id: "a",
    domain: 0,
    dims: [nx, ny, nz],
    channels: 1,
    image,
    attention,
    label,
  }];
  const index = samplePatches(cases, { perTarget: 8, patchSize: 32 });
  const stream = new BatchStream(index, cases, {
    batchSize: 4,
    views: 3,
    seed: 5,
    augment: { intensity: false },
  });
  const n = 32 * 32;
  for (let b = 0; b < 4; b++) {
    const batch = stream.next();
    for (let k = 0; k < batch.size * batch.views; k++) {
      const x = batch.x.subarray(k * n * 2, (k + 1) * n * 2);
      const y = batch.y.subarray(k * n, (k + 1) * n);
      assertAligned(x, 2, y, n, margin(36), `batch ${b} view ${k}`);
      for (let q = 0; q < n; q++) {
        assert.ok(x[q * 2 + 1]! >= y[q]!, "label outside attention");
      }
    }
  }
});

Deno.test("sampleViewTransform() draws within the configured ranges", () => {
  const prng = new Prng(8);
  const opts = { ...resolveAugmentOptions(), patchSize: 128, channels: 1 };
  let flips = 0;
  let intensities = 0;
  for (let k = 0; k < 2000; k++) {
    const t = sampleViewTransform(prng, opts);
    const { top, left, height, width } = t.crop;
    const area = (height * width) / 128 ** 2;
    assert.ok(area > 0.29 && area < 0.71, `area ${area}`);
    assert.ok(
      width / height > 0.74 && width / height < 1.35,
      `ratio ${width / height}`,
    );
    assert.ok(
      top >= 0 && left >= 0 && top + height <= 128 && left + width <= 128,
    );
    assert.ok(Math.abs(t.angle) <= 30);
    if (t.flip) flips++;
    if (t.intensity) {
      intensities++;
      assert.ok(t.intensity.gamma >= 0.7 && t.intensity.gamma <= 1.5);
    }
    assert.equal(t.color, undefined);
  }
  assert.ok(flips > 900 && flips < 1100, `flips ${flips}`);
  assert.ok(
    intensities > 1500 && intensities < 1700,
    `intensities ${intensities}`,
  );
  const rgb = sampleViewTransform(new Prng(1), {
    ...resolveAugmentOptions({ color: { p: 1 } }),
    patchSize: 8,
    channels: 3,
  });
  assert.ok(rgb.color && rgb.intensity === undefined);
});

Deno.test("augmentPatch() is deterministic for a seed", () => {
  const patch = makePatch(20, blob(20), 3);
  assert.deepEqual(
    augmentPatch(patch, { seed: 4 }),
    augmentPatch(patch, { seed: 4 }),
  );
  assert.notDeepEqual(
    augmentPatch(patch, { seed: 4 }).image,
    augmentPatch(patch, { seed: 5 }).image,
  );
});

Deno.test("augmentPatch() applies CT intensity and RGB colour transforms to the image only", () => {
  const full = { top: 0, left: 0, height: 5, width: 5 };
  const ct = makePatch(5, (i, j) => (i * 5 + j) / 25, 1, 0.5);
  const t: ViewTransform = {
    crop: full,
    angle: 0,
    flip: false,
    intensity: { scale: 2, shift: 0.1, gamma: 2 },
  };
  const out = augmentPatch(ct, { transform: t });
  assertAlmostEquals(
    out.image,
    [...ct.image].map((v) => 2 * v * v + 0.1),
    1e-6,
  );
  assert.deepEqual(out.label, ct.label);
  assert.deepEqual(out.attention, ct.attention);
  const rgb = makePatch(
    5,
    (i, j, c) => [0.2, 0.5, 0.8][c]! * ((i + j + 1) / 10),
    3,
  );
  const bright = augmentPatch(rgb, {
    transform: {
      crop: full,
      angle: 0,
      flip: false,
      color: { brightness: 1.5, contrast: 1, saturation: 1, hue: 0 },
    },
  });
  assertAlmostEquals(
    bright.image,
    [...rgb.image].map((v) => Math.min(1, v * 1.5)),
    1e-6,
  );
  const gray = augmentPatch(rgb, {
    transform: {
      crop: full,
      angle: 0,
      flip: false,
      color: { brightness: 1, contrast: 1, saturation: 0, hue: 0.3 },
    },
  });
  for (let k = 0; k < 25; k++) {
    const [r, g, b] = [
      gray.image[3 * k]!,
      gray.image[3 * k + 1]!,
      gray.image[3 * k + 2]!,
    ];
    const expected = 0.2989 * rgb.image[3 * k]! +
      0.587 * rgb.image[3 * k + 1]! + 0.114 * rgb.image[3 * k + 2]!;
    // Saturation 0 leaves gray; a hue turn of gray is gray (YIQ to 3 decimals).
    assertAlmostEquals([r, g, b], [expected, expected, expected], 2e-3);
  }
});

Deno.test("augment options are checked", () => {
  assert.throws(() => resolveAugmentOptions({ crop: { scale: [0.7, 0.3] } }), {
    name: "RangeError",
    message:
      "Cannot augment as 'crop.scale' must be [low, high] with 5e-324 <= low <= high <= 1: current value is [0.7,0.3]",
  });
  assert.throws(() => resolveAugmentOptions({ flip: { p: 2 } }), {
    name: "RangeError",
    message: "Cannot augment as 'flip.p' must be in [0, 1]: current value is 2",
  });
  const patch = makePatch(4, () => 0);
  assert.throws(() => augmentPatch({ ...patch, image: new Float32Array(3) }), {
    name: "TypeError",
    message: /Cannot augment patch as its arrays must be image \[4, 4, 1\]/,
  });
});
