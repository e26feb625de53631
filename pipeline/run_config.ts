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
  upgradeSavedConfig(plain);
  validateConfig(plain);
  return { config: plain, saved };
}

/**
 * Fills in, in place, the config fields that a run or `model/` written by
 * an older version lacks, with the values those versions used: no
 * wall-clock `budget`, the low-level skip from `layer1`, stage 2's views
 * mirrored (`pretrain.flip: "horizontal"`), stage 1 predicting without a
 * test-time flip (`coarse.tta: "none"`) from one slice (`coarse.context:
 * 0`) at full resolution (`coarse.downsample: 1`), stage 3's lr constant
 * (`segment.schedule: "constant"`), a two-class decoder (`segment.head:
 * "binary"`), and a bare intensity mode with the
 * default window and percentiles.
 *
 * @param plain The saved config fields (not yet validated).
 */
export function upgradeSavedConfig(plain: Record<string, unknown>): void {
  // A section's missing fields are appended with the value older versions
  // used; a section that has them all keeps its keys and their order.
  const fill = (section: string, defaults: Record<string, unknown>) => {
    const v = plain[section];
    if (!v || typeof v !== "object") return;
    const missing = Object.entries(defaults).filter(([k]) => !(k in v));
    if (missing.length > 0) {
      plain[section] = { ...v, ...Object.fromEntries(missing) };
    }
  };
  // Written before `budget` existed: no wall-clock budget.
  plain.budget ??= structuredClone(PRESETS.tiny.budget);
  // Written before `model.lowLevelSource`: the skip came from layer1.
  fill("model", { lowLevelSource: "layer1" });
  // Written before `coarse.tta` / `coarse.context`: stage 1 predicted each
  // slice once, from that slice alone.
  fill("coarse", { tta: "none", context: 0 });
  // Written before `coarse.downsample`: stage 1 ran at full resolution.
  fill("coarse", { downsample: 1 });
  // Written before `coarse.elastic`: no elastic warp.
  fill("coarse", { elastic: 0 });
  // Written before `pretrain.flip`: every view was mirrored with p = 0.5.
  fill("pretrain", { flip: "horizontal" });
  // Written before `segment.schedule` (stage 3's lr was constant) or
  // `segment.head` (the decoder had two classes).
  fill("segment", { schedule: "constant", head: "binary" });
  if (typeof plain.intensity === "string") {
    plain.intensity = {
      ...structuredClone(DEFAULT_INTENSITY),
      mode: plain.intensity,
    };
  }
}
