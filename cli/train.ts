/**
 * `deno task train`: runs the AGCL pipeline. Until the pipeline lands
 * (issue #7), it selects the backend and reports what was chosen.
 */
import { selectBackend } from "../backends/mod.ts";
import { parseFlags, runCli } from "./_args.ts";

await runCli(async () => {
  const { values } = parseFlags("train", Deno.args, {
    backend: { type: "string", default: "auto" },
  });
  const report = await selectBackend(values.backend, { purpose: "train" });
  console.log(`backend: ${report.name} (${report.reason})`);
});
