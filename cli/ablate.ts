/**
 * `deno task ablate`: the pre-training ablation of the paper's Table 1.
 * Runs `none`/`sscl`/`ce`/`supcon`/`agcl` × the chosen backbones through the
 * pipeline on one split and seed (resumable: finished runs are skipped,
 * unfinished ones resumed), then writes `table.md`, `table.csv`,
 * `table.json` (with paired Wilcoxon tests of agcl against each baseline)
 * and `report/index.html` under `--out`.
 *
 * ```sh
 * deno task ablate --data ../shared/data/Task104_Digits/dataset.json \
 *   --backbones 18 --out .runs/ablation-digits [--config overrides.json]
 * ```
 *
 * From JSR: `deno run -A jsr:@agcl/agcl/ablate --help`.
 *
 * @module
 */
import {
  isPresetName,
  mergeConfig,
  type PipelineConfig,
  PRESETS,
  runAblation,
  runPipeline,
} from "../pipeline/mod.ts";
import {
  formatUsage,
  parseFlags,
  parseSets,
  readConfigFile,
  runCli,
  UsageError,
} from "./_args.ts";

const METHODS = ["none", "sscl", "ce", "supcon", "agcl"];

const USAGE: string = formatUsage("ablate", {
  summary:
    "Runs the pre-training ablation of the paper's Table 1 (methods × backbones, resumable) and writes its tables and report.",
  flags: [
    [
      "--data PATH",
      "dataset.json or a PASCAL VOC folder; default: the embedded phantom",
    ],
    ["--preset NAME", "tiny | paper-r50 | paper-r101 (default tiny)"],
    [
      "--config FILE",
      "JSON config (partial) merged over the preset for every run",
    ],
    [
      "--set FIELD=VALUE",
      "override a config field for every run, e.g. --set segment.head=targets (repeatable, after --config)",
    ],
    ["--methods LIST", `pre-training methods (default ${METHODS.join(",")})`],
    ["--backbones LIST", "ResNet depths, e.g. 18,50 (default: the preset's)"],
    ["--temperatures LIST", "extra agcl runs at these temperatures (Fig. 5b)"],
    ["--seed N", "one seed for every run"],
    [
      "--seeds LIST",
      "repeat the whole ablation per seed, e.g. 0,1,2 (mean ± std over seeds)",
    ],
    ["--out DIR", "ablation folder (default .runs/ablation); rerun to resume"],
    ["--backend NAME", "auto | cpu | wasm | webgpu (default auto)"],
    ["--verbose", "progress bars and warnings of every run"],
  ],
  notes:
    "Stage 1 runs once per seed and backbone and is shared by every method.",
});

function list(flag: string, value: string): string[] {
  const items = value.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (items.length === 0) {
    throw new UsageError(`ablate: --${flag} must list at least one value`);
  }
  return items;
}

async function main(args: string[]): Promise<void> {
  const { values } = parseFlags("ablate", args, {
    data: { type: "string" },
    preset: { type: "string", default: "tiny" },
    config: { type: "string" },
    set: { type: "string", multiple: true },
    methods: { type: "string", default: METHODS.join(",") },
    backbones: { type: "string" },
    temperatures: { type: "string" },
    seed: { type: "string" },
    seeds: { type: "string" },
    out: { type: "string", default: ".runs/ablation" },
    backend: { type: "string", default: "auto" },
    verbose: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const methods = list("methods", values.methods);
  const bad = methods.filter((m) => !METHODS.includes(m));
  if (bad.length > 0) {
    throw new UsageError(
      `ablate: unknown --methods ${bad.join(", ")}; valid: ${
        METHODS.join(", ")
      }`,
    );
  }
  if (!isPresetName(values.preset)) {
    throw new UsageError(
      `ablate: unknown --preset '${values.preset}'; valid: ${
        Object.keys(PRESETS).join(", ")
      }`,
    );
  }
  let common = PRESETS[values.preset];
  if (values.config) {
    common = mergeConfig(common, await readConfigFile(values.config));
  }
  common = mergeConfig(common, parseSets("ablate", values.set ?? []));
  let override: Record<string, unknown> = {};
  if (values.data) override = { ...override, data: values.data };
  if (values.seed !== undefined) {
    const seed = Number(values.seed);
    if (!Number.isInteger(seed)) {
      throw new UsageError(
        `ablate: --seed must be an integer: got '${values.seed}'`,
      );
    }
    override = { ...override, seed };
  }
  common = mergeConfig(common, override);
  const backbones = values.backbones
    ? list("backbones", values.backbones).map((b) => {
      const n = Number(b.replace(/^r/, ""));
      if (![18, 34, 50, 101].includes(n)) {
        throw new UsageError(
          `ablate: --backbones must be among 18, 34, 50, 101: got '${b}'`,
        );
      }
      return n;
    })
    : [common.model.backbone];
  const temperatures = values.temperatures
    ? list("temperatures", values.temperatures).map((t) => {
      const v = Number(t);
      if (!(v > 0)) {
        throw new UsageError(`ablate: --temperatures must be > 0: got '${t}'`);
      }
      return v;
    })
    : [];
  const seeds = values.seeds
    ? list("seeds", values.seeds).map((v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) {
        throw new UsageError(
          `ablate: --seeds must list non-negative integers: got '${v}'`,
        );
      }
      return n;
    })
    : [];
  const givenMasks = common.coarse.masks;
  const t0 = performance.now();
  const result = await runAblation({
    out: values.out,
    methods,
    backbones,
    temperatures,
    seeds,
    // One stage 1 per seed and backbone, unless the user gives masks.
    shareStage1: givenMasks === null || givenMasks === undefined,
    configure: ({ method, backbone, temperature, seed, masks }) =>
      mergeConfig(common, {
        model: { backbone },
        ...(seed !== undefined ? { seed } : {}),
        ...(masks !== undefined ? { coarse: { masks } } : {}),
        pretrain: {
          method,
          ...(temperature !== undefined ? { temperature } : {}),
        },
      }),
    runner: (config, o) =>
      runPipeline(config as PipelineConfig, {
        ...o,
        quiet: !values.verbose,
        backend: values.backend,
      }),
  });
  console.log(
    `\nDice, mean ± std over ${
      seeds.length > 1 ? `seeds ${seeds.join(", ")}` : "one seed"
    } (p: paired Wilcoxon over (seed, case, target) pairs):\n`,
  );
  console.log(result.seedTable.markdown);
  for (const r of result.seedTable.rows) {
    if (r.test === null) continue;
    const ref = result.seedTable.rows.find((q) =>
      q.backbone === r.backbone && q.test === null
    );
    const mean = (v: number | null | undefined) =>
      v === null || v === undefined ? "–" : v.toFixed(3);
    console.log(
      `${r.backbone} ${ref?.method ?? "agcl"} vs ${r.method}: Wilcoxon p = ${
        r.test.p === null ? "–" : r.test.p.toPrecision(3)
      } over ${r.test.n} (seed, case, target) pairs with a difference; mean Dice ${
        mean(ref?.dice.mean?.mean)
      } against ${mean(r.dice.mean?.mean)}`,
    );
  }
  console.log(
    `\nwrote ${result.files.markdown}, ${result.files.csv}, ${result.files.json}, ${result.files.perRun}, ${result.files.report} (${
      ((performance.now() - t0) / 1000).toFixed(0)
    } s)`,
  );
}

if (import.meta.main) await runCli(() => main(Deno.args));
