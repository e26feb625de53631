/**
 * `deno task report RUN` writes (again) a run directory's HTML report;
 * `deno task report --compare RUN RUN… [--out DIR]` writes one page that
 * puts the runs side by side. From JSR:
 * `deno run -A jsr:@agcl/agcl/report-cli --help` (`@agcl/agcl/report` is
 * the report library).
 *
 * @module
 */
import { writeCompareReport, writeRunReport } from "../report/mod.ts";
import {
  formatUsage,
  parseFlagsAndOperands,
  runCli,
  UsageError,
} from "./_args.ts";

const USAGE: string = formatUsage("report", {
  required: "RUN [RUN…]",
  // "./report" is the report library; the command is "./report-cli".
  entry: "report-cli",
  summary:
    "Writes the HTML report of a run directory (RUN/report/index.html), or with --compare one page that puts several runs side by side.",
  flags: [
    [
      "--compare",
      "compare the runs given (two or more): their setup, Dice per target, validation curves, losses, times and config differences",
    ],
    [
      "--out DIR",
      "where to write (default RUN/report; with --compare: compare-report)",
    ],
    ["--title TEXT", "page title"],
    ["--seed N", "seed of the embedding map of a run report (default 0)"],
  ],
  notes:
    "Runs are run directories of deno task train (config.json, log.jsonl, metrics.json). Open the index.html it prints in a browser.",
});

async function main(args: string[]): Promise<void> {
  const { values, positionals: runs } = parseFlagsAndOperands("report", args, {
    compare: { type: "boolean", default: false },
    out: { type: "string" },
    title: { type: "string" },
    seed: { type: "string", default: "0" },
    help: { type: "boolean", default: false },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  for (const run of runs) {
    try {
      if (!(await Deno.stat(run)).isDirectory) throw new Error();
    } catch {
      throw new UsageError(`report: '${run}' is not a run directory`);
    }
  }
  if (values.compare) {
    if (runs.length < 2) {
      throw new UsageError(
        `report: --compare needs two or more run directories: got ${runs.length}`,
      );
    }
    const r = await writeCompareReport(runs, {
      ...(values.out !== undefined ? { out: values.out } : {}),
      ...(values.title !== undefined ? { title: values.title } : {}),
    });
    for (const s of r.skipped) console.error(`note: not drawn: ${s}`);
    console.log(`report: ${r.index}`);
    return;
  }
  if (runs.length !== 1) {
    throw new UsageError(
      `report: give one run directory (or --compare and several): got ${runs.length}`,
    );
  }
  const seed = Number(values.seed);
  if (!Number.isInteger(seed)) {
    throw new UsageError(
      `report: --seed must be an integer: got '${values.seed}'`,
    );
  }
  const r = await writeRunReport(runs[0]!, {
    seed,
    ...(values.out !== undefined ? { out: values.out } : {}),
    ...(values.title !== undefined ? { title: values.title } : {}),
  });
  for (const s of r.skipped) console.error(`note: not drawn: ${s}`);
  console.log(`report: ${r.index}`);
}

if (import.meta.main) await runCli(() => main(Deno.args));
