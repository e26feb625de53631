import assert from "node:assert/strict";
import { join } from "node:path";
import {
  makePhantom,
  percentileNormalize,
  readNifti,
  toCanonical,
  windowIntensity,
  writeNifti,
} from "../../data/mod.ts";
import { mergeConfig, PRESETS } from "../../pipeline/config.ts";
import { heldOutIndices, prepareData } from "../../pipeline/prepare.ts";

const AFFINE = [[2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0], [0, 0, 0, 1]];

// A dataset of `n` 8×8×2 cases whose labels use only the values in `present`.
async function makeDataset(
  dir: string,
  n: number,
  present: number[],
): Promise<string> {
  await Deno.mkdir(join(dir, "imagesTr"), { recursive: true });
  await Deno.mkdir(join(dir, "labelsTr"), { recursive: true });
  const training = [];
  for (let i = 0; i < n; i++) {
    const img = Int16Array.from({ length: 128 }, (_, k) => (k * 7 + i) % 50);
    const lab = new Uint8Array(128);
    present.forEach((v, j) => lab.fill(v, 10 + j * 20, 20 + j * 20));
    const meta = {
      dims: [8, 8, 2] as [number, number, number],
      spacing: [2, 2, 2] as [number, number, number],
      affine: AFFINE,
    };
    await writeNifti(join(dir, "imagesTr", `c${i}.nii.gz`), {
      ...meta,
      data: img,
    });
    await writeNifti(join(dir, "labelsTr", `c${i}.nii.gz`), {
      ...meta,
      data: lab,
    });
    training.push({
      image: `./imagesTr/c${i}.nii.gz`,
      label: `./labelsTr/c${i}.nii.gz`,
      domain: i % 2 ? "b" : "a",
    });
  }
  const json = join(dir, "dataset.json");
  await Deno.writeTextFile(
    json,
    JSON.stringify({
      labels: { 0: "background", 1: "one", 2: "two" },
      training,
    }),
  );
  return json;
}

