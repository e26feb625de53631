/**
 * `deno task bench [--only NAME,…] [--no-compare-pytorch]`: runs every
 * `bench/*_bench.ts` module (sorted by name), each of which default-exports
 * `(flags: BenchFlags) => Promise<void>` and prints its own table, side by
 * side with the reference (PyTorch, nibabel, scipy) where present. The GPU
 * step bench (WebGPU against CUDA PyTorch on a bare GPU machine) is
 * bench/device/ (its README.md).
 */
import { parseFlags, runCli } from "../cli/_args.ts";
import type { BenchFlags } from "./_common.ts";

const USAGE = `deno task bench [--only NAME,…] [--quick] [--backend NAME]
                 [--no-compare-pytorch]

  --only NAME,…        run only these modules (bench/NAME_bench.ts)
  --quick              fewer repetitions and sizes (a smoke run)
  --backend NAME       restrict to one backend (cpu, wasm, webgpu)
  --no-compare-pytorch skip the PyTorch/nibabel/scipy reference that runs
                       beside ours by default
  --help               print this and exit

STEP_BENCH_MEMORY=N runs the step bench's memory check over N steps instead
of its timing. The GPU step bench is bench/device/ (bench/device/README.md).`;

await runCli(async () => {
  const { values } = parseFlags("bench", Deno.args, {
    only: { type: "string" },
    "compare-pytorch": { type: "boolean", default: true },
    "no-compare-pytorch": { type: "boolean", default: false },
    backend: { type: "string" },
    quick: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const dir = new URL(".", import.meta.url);
  const names = [...Deno.readDirSync(dir)]
    .map((e) => e.name)
    .filter((n) => n.endsWith("_bench.ts"))
    .sort();
  const only = values.only?.split(",").map((s) => s.trim());
  const unknown = only?.filter((o) => !names.includes(`${o}_bench.ts`)) ?? [];
  if (unknown.length > 0) {
    throw new Error(
      `bench: unknown --only ${unknown.join(", ")}; valid: ${
        names.map((n) => n.replace(/_bench\.ts$/, "")).join(", ")
      }`,
    );
  }
  const flags: BenchFlags = {
    comparePytorch: values["compare-pytorch"] && !values["no-compare-pytorch"],
    quick: values.quick,
    ...(values.backend ? { backend: values.backend } : {}),
  };
  for (const name of names) {
    if (only && !only.includes(name.replace(/_bench\.ts$/, ""))) continue;
    console.log(`\n## ${name.replace(/_bench\.ts$/, "")}\n`);
    const mod = await import(new URL(name, dir).href) as {
      default: (f: BenchFlags) => Promise<void>;
    };
    await mod.default(flags);
  }
});
