/**
 * {@linkcode readRunConfig}: a run's `config.json` read back as the config
 * it ran with. Kept apart from `run.ts` so that inference (`predict.ts`)
 * loads a run without importing the training stages and the report.
 *
 * @module
 */
import { isAbsolute, join, relative, resolve } from "node:path";
import {
  DEFAULT_INTENSITY,
  type PipelineConfig,
  PRESETS,
  validateConfig,
} from "./config.ts";

/**
 * Reads a run's config back, without the keys the run added beside the
 * config (`dataPath`, `labels`, `intensityResolved`, …: every key that is
 * not a config field). A bare intensity mode, as runs before
 * `intensity.window` wrote it, reads as that mode with the default window
 * and percentiles, which those runs used.
 *
 * @param runDir The run directory.
 * @returns The validated config, and the whole saved object.
 * @throws {Error} When `config.json` is missing or not JSON.
 * @throws {RangeError} When the config is invalid (naming the field).
 */
export async function readRunConfig(runDir: string): Promise<{
  config: PipelineConfig;
  saved: Record<string, unknown>;
}> {
  const path = join(runDir, "config.json");
  let saved: Record<string, unknown>;
  try {
    saved = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new Error(
      `Cannot read run config ${path}: ${e instanceof Error ? e.message : e}`,
    );
  }
  const plain: Record<string, unknown> = {};
  for (const k of Object.keys(PRESETS.tiny)) {
    if (k in saved) plain[k] = saved[k];
  }
  // Runs before `budget` had no wall-clock budget.
  plain.budget ??= structuredClone(PRESETS.tiny.budget);
  // Runs before `model.lowLevelSource` took the skip from layer1.
  const model = plain.model as Record<string, unknown> | undefined;
  if (model && typeof model === "object" && !("lowLevelSource" in model)) {
    plain.model = { ...model, lowLevelSource: "layer1" };
  }
  if (typeof plain.intensity === "string") {
    plain.intensity = {
      ...structuredClone(DEFAULT_INTENSITY),
      mode: plain.intensity,
    };
  }
  validateConfig(plain);
  return { config: plain, saved };
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * How a run records a path in its `config.json`: relative to the run
 * directory when it lies inside it (the embedded phantom under `data/`),
 * so the run can be moved; else absolute. Either way the run reads the
 * same from any working directory (see {@linkcode runDataPath}).
 *
 * @param runDir The run directory.
 * @param path A path, relative to the working directory or absolute.
 * @returns The path to record.
 *
 * @example
 * ```ts
 * import { recordedPath } from "@agcl/agcl/pipeline";
 * import assert from "node:assert/strict";
 *
 * assert.equal(recordedPath("/runs/a", "/runs/a/data/dataset.json"), "data/dataset.json");
 * assert.equal(recordedPath("/runs/a", "/data/dataset.json"), "/data/dataset.json");
 * ```
 */
export function recordedPath(runDir: string, path: string): string {
  const abs = resolve(path);
  const rel = relative(resolve(runDir), abs);
  return rel !== "" && !rel.startsWith("..") && !isAbsolute(rel) ? rel : abs;
}

/**
 * The dataset a run trained on, as a path usable from the working
 * directory: `config.json`'s `dataPath` resolved against the run directory
 * (runs record it absolute, or relative to the run), else its `data`.
 * Earlier versions recorded it relative to the directory training started
 * from: such a path is used as it is when it does not exist relative to
 * the run but does from here.
 *
 * @param runDir The run directory.
 * @param saved The whole `config.json` content.
 * @returns The path, or `undefined` when the file names no dataset.
 *
 * @example
 * ```ts
 * import { runDataPath } from "@agcl/agcl/pipeline";
 * import assert from "node:assert/strict";
 *
 * assert.equal(runDataPath("/runs/a", { dataPath: "data/dataset.json" }), "/runs/a/data/dataset.json");
 * assert.equal(runDataPath("/runs/a", { dataPath: "/d/dataset.json" }), "/d/dataset.json");
 * ```
 */
export function runDataPath(
  runDir: string,
  saved: Record<string, unknown> | undefined,
): string | undefined {
  const p = saved?.dataPath;
  if (typeof p === "string") {
    const inRun = resolve(runDir, p);
    return isAbsolute(p) || exists(inRun) || !exists(p) ? inRun : p;
  }
  // Runs that recorded no dataPath: `data` as given (the working directory's).
  return typeof saved?.data === "string" ? saved.data : undefined;
}
