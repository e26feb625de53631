/** `deno task bench`: benchmarks, side by side with the reference. */
import { selectBackend } from "../backends/mod.ts";

const report = await selectBackend("auto", { purpose: "infer" });
console.log(`backend: ${report.name} (${report.reason})`);
