/**
 * `deno task train [flags]`: runs the three AGCL stages (coarse
 * segmentation, pre-training, frozen-encoder segmentation), then inference,
 * label fusion and metrics, into a run directory.
 *
 * With no flags it trains the `tiny` preset on the embedded phantom. From
 * JSR: `deno run -A jsr:@agcl/agcl/train --help`.
 *
 * @module
 */
import {
  isPresetName,
  mergeConfig,
  type PartialConfig,
  type PipelineConfig,
  PRESETS,
} from "../pipeline/config.ts";
import { isVocFolder } from "../pipeline/prepare.ts";
import {
  formatUsage,
  parseFlags,
  parseSets,
  readConfigFile,
  runCli,
  UsageError,
} from "./_args.ts";

/** Flags of `deno task train`. */
export const TRAIN_FLAGS = {
  data: { type: "string" },
  preset: { type: "string" },
  config: { type: "string" },
  set: { type: "string", multiple: true },
  pretrain: { type: "string" },
  backbone: { type: "string" },
  epochs: { type: "string" },
  minutes: { type: "string" },
  temperature: { type: "string" },
  "patch-size": { type: "string" },
  coarse: { type: "string" },
  seed: { type: "string" },
  backend: { type: "string", default: "auto" },
  out: { type: "string" },
  resume: { type: "boolean" },
  quiet: { type: "boolean" },
  help: { type: "boolean" },
} as const;

/** Usage text. */
export const TRAIN_USAGE: string = formatUsage("train", {
  summary:
    "Trains the three AGCL stages, then predicts, fuses and scores the evaluation cases into a run directory.",
  flags: [
    [
      "--data PATH",
      "dataset.json (Decathlon layout) or a PASCAL VOC folder; default: the embedded phantom",
    ],
    ["--preset NAME", "tiny | paper-r50 | paper-r101 (default tiny)"],
    ["--config FILE", "JSON config (full or partial) merged over the preset"],
    [
      "--set FIELD=VALUE",
      "override any config field, e.g. --set pretrain.lr=0.01 or --set intensity.window=-1000,1000 (repeatable)",
    ],
    ["--pretrain METHOD", "agcl | supcon | sscl | ce | none"],
    ["--backbone DEPTH", "18 | 34 | 50 | 101 (or resnet50)"],
    [
      "--epochs N",
      'epochs of every stage, or "auto" (the default: sized from the training slices and targets)',
    ],
    [
      "--minutes N",
      "fit the whole run into N minutes of wall time, from step times measured at its start (budget.minutes)",
    ],
    ["--temperature T", "contrastive temperature"],
    ["--patch-size N", "patch side in pixels"],
    [
      "--coarse DIR",
      "coarse masks as NIfTI (<case id>.nii.gz) instead of training stage 1",
    ],
    ["--seed N", "seed for everything random"],
    ["--backend NAME", "auto | cpu | wasm | webgpu (default auto)"],
    ["--out DIR", "run directory (default .runs/<preset>-<time>)"],
    [
      "--resume",
      "continue the run in --out from its last complete checkpoint",
    ],
    ["--quiet", "no progress bars"],
  ],
});

function parseNumber(flag: string, text: string, int: boolean): number {
  const v = Number(text);
  if (
    text.trim() === "" || !Number.isFinite(v) || (int && !Number.isInteger(v))
  ) {
    throw new UsageError(
      `train: --${flag} must be ${
        int ? "an integer" : "a number"
      }: current value is "${text}"`,
    );
  }
  return v;
}

/** The parsed command line: the merged config and the run options. */
export interface TrainInvocation {
  /** The merged, validated config. */
  config: PipelineConfig;
  /** Preset the config started from. */
  preset: string;
  /** Backend choice. */
  backend: string;
  /** Run directory, when given. */
  out: string | undefined;
  /** Resume the run in `out`. */
  resume: boolean;
  /** No progress bars. */
  quiet: boolean;
  /** Print usage and exit. */
  help: boolean;
}

/**
 * Parses `deno task train` arguments into a merged config: preset, then
 * `--config`, then `--set`, then the named flags.
 *
 * @param args Command-line arguments.
 * @returns The merged config and run options.
 * @throws {UsageError} For an unknown flag (listing the valid ones), a bad
 * value, or an unknown config field (listing the valid fields).
 */
