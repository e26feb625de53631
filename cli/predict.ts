/**
 * `deno task predict --model RUN_DIR --image in.nii.gz --out out.nii.gz`:
 * segments one volume with a trained run and writes the label map with the
 * input's header and affine. Runs trained on a PASCAL VOC folder also take
 * `--image photo.jpg|.png --out labels.png` (an 8-bit label PNG with the VOC
 * palette, the input's size). `--volume-index K` picks volume K (from 0) of a
 * 4D NIfTI for runs trained on 3D volumes. See {@linkcode predictFile}. From
 * JSR: `deno run -A jsr:@agcl/agcl/predict --help`.
 *
 * @module
 */
import { selectBackend } from "../backends/mod.ts";
import { join } from "node:path";
import {
  loadTrainedModel,
  predictFile,
  type PredictFileOptions,
} from "../pipeline/predict.ts";
import { Progress } from "../pipeline/progress.ts";
import { formatUsage, parseFlags, runCli, UsageError } from "./_args.ts";

const USAGE: string = formatUsage("predict", {
  required: "--model RUN_DIR --image FILE|DIR --out FILE|DIR",
  summary:
    "Segments an image, or every image in a folder (with a progress bar), with a trained run and writes the label maps (NIfTI with the input's header and affine, or label PNGs for VOC runs).",
  flags: [
    [
      "--model RUN_DIR",
      "a finished run directory (deno task train --out), or its model/ folder",
    ],
    [
      "--image FILE|DIR",
      "in.nii.gz | in.nii, or in.jpg | in.png for VOC runs; or a folder of them",
    ],
    [
      "--out FILE|DIR",
      "out.nii.gz | out.nii, or out.png for image inputs; a folder for a folder (same names, .png for images)",
    ],
    [
      "--coarse FILE|DIR",
      "coarse mask (.nii.gz, or .png for images), or a folder of masks named as the outputs; runs trained with --coarse need it",
    ],
    [
      "--volume-index K",
      "segment volume K (from 0) of a 4D NIfTI, for runs trained on 3D volumes",
    ],
    ["--backend NAME", "auto | cpu | wasm | webgpu (default auto)"],
    ["--quiet", "no progress bar"],
  ],
});

async function main(args: string[]): Promise<void> {
  const { values } = parseFlags("predict", args, {
    model: { type: "string" },
    image: { type: "string" },
    out: { type: "string" },
    coarse: { type: "string" },
    "volume-index": { type: "string" },
    backend: { type: "string", default: "auto" },
    quiet: { type: "boolean" },
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
  const options: Omit<PredictFileOptions, "out"> = {
    onWarning: (m) => console.error(`warning: ${m}`),
  };
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
  if (!(await isDirectory(values.image!))) {
    const r = await predictFile(values.model!, values.image!, {
      ...options,
      out: values.out!,
      ...(values.coarse ? { coarse: values.coarse } : {}),
    });
    console.log(`wrote ${r.out}`);
    return;
  }
  // A folder: every image in it, the model loaded once, with a progress bar.
  const names: string[] = [];
  for await (const e of Deno.readDir(values.image!)) {
    if (e.isFile && INPUT.test(e.name)) names.push(e.name);
  }
  names.sort();
  if (names.length === 0) {
    throw new Error(
      `Cannot predict the folder '${values.image}' as it holds no .nii, .nii.gz, .jpg, .jpeg or .png file`,
    );
  }
  await Deno.mkdir(values.out!, { recursive: true });
  const model = await loadTrainedModel(values.model!);
  try {
    const bar = new Progress(
      "predict",
      names.length,
      values.quiet ? { mode: "quiet" } : {},
    );
    for (const name of names) {
      const image = /\.nii(\.gz)?$/i.test(name);
      const outName = image ? name : name.replace(/\.[a-z]+$/i, ".png");
      await predictFile(model, join(values.image!, name), {
        ...options,
        out: join(values.out!, outName),
        ...(values.coarse ? { coarse: join(values.coarse, outName) } : {}),
      });
      bar.tick(1, name);
    }
    bar.done();
  } finally {
    model.dispose();
  }
  console.log(`wrote ${names.length} label maps to ${values.out}`);
}

/** The inputs `predict` reads from a folder. */
const INPUT = /\.(nii|nii\.gz|jpe?g|png)$/i;

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false; // predictFile names the missing file
  }
}

if (import.meta.main) await runCli(() => main(Deno.args));
