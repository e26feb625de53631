/**
 * A run's `model/`: the three trained networks as PyTorch state dicts
 * (`coarse.safetensors`, `encoder.safetensors`, `segment.safetensors`, each
 * with its `.json` sidecar, through `models/checkpoint.ts`) and
 * `config.json`, which says how to rebuild each network (the options of
 * `createDeepLab` / `createEncoder`, the keys `bench/torch_ref/agcl_torch.py`
 * takes too) and what inference needs (targets, channels, intensity, the
 * run's config).
 *
 * @module
 */
import { join } from "node:path";
import {
  createDeepLab,
  createEncoder,
  type DeepLab,
  type DeepLabConfig,
  type Encoder,
  type EncoderConfig,
} from "../models/mod.ts";
import { loadInto, saveCheckpoint } from "../models/checkpoint.ts";
import { writeFileAtomic } from "../data/_io.ts";
import { type PipelineConfig, validateConfig } from "./config.ts";
import { upgradeSavedConfig } from "./run_config.ts";
import { readCheckpointFiles, type RunDir } from "./run_dir.ts";
import { buildCoarseNet } from "./_models.ts";

/** `format` of `model/config.json`. */
const MODEL_FORMAT = "agcl.model";

/**
 * Options that rebuild an encoder (`createEncoder`, agcl_torch `ResNet`):
 * its resolved config without the seed.
 */
export type EncoderSpec = Pick<
  EncoderConfig,
  "depth" | "inChannels" | "stem" | "outputStride" | "widthMultiplier"
>;

/**
 * Options that rebuild a DeepLab (`createDeepLab`, agcl_torch `DeepLab`):
 * its encoder's spec and its resolved decoder config without the seed.
 */
export type DeepLabSpec =
  & EncoderSpec
  & Pick<
    DeepLabConfig,
    | "nClasses"
    | "asppRates"
    | "asppChannels"
    | "lowLevelSkip"
    | "lowLevelSource"
    | "lowLevelChannels"
    | "alignCorners"
  >;

/** One network of `model/config.json`. */
export interface NetEntry<K extends "deeplab" | "resnet", S> {
  /** The state dict, relative to `model/`. */
  file: string;
  /** Which builder: `createDeepLab` (`DeepLab`) or `createEncoder` (`ResNet`). */
  kind: K;
  /** The builder's options. */
  options: S;
}

/** What `model/config.json` holds. */
export interface ModelConfig {
  /** `"agcl.model"`. */
  format: string;
  /** Version (1). */
  version: number;
  /** The networks. */
  nets: {
    /** Stage 1, or `null` for runs given coarse masks. */
    coarse: NetEntry<"deeplab", DeepLabSpec> | null;
    /** The stage-2 encoder. */
    encoder: NetEntry<"resnet", EncoderSpec>;
    /** Stage 3: the encoder (under `backbone.`) and the ASPP decoder. */
    segment: NetEntry<"deeplab", DeepLabSpec>;
  };
  /** Targets (label id and name), ascending. */
  targets: { id: number; name: string }[];
  /** Image channels (1 for CT/MRI, 3 for RGB). */
  channels: number;
  /** Intensity mapping of single-channel volumes. */
  intensity: "window" | "percentile" | "none";
  /**
   * Targets whose stage-1 maps keep only their largest 3D component
   * (absent in model/ written before it existed: none).
   */
  largestComponent?: number[];
  /**
   * Whether stage 1 averages each slice's prediction with its mirror's (the
   * resolved `coarse.tta`; absent in model/ written before it existed: no).
   */
  coarseTta?: boolean;
  /** The run's config (inference, patch size, intensity window, …). */
  pipeline: PipelineConfig;
}

function encoderSpec(c: EncoderConfig): EncoderSpec {
  const { depth, inChannels, stem, outputStride, widthMultiplier } = c;
  return { depth, inChannels, stem, outputStride, widthMultiplier };
}

function deepLabSpec(c: DeepLabConfig): DeepLabSpec {
  const {
    nClasses,
    asppRates,
    asppChannels,
    lowLevelSkip,
    lowLevelSource,
    lowLevelChannels,
    alignCorners,
  } = c;
  return {
    ...encoderSpec(c.encoder),
    nClasses,
    asppRates: [...asppRates],
    asppChannels,
    lowLevelSkip,
    lowLevelSource,
    lowLevelChannels,
    alignCorners,
  };
}

/** What {@linkcode writeModelDir} saves. */
export interface TrainedNets {
  /** The run's config. */
  config: PipelineConfig;
  /** Final checkpoint of each finished stage (stage 1's network comes from there). */
  finished: Partial<Record<string, string>>;
  /** The stage-2 encoder. */
  encoder: Encoder;
  /** The stage-3 network (on `encoder`). */
  segment: DeepLab;
  /** Targets, ascending. */
  targets: { id: number; name: string }[];
  /** Image channels. */
  channels: number;
  /** Intensity mapping. */
  intensity: ModelConfig["intensity"];
  /** Targets whose stage-1 maps keep only their largest 3D component. */
  largestComponent: readonly number[];
  /** The resolved `coarse.tta`. */
  coarseTta: boolean;
}

