import assert from "node:assert/strict";
import { join } from "node:path";
import {
  loadDataset,
  makePhantom,
  readNifti,
  writeNifti,
} from "../../data/mod.ts";
import { overlaysFromRun, radiologicalSlice } from "../../report/_overlays.ts";
import { H, vocFixture, W } from "../pipeline/_voc_fixture.ts";

Deno.test("radiologicalSlice() turns a canonical axial slice by 180°: patient right left, anterior up", () => {
  // Canonical RAS slice z=1 of a 2×2×2 volume, rows y=0 (posterior) first:
  // [[a, b], [c, d]] with b, d at larger x (patient right), c, d anterior.
  const data = [0, 0, 0, 0, 1, 2, 3, 4];
  assert.deepEqual(Array.from(radiologicalSlice(data, 2, 2, 1)), [4, 3, 2, 1]);
});

/** Mean display column and row of `label` in a `[height, width]` slice. */
function centroid(
  a: ArrayLike<number>,
  width: number,
  label: number,
): [number, number] {
  let sx = 0, sy = 0, n = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === label) {
      sx += i % width;
      sy += Math.floor(i / width);
      n++;
    }
  }
  assert.ok(n > 0, `label ${label} is absent`);
  return [sx / n, sy / n];
}

Deno.test("overlaysFromRun() shows LPS and RAS files alike: liver on the image left, spleen right and down", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // Phantom cases 0 and 1 are stored LPS, case 2 RAS (see makePhantom).
    const dsPath = await makePhantom({
      dir: join(dir, "data"),
      cases: 3,
      size: [48, 48, 12],
      seed: 5,
    });
    const ds = await loadDataset(dsPath);
    const run = join(dir, "run");
    await Deno.mkdir(join(run, "predictions"), { recursive: true });
    const affines: number[][][] = [];
    for (const e of [...ds.training, ...ds.validation]) {
      const lab = await readNifti(e.label!);
      affines.push(lab.affine);
      await writeNifti(join(run, "predictions", `${e.id}.nii.gz`), lab);
    }
    // Both storage orders are present, so the check below covers both.
    assert.deepEqual(
      new Set(affines.map((a) => Math.sign(a[0]![0]!))),
      new Set([-1, 1]),
    );
    const { slices } = await overlaysFromRun(run, { dataPath: dsPath }, 3);
    assert.equal(slices.length, 3);
    for (const s of slices) {
      assert.match(
        s.caption,
        /^phantom_00\d, slice z=\d+ of 12 \(from inferior\)$/,
      );
      assert.match(
        s.view!,
        /radiological view: patient right on image left, anterior up/,
      );
      assert.deepEqual(s.sides, {
        left: "R",
        right: "L",
        top: "A",
        bottom: "P",
      });
      const mid = s.width / 2;
      const [liverX] = centroid(s.truth, s.width, 5); // liver: patient right
      const [spleenX, spleenY] = centroid(s.truth, s.width, 1); // spleen: left, posterior
      assert.ok(liverX < mid, `${s.caption}: liver at column ${liverX}`);
      assert.ok(spleenX > mid, `${s.caption}: spleen at column ${spleenX}`);
      assert.ok(
        spleenY > s.height / 2,
        `${s.caption}: spleen at row ${spleenY}`,
      );
      assert.deepEqual(Array.from(s.pred), Array.from(s.truth));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("overlaysFromRun() draws a VOC run's photos top row first", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const root = join(dir, "voc");
    await vocFixture(root);
    const run = join(dir, "run");
    await Deno.mkdir(join(run, "predictions"), { recursive: true });
    // The "prediction": b1's cat disc (centre row 12 of 32) as a 2D NIfTI.
    const mask = new Uint8Array(W * H);
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        if ((x - 10 - 4) ** 2 + (y - 12) ** 2 < 36) mask[y * W + x] = 8;
      }
    }
    await writeNifti(join(run, "predictions", "b1.nii.gz"), {
      data: mask,
      dims: [W, H, 1],
      spacing: [1, 1, 1],
      affine: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
    });
    const { slices } = await overlaysFromRun(run, { dataPath: root }, 3);
    assert.equal(slices.length, 1);
    const s = slices[0]!;
    assert.deepEqual([s.width, s.height, s.caption], [W, H, "b1"]);
    assert.equal(s.sides, undefined);
    const [, predY] = centroid(s.pred, W, 8);
    const [, truthY] = centroid(s.truth, W, 8);
    assert.ok(Math.abs(predY - 12) < 0.5 && Math.abs(truthY - 12) < 0.5);
    // The photo: the bright disc (230) is where the cat is.
    assert.ok(s.image[12 * W + 14]! > s.image[2 * W + 2]!);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
