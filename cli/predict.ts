/**
 * `deno task predict --model RUN_DIR --image in.nii.gz --out out.nii.gz`:
 * segments one volume with a trained run and writes the label map with the
 * input's header and affine.
 *
 * @module
 */
import { readNifti, writeNifti } from "../data/mod.ts";
import { selectBackend } from "../backends/mod.ts";
import { predictVolume } from "../pipeline/predict.ts";
import { parseFlags, runCli, UsageError } from "./_args.ts";

const USAGE =
  `Usage: deno task predict --model RUN_DIR --image in.nii.gz --out out.nii.gz [--coarse mask.nii.gz] [--backend auto|cpu|wasm|webgpu]`;

await runCli(async () => {
  const { values } = parseFlags("predict", Deno.args, {
    model: { type: "string" },
    image: { type: "string" },
    out: { type: "string" },
    coarse: { type: "string" },
    backend: { type: "string", default: "auto" },
    help: { type: "boolean" },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  for (const k of ["model", "image", "out"] as const) {
    if (!values[k]) {
      throw new UsageError(`predict: --${k} is required; ${USAGE}`);
    }
  }
  const report = await selectBackend(values.backend, { purpose: "infer" });
  console.error(`backend: ${report.name} (${report.reason})`);
  const volume = await readNifti(values.image!);
  const options = values.coarse
    ? { coarse: await readNifti(values.coarse) }
    : {};
  const labels = await predictVolume(values.model!, volume, options);
  let max = 0;
  for (const v of labels) max = Math.max(max, v);
  await writeNifti(values.out!, { ...volume, data: labels }, {
    datatype: max <= 255 ? "uint8" : "int16",
  });
  console.log(`wrote ${values.out}`);
});
