/**
 * Segmenting a volume from code with a trained run (the output directory of
 * `deno task train`): load the networks once, predict, and write the labels
 * with the input's header and affine.
 *
 * Run: `deno run -A examples/inference.ts RUN_DIR image.nii.gz out.nii.gz`
 *
 * @module
 */
import { selectBackend } from "../backends/mod.ts";
import { readNifti, writeNifti } from "../data/mod.ts";
import { loadTrainedModel, predictVolume } from "../pipeline/mod.ts";

const [runDir, imagePath, outPath] = Deno.args;
if (!runDir || !imagePath || !outPath) {
  console.error(
    "usage: deno run -A examples/inference.ts RUN_DIR image.nii.gz out.nii.gz",
  );
  Deno.exit(2);
}
await selectBackend("auto", { purpose: "infer" });
const model = await loadTrainedModel(runDir);
try {
  const volume = await readNifti(imagePath);
  const labels = await predictVolume(model, volume);
  await writeNifti(outPath, { ...volume, data: labels }, { datatype: "uint8" });
  const counts = new Map<number, number>();
  for (const v of labels) if (v) counts.set(v, (counts.get(v) ?? 0) + 1);
  for (const t of model.targets) {
    console.log(`${t.name}: ${counts.get(t.id) ?? 0} voxels`);
  }
  console.log(`wrote ${outPath}`);
} finally {
  model.dispose();
}