export async function parseTrainArgs(args: string[]): Promise<TrainInvocation> {
  const { values } = parseFlags("train", args, TRAIN_FLAGS);
  const preset = values.preset ?? "tiny";
  if (!isPresetName(preset)) {
    throw new UsageError(
      `train: unknown preset "${preset}": expected one of ${
        Object.keys(PRESETS).map((p) => `"${p}"`).join(", ")
      }`,
    );
  }
  const layers: unknown[] = [];
  // Natural images (a PASCAL VOC folder): the paper's T = 0.07 and
  // mirrored training slices, unless set.
  if (values.data !== undefined && await isVocFolder(values.data)) {
    layers.push({
      pretrain: { temperature: 0.07 },
      coarse: { flip: "horizontal" },
    });
  }
  if (values.config) layers.push(await readConfigFile(values.config));
  layers.push(parseSets("train", values.set ?? []));
  const flags: PartialConfig = {};
  if (values.data !== undefined) flags.data = values.data;
  if (values.seed !== undefined) {
    flags.seed = parseNumber("seed", values.seed, true);
  }
  if (values["patch-size"] !== undefined) {
    flags.patchSize = parseNumber("patch-size", values["patch-size"], true);
  }
  if (values.backbone !== undefined) {
    const depth = Number(values.backbone.replace(/^resnet-?/i, ""));
    if (![18, 34, 50, 101].includes(depth)) {
      throw new UsageError(
        `train: --backbone must be one of 18, 34, 50, 101: current value is "${values.backbone}"`,
      );
    }
    flags.model = { backbone: depth as 18 | 34 | 50 | 101 };
  }
  if (values.pretrain !== undefined || values.temperature !== undefined) {
    flags.pretrain = {};
    if (values.pretrain !== undefined) {
      flags.pretrain.method = values
        .pretrain as PipelineConfig["pretrain"]["method"];
    }
    if (values.temperature !== undefined) {
      flags.pretrain.temperature = parseNumber(
        "temperature",
        values.temperature,
        false,
      );
    }
  }
  if (values.epochs !== undefined) {
    const epochs = values.epochs === "auto"
      ? "auto"
      : parseNumber("epochs", values.epochs, true);
    flags.coarse = { epochs };
    flags.pretrain = { ...flags.pretrain, epochs };
    flags.segment = { epochs };
  }
  if (values.minutes !== undefined) {
    const minutes = parseNumber("minutes", values.minutes, false);
    if (!(minutes > 0)) {
      throw new UsageError(
        `train: --minutes must be > 0: current value is "${values.minutes}"`,
      );
    }
    if (values.resume) {
      throw new UsageError(
        "train: --minutes cannot change a resumed run: it keeps the budget recorded in its config.json",
      );
    }
    flags.budget = { minutes };
  }
  if (values.coarse !== undefined) {
    flags.coarse = { ...flags.coarse, masks: values.coarse };
  }
  layers.push(flags);
  let config: PipelineConfig = PRESETS[preset];
  for (const layer of layers) {
    try {
      config = mergeConfig(config, layer);
    } catch (e) {
      throw new UsageError(`train: ${e instanceof Error ? e.message : e}`);
    }
  }
  return {
    config,
    preset,
    backend: values.backend,
    out: values.out,
    resume: values.resume ?? false,
    quiet: values.quiet ?? false,
    help: values.help ?? false,
  };
}

function defaultOut(preset: string): string {
  const t = new Date().toISOString().replace(/[-:]/g, "").replace("T", "-")
    .slice(0, 15);
  return `.runs/${preset}-${t}`;
}

if (import.meta.main) {
  await runCli(async () => {
    const inv = await parseTrainArgs(Deno.args);
    if (inv.help) {
      console.log(TRAIN_USAGE);
      return;
    }
    if (inv.resume && !inv.out) {
      throw new UsageError(
        "train: --resume needs --out RUN_DIR, the run to continue",
      );
    }
    const { runPipeline } = await import("../pipeline/run.ts");
    await runPipeline(inv.config, {
      out: inv.out ?? defaultOut(inv.preset),
      resume: inv.resume,
      quiet: inv.quiet,
      backend: inv.backend,
    });
  });
}