/**
 * Writes `RUN/model/`: the state dicts (stage 1's network read back from
 * its final checkpoint), their sidecars, then `config.json`, each file
 * atomically.
 */
export async function writeModelDir(
  run: RunDir,
  nets: TrainedNets,
): Promise<string> {
  const dir = join(run.root, "model");
  const { config, targets, channels } = nets;
  let coarse: ModelConfig["nets"]["coarse"] = null;
  if (config.coarse.masks === null) {
    const name = nets.finished.coarse;
    if (!name) {
      throw new Error(
        `Cannot write ${dir} as the run has no final coarse checkpoint`,
      );
    }
    const maxLabel = Math.max(...targets.map((t) => t.id));
    const net = buildCoarseNet(config, channels, maxLabel + 1, 0);
    try {
      const { file } = await readCheckpointFiles(run.checkpointBase(name));
      await loadInto(net, file);
      const options = deepLabSpec(net.config);
      await saveCheckpoint(join(dir, "coarse.safetensors"), net, {
        config: options,
      });
      coarse = { file: "coarse.safetensors", kind: "deeplab", options };
    } finally {
      net.dispose();
    }
  }
  const encoder = encoderSpec(nets.encoder.config);
  await saveCheckpoint(join(dir, "encoder.safetensors"), nets.encoder, {
    config: encoder,
  });
  const segment = deepLabSpec(nets.segment.config);
  await saveCheckpoint(join(dir, "segment.safetensors"), nets.segment, {
    config: segment,
  });
  const out: ModelConfig = {
    format: MODEL_FORMAT,
    version: 1,
    nets: {
      coarse,
      encoder: {
        file: "encoder.safetensors",
        kind: "resnet",
        options: encoder,
      },
      segment: {
        file: "segment.safetensors",
        kind: "deeplab",
        options: segment,
      },
    },
    targets,
    channels,
    intensity: nets.intensity,
    largestComponent: [...nets.largestComponent],
    coarseTta: nets.coarseTta,
    pipeline: config,
  };
  await writeFileAtomic(
    join(dir, "config.json"),
    JSON.stringify(out, null, 2) + "\n",
  );
  return dir;
}

/** The networks of a `model/` folder, loaded. */
export interface LoadedModelDir {
  /** `config.json`, with its `pipeline` validated. */
  model: ModelConfig;
  /** Stage 1, or `null`. */
  coarse: DeepLab | null;
  /** The encoder. */
  encoder: Encoder;
  /** Stage 3 (on `encoder`). */
  segment: DeepLab;
}

/**
 * Finds the `model/` of `path` (a run directory or the folder itself).
 *
 * @throws {Error} Naming the missing `config.json` and why it may be missing.
 */
async function modelDirOf(path: string): Promise<string> {
  for (const dir of [join(path, "model"), path]) {
    try {
      const c = JSON.parse(await Deno.readTextFile(join(dir, "config.json")));
      if (c?.format === MODEL_FORMAT) return dir;
    } catch { /* try the next */ }
  }
  throw new Error(
    `Cannot load a model from ${path} as ${
      join(path, "model", "config.json")
    } does not exist: a run writes model/ when stage 3 finishes (finish it with --resume); runs of versions before model/ existed must be trained again`,
  );
}

/**
 * Loads `model/` (of a run directory, or the folder itself): rebuilds each
 * network from `config.json` and fills it from its state dict.
 *
 * @throws {Error} Naming the file that is missing, unreadable, or does not
 *   match its network.
 */
export async function readModelDir(path: string): Promise<LoadedModelDir> {
  const dir = await modelDirOf(path);
  const configPath = join(dir, "config.json");
  const model = JSON.parse(await Deno.readTextFile(configPath)) as ModelConfig;
  if (model.version !== 1) {
    throw new Error(
      `Cannot load ${configPath} as its version is ${model.version}: this version reads 1`,
    );
  }
  // model/ written by an older version reads as readRunConfig reads its run.
  upgradeSavedConfig(model.pipeline as unknown as Record<string, unknown>);
  validateConfig(model.pipeline);
  const { nets } = model;
  let coarse: DeepLab | null = null;
  let encoder: Encoder | undefined;
  let segment: DeepLab | undefined;
  try {
    if (nets.coarse) {
      coarse = createDeepLab(nets.coarse.options);
      await loadInto(coarse, join(dir, nets.coarse.file));
    }
    encoder = createEncoder(nets.encoder.options);
    await loadInto(encoder, join(dir, nets.encoder.file));
    segment = createDeepLab({ ...nets.segment.options, encoder });
    // The segment file holds the encoder too (`backbone.*`), the same values.
    await loadInto(segment, join(dir, nets.segment.file));
    return { model, coarse, encoder, segment };
  } catch (e) {
    coarse?.dispose();
    // A segment network disposes its encoder too.
    (segment ?? encoder)?.dispose();
    throw e;
  }
}
