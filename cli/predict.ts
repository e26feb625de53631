/**
 * `deno task predict --model RUN_DIR --image in.nii.gz --out out.nii.gz`:
 * segments one volume with a trained run and writes the label map with the
 * input's header and affine. Runs trained on a PASCAL VOC folder also take
 * `--image photo.jpg|.png --out labels.png` (an 8-bit label PNG with the VOC
 * palette, the input's size). See {@linkcode predictFile}. From JSR:
 * `deno run -A jsr:@agcl/agcl/predict --help`.
 *
 * @module
 */
import { selectBackend } from "../backends/mod.ts";
import { predictFile } from "../pipeline/predict.ts";
import { formatUsage, parseFlags, runCli, UsageError } from "./_args.ts";

const USAGE: string = formatUsage("predict", {
  required: "--model RUN_DIR --image FILE --out FILE",
  summary:
    "Segments one image with a trained run and writes the label map (NIfTI with the input's header and affine, or a label PNG for VOC runs).",
  flags: [
    ["--model RUN_DIR", "a finished run directory (deno task train --out)"],
    ["--image FILE", "in.nii.gz | in.nii, or in.jpg | in.png for VOC runs"],
    ["--out FILE", "out.nii.gz | out.nii, or out.png for image inputs"],
    [
      "--coarse FILE",
      "coarse mask (.nii.gz, or .png for images); runs trained with --coarse need it",
    ],
    ["--backend NAME", "auto | cpu | wasm | webgpu (default auto)"],
  ],
});

async function main(args: string[]): Promise<void> {
  const { values } = parseFlags("predict", args, {
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
      throw new UsageError(`predict: --${k} is required; see --help`);
    }
  }
  const report = await selectBackend(values.backend, { purpose: "infer" });
  console.error(`backend: ${report.name} (${report.reason})`);
  const options = values.coarse ? { coarse: values.coarse } : {};
  const r = await predictFile(
    values.model!,
    values.image!,
    values.out!,
    options,
  );
  console.log(`wrote ${r.out}`);
}

if (import.meta.main) await runCli(() => main(Deno.args));
