import assert from "node:assert/strict";
import { join } from "node:path";
import { loadDataset } from "../../data/dataset.ts";
import { readNifti, writeNifti } from "../../data/nifti.ts";
import { makePhantom } from "../../data/phantom.ts";
import { metricsTable } from "../../metrics/evaluate.ts";
import { evaluatePredictions } from "../../pipeline/evaluate_files.ts";

Deno.test("evaluatePredictions: partial evaluation reports missing and unmatched files", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const ds = await loadDataset(
      await makePhantom({
        dir: join(dir, "data"),
        cases: 4,
        size: [16, 16, 8],
        seed: 4,
      }),
    );
    const pred = join(dir, "pred");
    await Deno.mkdir(pred);
    const e = ds.training[0]!;
    const truth = await readNifti(e.label!);
    await writeNifti(join(pred, `${e.id}.nii.gz`), truth);
    await writeNifti(join(pred, "stranger.nii.gz"), truth);
    await assert.rejects(
      () => evaluatePredictions(pred, ds, { split: "training" }),
      /cases of split 'training' have no prediction/,
    );
    const seen: string[] = [];
    const r = await evaluatePredictions(pred, ds, {
      split: "training",
      partial: true,
      onCase: (id) => seen.push(id),
    });
    assert.deepEqual(seen, [e.id]);
    assert.deepEqual(r.unmatched, ["stranger.nii.gz"]);
    assert.equal(r.missing.length, ds.training.length - 1);
    assert.equal(r.summary.mean.dice, 1);
    assert.match(metricsTable(r.summary), /^mean\s+1\.000\s+1\.000/m);
    await assert.rejects(
      () => evaluatePredictions(join(dir, "nowhere"), ds),
      /folder '.*nowhere' does not exist/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("evaluatePredictions refuses undeclared and fractional prediction labels, naming the file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const ds = await loadDataset(
      await makePhantom({
        dir: join(dir, "data"),
        cases: 2,
        size: [16, 16, 8],
        seed: 4,
      }),
    );
    const declared = Object.keys(ds.labels).join(", ");
    const pred = join(dir, "pred");
    await Deno.mkdir(pred);
    const e = ds.training[0]!;
    const truth = await readNifti(e.label!);
    const path = join(pred, `${e.id}.nii.gz`);
    for (const [value, shown] of [[42, "42"], [1.5, "1.5"]] as const) {
      const data = Float32Array.from(truth.data);
      data[3] = value;
      data[4] = value;
      await writeNifti(path, { ...truth, data });
      await assert.rejects(
        () =>
          evaluatePredictions(pred, ds, { split: "training", partial: true }),
        {
          name: "Error",
          message:
            `Label map '${path}' has values not declared in dataset.json 'labels' (${declared}): ${shown} (2 voxels)`,
        },
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
