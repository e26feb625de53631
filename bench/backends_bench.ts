/** Backend selection and sgemm throughput per backend (GFLOP/s). */
import * as tf from "@tensorflow/tfjs";
import { availableBackends, selectBackend } from "../backends/mod.ts";
import { type BenchFlags, printTable, runPython, timeMs } from "./_common.ts";

export default async function run(flags: BenchFlags): Promise<void> {
  for (const purpose of ["train", "infer"] as const) {
    const r = await selectBackend("auto", { purpose });
    console.log(`auto (${purpose}): ${r.name}: ${r.reason}`);
  }
  const n = flags.quick ? 512 : 1024;
  const rows: (string | number)[][] = [];
  for (const name of await availableBackends()) {
    if (flags.backend && flags.backend !== name) continue;
    await selectBackend(name, { purpose: "infer" });
    const a = tf.randomUniform([n, n], -1, 1, "float32", 1);
    const b = tf.randomUniform([n, n], -1, 1, "float32", 2);
    const ms = await timeMs(async () => {
      const c = tf.matMul(a, b);
      await c.data();
      c.dispose();
    }, { reps: name === "cpu" ? 1 : 3 });
    rows.push([name, n, ms, (2 * n ** 3) / ms / 1e6]);
    tf.dispose([a, b]);
  }
  if (flags.comparePytorch) {
    const py = await runPython(
      `import json,sys,time,torch
n=int(sys.argv[1]); a=torch.rand(n,n); b=torch.rand(n,n); a@b
t=[]
for _ in range(5):
  t0=time.perf_counter(); a@b; t.append((time.perf_counter()-t0)*1e3)
t.sort(); print(json.dumps({"ms": t[2], "threads": torch.get_num_threads()}))`,
      [String(n)],
    ) as { ms: number; threads: number } | undefined;
    if (py) {
      rows.push([
        `pytorch (${py.threads} threads)`,
        n,
        py.ms,
        (2 * n ** 3) / py.ms / 1e6,
      ]);
    }
  }
  printTable(["backend", "n", "ms", "GFLOP/s"], rows);
}
