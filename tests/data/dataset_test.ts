import assert from "node:assert/strict";
import {
  checkLabelValues,
  checkSameGrid,
  loadCase,
  loadDataset,
  writeNifti,
} from "../../data/mod.ts";
import type { Volume } from "../../data/mod.ts";

const I = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]];

function vol(
  data: Volume["data"],
  dims: [number, number, number],
  affine = I,
): Volume {
  return { data, dims, spacing: [1, 1, 1], affine };
}

/** A tiny BTCV-like layout: dataset_0.json with relative paths and string test entries. */
async function fixture(dir: string): Promise<void> {
  await Deno.mkdir(`${dir}/imagesTr`);
  await Deno.mkdir(`${dir}/labelsTr`);
  await Deno.mkdir(`${dir}/imagesTs`);
  for (const id of ["0001", "0002", "0003"]) {
    await writeNifti(
      `${dir}/imagesTr/img${id}.nii.gz`,
      vol(new Int16Array(24).fill(-100), [4, 3, 2]),
    );
    await writeNifti(
      `${dir}/labelsTr/label${id}.nii.gz`,
      vol(new Uint8Array(24).map((_, i) => i % 3), [4, 3, 2]),
    );
  }
  await writeNifti(
    `${dir}/imagesTs/img0061.nii.gz`,
    vol(new Int16Array(24), [4, 3, 2]),
  );
  // the structure of MONAI's BTCV dataset_0.json
  await Deno.writeTextFile(
    `${dir}/dataset_0.json`,
    JSON.stringify({
      description: "btcv yucheng",
      labels: { "0": "background", "1": "spleen", "2": "rkid" },
      licence: "yt",
      modality: { "0": "CT" },
      name: "btcv",
      numTest: 1,
      numTraining: 2,
      reference: "Vanderbilt University",
      release: "1.0 06/08/2015",
      tensorImageSize: "3D",
      test: ["imagesTs/img0061.nii.gz"],
      training: [
        {
          image: "imagesTr/img0001.nii.gz",
          label: "labelsTr/label0001.nii.gz",
        },
        {
          image: "imagesTr/img0002.nii.gz",
          label: "labelsTr/label0002.nii.gz",
          domain: "non-contrast",
        },
      ],
      validation: [{
        image: "imagesTr/img0003.nii.gz",
        label: "labelsTr/label0003.nii.gz",
      }],
    }),
  );
}

