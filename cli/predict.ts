/**
 * `deno task predict --model RUN_DIR --image in.nii.gz --out out.nii.gz`:
 * segments one volume with a trained run and writes the label map with the
 * input's header and affine. Runs trained on a PASCAL VOC folder also take
 * `--image photo.jpg|.png --out labels.png` (an 8-bit label PNG with the VOC
 * palette, the input's size). `--volume-index K` picks volume K (from 0) of a
 * 4D NIfTI for runs trained on 3D volumes. See {@linkcode predictFile}.
 *
 * @module
 */
import { selectBackend } from "../backends/mod.ts";
import { predictFile, type PredictFileOptions } from "../pipeline/predict.ts";
import { parseFlags, runCli, UsageError } from "./_args.ts";

const USAGE =
  `Usage: deno task predict --model RUN_DIR --image in.nii.gz|in.jpg|in.png --out out.nii.gz|out.png [--coarse mask.nii.gz|mask.png] [--volume-index K] [--backend auto|cpu|wasm|webgpu]`;

await runCli(async () => {
  const { values } = parseFlags("predict", Deno.args, {
    model: { type: "string" },
    image: { type: "string" },
    out: { type: "string" },
    coarse: { type: "string" },
    "volume-index": { type: "string" },
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
  const options: PredictFileOptions = {
    onWarning: (m) => console.error(`warning: ${m}`),
  };
  if (values.coarse) options.coarse = values.coarse;
  const k = values["volume-index"];
  if (k !== undefined) {
    // Which volume of a 4D NIfTI to segment (0-based).
    if (!/^\d+$/.test(k.trim())) {
      throw new UsageError(
        `predict: --volume-index must be an integer >= 0 (0 is the first volume): current value is "${k}"`,
      );
    }
    options.volumeIndex = Number(k);
  }
  const report = await selectBackend(values.backend, { purpose: "infer" });
  console.error(`backend: ${report.name} (${report.reason})`);
  const r = await predictFile(
    values.model!,
    values.image!,
    values.out!,
    options,
  );
  console.log(`wrote ${r.out}`);
});