Deno.test("prepareData() holds out part of training when there is no validation list, and records it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const json = await makeDataset(dir, 5, [1, 2]);
    const config = mergeConfig(PRESETS.tiny, {
      validationFraction: 0.4,
      seed: 2,
    });
    const data = await prepareData(json, config);
    assert.equal(data.split.source, "held-out");
    assert.equal(data.split.fraction, 0.4);
    assert.equal(data.evaluation.length, 2);
    assert.equal(data.train.length, 3);
    assert.deepEqual(
      new Set([...data.split.train, ...data.split.evaluation]).size,
      5,
    );
    assert.deepEqual(data.targets, [{ id: 1, name: "one" }, {
      id: 2,
      name: "two",
    }]);
    assert.deepEqual(data.domains, ["a", "b"]);
    // Stratified by domain: each domain is both trained on and evaluated.
    for (const d of ["a", "b"]) {
      assert.ok(data.train.some((c) => c.entry.domain === d), d);
      assert.ok(data.evaluation.some((c) => c.entry.domain === d), d);
    }
    assert.equal(data.intensity, "percentile"); // no values below −100
    const again = await prepareData(json, config);
    assert.deepEqual(again.split, data.split); // seeded
    const c = data.train[0]!;
    assert.equal(c.image.length, 128);
    assert.ok(c.image.every((v) => v >= 0 && v <= 1));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("prepareData() refuses a label with no voxels in training, naming it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const json = await makeDataset(dir, 3, [1]);
    await assert.rejects(prepareData(json, PRESETS.tiny), {
      message: /label 2 \("two"\) has no voxels in the 2 training case\(s\)/,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("heldOutIndices: one domain is a seeded draw; several are held out within each domain", () => {
  const one = heldOutIndices(Array(10).fill("x"), { fraction: 0.3, seed: 4 });
  assert.equal(one.size, 3);
  assert.deepEqual(
    heldOutIndices(Array(10).fill("x"), { fraction: 0.3, seed: 4 }),
    one,
  );
  const doms = ["a", "a", "a", "a", "b", "b", "c"];
  const s = heldOutIndices(doms, { fraction: 0.34, seed: 1 });
  const held = (d: string) => [...s].filter((i) => doms[i] === d).length;
  assert.equal(held("a"), 1); // round(4 · 0.34)
  assert.equal(held("b"), 1); // 2 cases: one held out, one kept
  assert.equal(held("c"), 0); // a single case stays in training
  // Only single-case domains: the draw spans them, keeping one to train on.
  const two = heldOutIndices(["ch2", "ch2better"], { fraction: 0.34, seed: 0 });
  assert.equal(two.size, 1);
  assert.equal(
    heldOutIndices(["a", "b", "c"], { fraction: 0.9, seed: 0 }).size,
    2,
  );
});

Deno.test("prepareData() warns when an evaluation domain has no training case", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const json = await makeDataset(dir, 2, [1, 2]);
    const warnings: string[] = [];
    const data = await prepareData(
      json,
      mergeConfig(PRESETS.tiny, {}),
      { onWarning: (m) => warnings.push(m) },
    );
    assert.equal(data.evaluation.length, 1);
    const d = data.evaluation[0]!.entry.domain;
    assert.equal(warnings.length, 1);
    assert.equal(
      warnings[0],
      `evaluation case(s) of domain "${d}" have no training case of that domain: the Dice measures transfer to an unseen acquisition (each of these domains has a single labelled case; add a validation list to dataset.json to choose the split)`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("prepareData() refuses label values that dataset.json does not declare, naming the file, value and labels", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const json = await makeDataset(dir, 3, [1, 2, 5]);
    await assert.rejects(
      prepareData(json, mergeConfig(PRESETS.tiny, {})),
      {
        name: "Error",
        message: `Label map '${
          join(dir, "labelsTr", "c0.nii.gz")
        }' has values not declared in dataset.json 'labels' (0, 1, 2): 5 (10 voxels)`,
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("prepareData() refuses a case in both training and validation, naming the entries", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const json = await makeDataset(dir, 3, [1, 2]);
    const ds = JSON.parse(await Deno.readTextFile(json));
    ds.validation = [ds.training[2], ds.training[1]];
    await Deno.writeTextFile(json, JSON.stringify(ds));
    await assert.rejects(
      prepareData(json, mergeConfig(PRESETS.tiny, {})),
      {
        name: "Error",
        message:
          `Cannot train on ${json}: 'training'[2] and 'validation'[0] are the same case (${
            join(dir, "imagesTr", "c2.nii.gz")
          }); a case that is trained on cannot also be scored`,
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("prepareData() drops a repeated training entry with a warning and records it in the split", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const json = await makeDataset(dir, 3, [1, 2]);
    const ds = JSON.parse(await Deno.readTextFile(json));
    ds.validation = [ds.training.pop()];
    ds.training.push(ds.training[0]);
    await Deno.writeTextFile(json, JSON.stringify(ds));
    const warnings: string[] = [];
    const data = await prepareData(
      json,
      mergeConfig(PRESETS.tiny, {}),
      { onWarning: (m) => warnings.push(m) },
    );
    const image = join(dir, "imagesTr", "c0.nii.gz");
    assert.deepEqual(data.split.train, ["c0", "c1"]);
    assert.deepEqual(data.split.droppedDuplicates, [
      { list: "training", image, entries: [0, 2] },
    ]);
    assert.deepEqual(warnings, [
      `${json}: 'training'[2] repeats 'training'[0] (${image}); the repeat was dropped so that the case counts once`,
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("prepareData() warns about NaN or infinite voxels, naming the image", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const json = await makeDataset(dir, 3, [1, 2]);
    const image = join(dir, "imagesTr", "c1.nii.gz");
    const data = new Float32Array(128).fill(10);
    data[5] = NaN;
    data[6] = -Infinity;
    await writeNifti(image, {
      data,
      dims: [8, 8, 2],
      spacing: [2, 2, 2],
      affine: AFFINE,
    });
    const warnings: string[] = [];
    await prepareData(
      json,
      mergeConfig(PRESETS.tiny, { intensity: "percentile" }),
      { onWarning: (m) => warnings.push(m) },
    );
    assert.ok(
      warnings.includes(
        `${image} has 2 NaN or infinite voxels; they were mapped to finite intensities`,
      ),
      warnings.join("\n"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("prepareData() warns when an image's voxel size is assumed (pixdim 0, no qform or sform)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const json = await makeDataset(dir, 3, [1, 2]);
    const ds = JSON.parse(await Deno.readTextFile(json));
    // Case 2 rewritten as .nii with pixdim[1..3] = 0, qform_code = sform_code
    // = 0 in both image and label (they must agree to be accepted).
    for (const kind of ["image", "label"] as const) {
      const gz = join(dir, ds.training[2][kind]);
      const path = gz.replace(/\.gz$/, "");
      await writeNifti(path, await readNifti(gz));
      const bytes = await Deno.readFile(path);
      const v = new DataView(bytes.buffer);
      for (let i = 1; i <= 3; i++) v.setFloat32(76 + 4 * i, 0, true);
      v.setInt16(252, 0, true);
      v.setInt16(254, 0, true);
      await Deno.writeFile(path, bytes);
      ds.training[2][kind] = ds.training[2][kind].replace(/\.gz$/, "");
    }
    await Deno.writeTextFile(json, JSON.stringify(ds));
    const image = join(dir, "imagesTr", "c2.nii");
    const warnings: string[] = [];
    await prepareData(
      json,
      mergeConfig(PRESETS.tiny, { intensity: "percentile" }),
      { onWarning: (m) => warnings.push(m) },
    );
    assert.deepEqual(warnings, [
      `${image}: pixdim[1..3] is [0,0,0] and qform_code and sform_code are 0: a voxel size of 1 mm was assumed along x, y, z, so distances in mm (HD95, ASSD) may be meaningless`,
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("prepareData() default intensity is byte-identical to the paper's window; a set window and percentiles apply", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const json = await makePhantom({
      dir,
      cases: 3,
      size: [16, 16, 8],
    });
    const config = mergeConfig(PRESETS.tiny, { validationFraction: 0.34 });
    const canon = async (c: { entry: { image: string } }) =>
      toCanonical(await readNifti(c.entry.image));
    const bytes = (a: Float32Array) => new Uint8Array(a.buffer);
    const data = await prepareData(json, config);
    assert.equal(data.intensity, "window"); // HU values below −100
    for (const c of [...data.train, ...data.evaluation]) {
      // What the code computed before intensity.window existed.
      assert.deepEqual(bytes(c.image), bytes(windowIntensity(await canon(c))));
    }
    const wide = await prepareData(
      json,
      mergeConfig(config, { intensity: { window: [-1000, 1000] } }),
    );
    const w = wide.train[0]!;
    const expected = windowIntensity(await canon(w), { min: -1000, max: 1000 });
    assert.deepEqual(bytes(w.image), bytes(expected));
    assert.notDeepEqual(bytes(w.image), bytes(windowIntensity(await canon(w))));
    const head = await prepareData(
      json,
      mergeConfig(config, { intensity: { window: "head" } }),
    );
    assert.deepEqual(
      bytes(head.train[0]!.image),
      bytes(windowIntensity(await canon(w), { min: 0, max: 80 })),
    );
    const pct = await prepareData(
      json,
      mergeConfig(config, {
        intensity: { mode: "percentile", percentiles: [5, 95] },
      }),
    );
    assert.equal(pct.intensity, "percentile");
    assert.deepEqual(
      bytes(pct.train[0]!.image),
      bytes(percentileNormalize(await canon(w), { lower: 5, upper: 95 })),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
