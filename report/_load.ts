/** Internal: tolerant readers of the run-directory files the report draws. */
import { join } from "node:path";
import { readJsonLines } from "../data/_io.ts";
import { type MetricsSummary, upgradeMetrics } from "../metrics/evaluate.ts";
import type {
  EmbeddingsFile,
  LogEntry,
  TemperatureRow,
  ValidationRow,
} from "./figures.ts";

/** Reads JSON, or `undefined` when the file does not exist. */
export async function readJsonIf<T>(path: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new Error(
      `Cannot read ${path} as it is not valid JSON: ${
        e instanceof Error ? e.message : e
      }`,
    );
  }
}

/**
 * Reads `log.jsonl` as `RunDir.readLog` does ({@linkcode readJsonLines}: a
 * torn last line is dropped, a torn earlier line throws), keeping the
 * entries with a stage and a loss, or `[]` when absent.
 */
export async function readLog(runDir: string): Promise<LogEntry[]> {
  return (await readJsonLines(join(runDir, "log.jsonl"))).filter((
    e,
  ): e is LogEntry =>
    typeof (e as LogEntry | null)?.stage === "string" &&
    typeof (e as LogEntry).loss === "number"
  );
}

/**
 * Reads the validation lines of `log.jsonl` (`kind: "validation"`: stage 1's
 * and stage 3's Dice after each epoch), or `[]` when there are none.
 */
export async function readValidation(runDir: string): Promise<ValidationRow[]> {
  return (await readJsonLines(join(runDir, "log.jsonl"))).flatMap((e) => {
    const v = e as Partial<ValidationRow> & { kind?: unknown } | null;
    return v?.kind === "validation" && typeof v.stage === "string" &&
        typeof v.epoch === "number"
      ? [{
        stage: v.stage,
        epoch: v.epoch,
        dice: v.dice ?? null,
        ...(typeof v.sample === "string" ? { sample: v.sample } : {}),
      }]
      : [];
  });
}

/** The parts of a run directory the report uses. */
export interface RunFiles {
  /** `config.json` (any shape). */
  config?: Record<string, unknown>;
  /** `log.jsonl` step lines. */
  log: LogEntry[];
  /** `log.jsonl` validation lines. */
  validation: ValidationRow[];
  /** `metrics.json`. */
  metrics?: MetricsSummary;
  /** `embeddings.json`. */
  embeddings?: EmbeddingsFile;
  /** `temperature_sweep.json` points. */
  sweep?: TemperatureRow[];
}

/** Loads every report input of a run directory that exists. */
export async function loadRun(runDir: string): Promise<RunFiles> {
  const out: RunFiles = {
    log: await readLog(runDir),
    validation: await readValidation(runDir),
  };
  const config = await readJsonIf<Record<string, unknown>>(
    join(runDir, "config.json"),
  );
  if (config) out.config = config;
  const metrics = await readJsonIf<MetricsSummary>(
    join(runDir, "metrics.json"),
  );
  // Files of earlier versions name the ASSD `msd`.
  if (metrics) out.metrics = upgradeMetrics(metrics);
  const emb = await readJsonIf<EmbeddingsFile>(join(runDir, "embeddings.json"));
  if (emb && Array.isArray(emb.points) && emb.points.length > 0) {
    out.embeddings = emb;
  }
  const sweep = await readJsonIf<{ points: TemperatureRow[] }>(
    join(runDir, "temperature_sweep.json"),
  );
  if (sweep && Array.isArray(sweep.points) && sweep.points.length > 0) {
    out.sweep = sweep.points;
  }
  return out;
}

/** Escapes text for HTML. */
export function esc(s: unknown): string {
  return String(s).replace(
    /[&<>"']/g,
    (c) =>
      ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[
        c
      ]!,
  );
}

/** Formats a number for tables (`–` for null). */
export function fmt(v: number | null | undefined, digits = 3): string {
  return v === null || v === undefined || !Number.isFinite(v)
    ? "–"
    : v.toFixed(digits);
}
