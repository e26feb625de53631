/**
 * {@linkcode readRunConfig}: a run's `config.json` read back as the config
 * it ran with. Kept apart from `run.ts` so that inference (`predict.ts`)
 * loads a run without importing the training stages and the report.
 *
 * @module
 */
import { join } from "node:path";
import {
  DEFAULT_INTENSITY,
  type PipelineConfig,
  PRESETS,
  validateConfig,
} from "./config.ts";

export { recordedPath, runDataPath } from "../data/run_paths.ts";

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
  // Runs before `pretrain.flip` mirrored every view with p = 0.5.
  const pretrain = plain.pretrain as Record<string, unknown> | undefined;
  if (pretrain && typeof pretrain === "object" && !("flip" in pretrain)) {
    plain.pretrain = { ...pretrain, flip: "horizontal" };
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
