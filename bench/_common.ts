/** Shared bench helpers: flags, timing, the reference Python, tables. */

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

/** Debian's Python, which carries torch, nibabel and scipy from apt. */
export const REFERENCE_PYTHON = "/usr/bin/python3";

/**
 * Runs `code` with the reference Python and returns its stdout parsed as
 * JSON, or `undefined` (with the reason on stderr) when Python or a module
 * is missing.
 */
export async function runPython(
  code: string,
  args: string[] = [],
): Promise<unknown> {
  try {
    const out = await new Deno.Command(REFERENCE_PYTHON, {
      args: ["-c", code, ...args],
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
