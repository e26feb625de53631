/**
 * Segmenting new volumes with a trained run: {@linkcode loadTrainedModel}
 * and {@linkcode predictVolume}.
 *
 * @module
 */
import {
  fromCanonical,
  type LabelMap,
  percentileNormalize,
  toCanonical,
  type Volume,
  type VoxelArray,
  windowIntensity,
} from "../data/mod.ts";
import type { PipelineConfig } from "./config.ts";
import { paddingMultiple, predictCoarse } from "./coarse.ts";
import { growLabels } from "./attention.ts";
import { segmentVolume } from "./infer.ts";
import { RunDir } from "./run_dir.ts";
import { readRunConfig } from "./run.ts";
import { assignVariables, loadStageCheckpoint } from "./_stage_runner.ts";
import {
  buildCoarseNet,
  buildEncoder,
  buildSegNet,
  namedVariables,
} from "./_models.ts";
import type { DeepLab, Encoder } from "../models/mod.ts";

/** A trained run's networks in memory. */
export interface TrainedModel {
  /** The run's config. */
  config: PipelineConfig;
  /** Targets (label id and name), ascending. */
  targets: { id: number; name: string }[];
  /** Intensity mapping the run used. */
  intensity: "window" | "percentile" | "none";
  /** Stage-1 network, or `null` when the run used given coarse masks. */
  coarse: DeepLab | null;
  /** The frozen encoder. */
  encoder: Encoder;
  /** Stage-3 network. */
  segment: DeepLab;
  /** Frees the networks. */
  dispose(): void;
}

/**
 * Loads the final networks of a finished run.
 *
 * @param runDir The run directory.
 * @returns The networks and what is needed to apply them.
 * @throws {Error} When the run is unfinished or its files are unreadable.
 */
export async function loadTrainedModel(runDir: string): Promise<TrainedModel> {
  const { config, saved } = await readRunConfig(runDir);
  const run = new RunDir(runDir);
  const last = await run.readLast();
  const segName = last?.finished.segment;
  if (!segName) {
    throw new Error(
      `Cannot load a model from ${runDir}: its training has not finished stage 3 (no final segment checkpoint)`,
    );
  }
  const labels = saved.labels as Record<string, string>;
  const targets = Object.entries(labels).map(([k, v]) => ({
    id: Number(k),
    name: v,
  }))
    .sort((a, b) => a.id - b.id);
  const maxLabel = Math.max(...targets.map((t) => t.id));
  const channels = (saved.channels ?? 1) as number;
  if (channels !== 1) {
    throw new Error(
      `Cannot load a model from ${runDir} for volumes: it was trained on ${channels}-channel images (e.g. PASCAL VOC); predictVolume segments single-channel volumes`,
    );
  }
  let coarse: DeepLab | null = null;
  if (config.coarse.masks === null) {
    const name = last.finished.coarse;
    if (!name) {
      throw new Error(
        `Cannot load a model from ${runDir}: no final coarse checkpoint`,
      );
    }
    coarse = buildCoarseNet(config, channels, maxLabel + 1, 0);
    const ck = await loadStageCheckpoint(run, name);
    assignVariables(
      namedVariables({ coarse }),
      ck.variables,
      `${runDir} ${name}`,
    );
  }
  const encoder = buildEncoder(config, channels + 1, 0);
  const segment = buildSegNet(config, encoder, channels + 1, 0);
  const ck = await loadStageCheckpoint(run, segName);
  assignVariables(
    namedVariables({ segment }),
    ck.variables,
    `${runDir} ${segName}`,
  );
  return {
    config,
    targets,
    intensity:
      (saved.intensityResolved ?? "percentile") as TrainedModel["intensity"],
    coarse,
    encoder,
    segment,
    dispose() {
      coarse?.dispose();
      segment.dispose();
      encoder.dispose();
    },
  };
}

/** Options for {@linkcode predictVolume}. */
export interface PredictVolumeOptions {
  /** Coarse mask (any layout of the same grid); required when the run used `--coarse`. */
  coarse?: Volume;
}

/**
 * Segments a volume with a trained run: canonical reorientation, the run's
 * intensity mapping, stage-1 attention (or the given coarse mask),
 * sliding-window stage-3 inference per target, label fusion, and the result
 * back in the input's layout.
 *
 * @param model A run directory or a model from {@linkcode loadTrainedModel}.
 * @param volume The image.
 * @param options A coarse mask, for runs trained with given masks.
 * @returns Labels in the input's voxel layout (write them with the input's header).
 * @throws {Error} When a coarse mask is needed and missing or of another grid.
 */
export async function predictVolume(
  model: TrainedModel | string,
  volume: Volume,
  options: PredictVolumeOptions = {},
): Promise<VoxelArray> {
  const m = typeof model === "string" ? await loadTrainedModel(model) : model;
  try {
    const canon = toCanonical(volume);
    const image = m.intensity === "window"
      ? windowIntensity(canon)
      : m.intensity === "percentile"
      ? percentileNormalize(canon)
      : Float32Array.from(canon.data);
    const c = { dims: canon.dims, channels: 1, image };
    const maxLabel = Math.max(...m.targets.map((t) => t.id));
    let attention: LabelMap;
    if (options.coarse) {
      const cv = toCanonical(options.coarse);
      if (cv.dims.some((d, i) => d !== canon.dims[i])) {
        throw new Error(
          `Cannot predict as the coarse mask has dims [${cv.dims}] and the image [${canon.dims}]`,
        );
      }
      attention = maxLabel <= 255
        ? Uint8Array.from(cv.data)
        : Int16Array.from(cv.data);
    } else if (m.coarse) {
      attention = await predictCoarse(m.coarse, c, {
        multiple: paddingMultiple(m.config),
        batchSize: m.config.coarse.batchSize,
        maxLabel,
      });
    } else {
      throw new Error(
        "Cannot predict as the run was trained with given coarse masks: pass one (--coarse FILE)",
      );
    }
    attention = growLabels(attention, canon.dims, m.config.coarse.dilate);
    const fused = await segmentVolume(m.segment, c, attention, {
      ...m.config.inference,
      patchSize: m.config.patchSize,
      targets: m.targets.map((t) => t.id),
    });
    return fromCanonical(fused, volume);
  } finally {
    if (typeof model === "string") m.dispose();
  }
}