Deno.test("loadDataset reads a BTCV dataset_0.json unchanged", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await fixture(dir);
    const ds = await loadDataset(`${dir}/dataset_0.json`);
    assert.equal(ds.name, "btcv");
    assert.deepEqual(ds.labels, { 0: "background", 1: "spleen", 2: "rkid" });
    assert.deepEqual(ds.domains, ["CT", "non-contrast"]);
    assert.deepEqual(ds.training.map((e) => [e.id, e.domain]), [[
      "img0001",
      "CT",
    ], ["img0002", "non-contrast"]]);
    assert.equal(ds.training[0]!.image, `${dir}/imagesTr/img0001.nii.gz`);
    assert.equal(ds.training[0]!.label, `${dir}/labelsTr/label0001.nii.gz`);
    assert.deepEqual(ds.validation.map((e) => e.id), ["img0003"]);
    assert.deepEqual(ds.test, [{
      id: "img0061",
      image: `${dir}/imagesTs/img0061.nii.gz`,
      domain: "CT",
    }]);
    const c = await loadCase(ds.training[1]!, ds);
    assert.deepEqual(c.label!.dims, [4, 3, 2]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadDataset and loadCase give clear errors for bad datasets", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await fixture(dir);
    const json = JSON.parse(await Deno.readTextFile(`${dir}/dataset_0.json`));
    const write = async (name: string, obj: unknown) => {
      await Deno.writeTextFile(
        `${dir}/${name}`,
        typeof obj === "string" ? obj : JSON.stringify(obj),
      );
      return `${dir}/${name}`;
    };
    await assert.rejects(
      () => loadDataset(`${dir}/nope.json`),
      /nope\.json' as it does not exist/,
    );
    await assert.rejects(
      async () => loadDataset(await write("bad.json", "{ not json")),
      /bad\.json' as it is not valid JSON/,
    );
    await assert.rejects(
      async () =>
        loadDataset(await write("nolab.json", { ...json, labels: undefined })),
      /'labels' must be an object/,
    );
    await assert.rejects(
      async () =>
        loadDataset(
          await write("nolabel.json", {
            ...json,
            training: [{ image: "imagesTr/img0001.nii.gz" }],
          }),
        ),
      /'training'\[0\] \(imagesTr\/img0001\.nii\.gz\) has no 'label'/,
    );
    await assert.rejects(
      async () =>
        loadDataset(
          await write("missing.json", {
            ...json,
            training: [{
              image: "imagesTr/img0009.nii.gz",
              label: "labelsTr/label0001.nii.gz",
            }],
          }),
        ),
      /img0009\.nii\.gz' as it does not exist/,
    );
    // grid mismatch: dims, then affine
    await writeNifti(
      `${dir}/labelsTr/small.nii.gz`,
      vol(new Uint8Array(12), [4, 3, 1]),
    );
    await assert.rejects(
      async () =>
        loadDataset(
          await write("grid.json", {
            ...json,
            training: [{
              image: "imagesTr/img0001.nii.gz",
              label: "labelsTr/small.nii.gz",
            }],
          }),
        ),
      /img0001\.nii\.gz' and label '.*small\.nii\.gz' have different grids: dims \[4,3,2\] vs \[4,3,1\]/,
    );
    await writeNifti(
      `${dir}/labelsTr/moved.nii.gz`,
      vol(new Uint8Array(24), [4, 3, 2], [[1, 0, 0, 5], [0, 1, 0, 0], [
        0,
        0,
        1,
        0,
      ], [0, 0, 0, 1]]),
    );
    await assert.rejects(
      async () =>
        loadDataset(
          await write("aff.json", {
            ...json,
            training: [{
              image: "imagesTr/img0001.nii.gz",
              label: "labelsTr/moved.nii.gz",
            }],
          }),
        ),
      /have different affines/,
    );
    // undeclared label values are caught when the label map is read
    await writeNifti(
      `${dir}/labelsTr/seven.nii.gz`,
      vol(new Uint8Array(24).fill(7), [4, 3, 2]),
    );
    const ds = await loadDataset(
      await write("seven.json", {
        ...json,
        training: [{
          image: "imagesTr/img0001.nii.gz",
          label: "labelsTr/seven.nii.gz",
        }],
      }),
    );
    await assert.rejects(
      () => loadCase(ds.training[0]!, ds),
      /seven\.nii\.gz' has values not declared in dataset\.json 'labels' \(0, 1, 2\): 7 \(24 voxels\)/,
    );
    assert.throws(
      () =>
        checkLabelValues(
          new Uint8Array([0, 1, 1, 5, 5, 5]),
          { labels: { 0: "a", 1: "b" }, source: "x" },
        ),
      /5 \(3 voxels\)/,
    );
    checkLabelValues(new Uint8Array([0, 1, 1]), {
      labels: { 0: "a", 1: "b" },
      source: "x",
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkSameGrid() accepts affines within 1e-4 relative and rejects more", () => {
  const names = { image: "img.nii", label: "lab.nii" };
  const a = [[-0.8, 0, 0, 100], [0, 0.8, 0, -50], [0, 0, 2.5, 12], [
    0,
    0,
    0,
    1,
  ]];
  const near = a.map((r, i) => i === 0 ? [r[0]!, 0, 0, 100 * (1 + 5e-5)] : r);
  const far = a.map((r, i) => i === 0 ? [r[0]!, 0, 0, 100 * (1 + 5e-4)] : r);
  const dims = [4, 3, 2];
  checkSameGrid({ dims, affine: a }, { dims, affine: near }, names);
  // the bottom row carries nothing: 3×4 affines are compared the same way
  checkSameGrid({ dims, affine: a.slice(0, 3) }, {
    dims,
    affine: near.slice(0, 3),
  }, names);
  assert.throws(
    () => checkSameGrid({ dims, affine: a }, { dims, affine: far }, names),
    /Image 'img\.nii' and label 'lab\.nii' have different affines/,
  );
});
