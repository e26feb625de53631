/**
 * `deno task eval --pred DIR --gt dataset.json [--split validation]
 * [--out metrics.json] [--partial]`: evaluates a folder of predicted NIfTI
 * label maps against a dataset split and writes `metrics.json` (the shape
 * `train` writes). From JSR: `deno run -A jsr:@agcl/agcl/eval --help`.
 *
 * @module
 */
import { metricsCsv, metricsTable } from "../metrics/evaluate.ts";
import { evaluatePredictions } from "../pipeline/evaluate_files.ts";
import { Progress } from "../pipeline/progress.ts";
import { writeFileAtomic } from "../data/_io.ts";
import { formatUsage, parseFlags, runCli, UsageError } from "./_args.ts";

/** `metrics.csv` beside `metrics.json` (any other name: `<name>.csv`). */
function csvBeside(json: string): string {
  return json.replace(/\.json$/i, "") + ".csv";
}

const SPLITS = ["training", "validation", "test"] as const;

const USAGE: string = formatUsage("eval", {
  required: "--pred DIR --gt dataset.json",
  summary:
    "Scores a folder of predicted label maps against a dataset split and writes metrics.json (the shape train writes).",
  flags: [
    ["--pred DIR", "predicted label maps (<image name>.nii[.gz])"],
    ["--gt FILE", "the dataset.json whose split is the truth"],
    ["--split NAME", "training | validation | test (default validation)"],
    [
      "--out FILE",
      "metrics.json to write (default metrics.json), with metrics.csv beside it",
    ],
    [
      "--partial",
      "score the cases that have a prediction, not fail on missing ones",
    ],
    ["--quiet", "no progress bar"],
  ],
});

async function main(args: string[]): Promise<void> {
  const { values } = parseFlags("eval", args, {
    pred: { type: "string" },
    gt: { type: "string" },
    split: { type: "string", default: "validation" },
    out: { type: "string", default: "metrics.json" },
    partial: { type: "boolean", default: false },
    quiet: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (!values.pred) {
    throw new UsageError(
      "eval: --pred DIR (the predicted label maps) is required",
    );
  }
  if (!values.gt) throw new UsageError("eval: --gt dataset.json is required");
  const split = values.split as typeof SPLITS[number];
  if (!SPLITS.includes(split)) {
    throw new UsageError(
      `eval: --split must be one of ${
        SPLITS.join(", ")
      }: got '${values.split}'`,
    );
  }
  let bar: Progress | undefined;
  const r = await evaluatePredictions(values.pred, values.gt, {
    split,
    partial: values.partial,
    ...(values.quiet ? {} : {
      onCase: (id: string, _m: unknown, p: { done: number; total: number }) => {
        bar ??= new Progress("eval", p.total);
        bar.tick(1, id);
        if (p.done === p.total) bar.done();
      },
    }),
  });
  if (r.missing.length > 0) {
    console.error(
      `note: ${r.missing.length} case(s) of '${split}' had no prediction and were skipped`,
    );
  }
  if (r.unmatched.length > 0) {
    console.error(
      `note: ${r.unmatched.length} file(s) in ${values.pred} match no case of '${split}' and were ignored`,
    );
  }
  await writeFileAtomic(values.out, JSON.stringify(r.summary, null, 2) + "\n");
  const csv = csvBeside(values.out);
  await writeFileAtomic(csv, metricsCsv(r.summary));
  console.log(metricsTable(r.summary));
  console.log(
    `wrote ${values.out} and ${csv} (${r.summary.cases.length} cases)`,
  );
}

if (import.meta.main) await runCli(() => main(Deno.args));
