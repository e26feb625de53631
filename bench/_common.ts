/** Shared bench helpers: flags, timing, the reference Python, tables. */
import type { DeepLabOptions } from "../models/mod.ts";

/** Flags every bench module receives. */
export interface BenchFlags {
  /** Run the PyTorch/nibabel/scipy reference beside ours when present. */
  comparePytorch: boolean;
  /** Fewer repetitions, smaller sizes (smoke run). */
  quick: boolean;
  /** Restrict to one backend. */
  backend?: string;
}

/** Median wall time in ms of `fn` over `reps` runs after `warmup` runs. */
export async function timeMs(
  fn: () => unknown | Promise<unknown>,
  { reps = 5, warmup = 1 }: { reps?: number; warmup?: number } = {},
): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const t: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    t.push(performance.now() - t0);
  }
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)]!;
}

/**
 * The modes the model benches time (models, step): also the keys of
 * `bench_steps` in bench/torch_ref/agcl_torch.py.
 */
export const MODES = [
  "inference",
  "full step",
  "frozen-encoder step",
  "contrastive step",
] as const;

/** One of {@linkcode MODES}. */
export type Mode = (typeof MODES)[number];

/**
 * The paper's network (supplement 6.1) on CT + attention, as both sides of
 * a bench build it: ResNet-`depth` DeepLab, ImageNet stem, output stride 8,
 * ASPP 512 channels at rates 6/12/18 with image pooling, 2 input channels,
 * 2 classes.
 */
export function paperDeepLab(depth: 18 | 50): DeepLabOptions {
  return {
    depth,
    inChannels: 2,
    stem: "imagenet",
    outputStride: 8,
    asppChannels: 512,
    asppRates: [6, 12, 18],
    nClasses: 2,
  };
}

/** Debian's Python, which carries torch, nibabel and scipy from apt. */
export const REFERENCE_PYTHON = "/usr/bin/python3";

/**
 * Folder of `agcl_torch.py`, the PyTorch reference of our networks and
 * losses (DeepLab, projection head, SupCon, safetensors), which
 * {@linkcode runPython} puts on the Python path: `from agcl_torch import …`.
 */
export const TORCH_REF_DIR: string = decodeURIComponent(
  new URL("./torch_ref", import.meta.url).pathname,
);

/** `PYTHONPATH` with {@linkcode TORCH_REF_DIR} first. */
function pythonPath(): string {
  let inherited: string | undefined;
  try {
    inherited = Deno.env.get("PYTHONPATH");
  } catch { /* no env permission */ }
  return inherited ? `${TORCH_REF_DIR}:${inherited}` : TORCH_REF_DIR;
}

/** Options for {@linkcode runPython}. */
export interface RunPythonOptions {
  /** Extra environment variables for the Python process. */
  env?: Record<string, string>;
}

/**
 * Runs `code` with the reference Python, {@linkcode TORCH_REF_DIR} on its
 * path, and returns its stdout parsed as JSON, or `undefined` (with the
 * reason on stderr) when Python or a module is missing.
 */
export async function runPython(
  code: string,
  args: string[] = [],
  options: RunPythonOptions = {},
): Promise<unknown> {
  try {
    const out = await new Deno.Command(REFERENCE_PYTHON, {
      args: ["-c", code, ...args],
      env: {
        ...options.env,
        PYTHONPATH: pythonPath(),
        PYTHONDONTWRITEBYTECODE: "1",
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      console.error(
        `reference python failed: ${
          new TextDecoder().decode(out.stderr).trim().split("\n").pop()
        }`,
      );
      return undefined;
    }
    return JSON.parse(new TextDecoder().decode(out.stdout));
  } catch (e) {
    console.error(
      `reference python unavailable: ${e instanceof Error ? e.message : e}`,
    );
    return undefined;
  }
}

/** Prints a markdown table. */
export function printTable(
  header: string[],
  rows: (string | number)[][],
): void {
  const fmt = (v: string | number) =>
    typeof v === "number"
      ? (Number.isInteger(v) ? String(v) : v.toFixed(2))
      : v;
  console.log(`| ${header.join(" | ")} |`);
  console.log(`| ${header.map(() => "---").join(" | ")} |`);
  for (const r of rows) console.log(`| ${r.map(fmt).join(" | ")} |`);
}

/** Resident set size in MiB. */
export function rssMiB(): number {
  return Deno.memoryUsage().rss / 2 ** 20;
}
