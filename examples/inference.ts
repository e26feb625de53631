/**
 * Segmenting an image from code with a trained run (the output directory of
 * `deno task train`): load the networks once, predict, and write the labels.
 * A NIfTI volume gives NIfTI labels with the input's header and affine; a
 * JPEG/PNG (for runs trained on a PASCAL VOC folder) gives an 8-bit label PNG
 * with the VOC palette.
 *
 * Run: `deno run -A examples/inference.ts RUN_DIR image.nii.gz out.nii.gz`
 * or `deno run -A examples/inference.ts VOC_RUN photo.jpg labels.png`
 *
 * @module
 */
import { selectBackend } from "../backends/mod.ts";
import {
  isImagePath,
  readImage,
  readNifti,
  writeLabelPng,
  writeNifti,
} from "../data/mod.ts";
import {
  loadTrainedModel,
  predictImage,
  predictVolume,
} from "../pipeline/mod.ts";

const [runDir, imagePath, outPath] = Deno.args;
if (!runDir || !imagePath || !outPath) {
  console.error(
    "usage: deno run -A examples/inference.ts RUN_DIR image.nii.gz|photo.jpg out.nii.gz|labels.png",
  );
  Deno.exit(2);
}
await selectBackend("auto", { purpose: "infer" });
const model = await loadTrainedModel(runDir);
try {
  let labels: ArrayLike<number>;
  if (isImagePath(imagePath)) {
    const image = await readImage(imagePath);
    const label = await predictImage(model, image);
    await writeLabelPng(outPath, label);
    labels = label.data;
  } else {
    const volume = await readNifti(imagePath);
    const data = await predictVolume(model, volume);
    await writeNifti(outPath, { ...volume, data }, { datatype: "uint8" });
    labels = data;
  }
  const counts = new Map<number, number>();
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i]!;
    if (v) counts.set(v, (counts.get(v) ?? 0) + 1);
  }
  for (const t of model.targets) {
    console.log(`${t.name}: ${counts.get(t.id) ?? 0} pixels/voxels`);
  }
  console.log(`wrote ${outPath}`);
} finally {
  model.dispose();
}
