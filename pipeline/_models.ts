/**
 * The networks of the three stages, built from a config, with every
 * variable (parameters and BN statistics) under a stable name for
 * checkpoints.
 */
import type * as tf from "@tensorflow/tfjs";
import {
  createClassificationHead,
  createDeepLab,
  createEncoder,
  createProjectionHead,
  type DeepLab,
  type Encoder,
  type Head,
} from "../models/mod.ts";
import type { PipelineConfig } from "./config.ts";

interface HasVariables {
  params: Record<string, tf.Variable>;
  state: Record<string, tf.Variable>;
}

/**
 * All variables of models under PyTorch state-dict names: each model's
 * names prefixed by its key (`encoder.conv1.weight`), or kept as they are
 * for the key `""` (a DeepLab's `backbone.conv1.weight`, a projection
 * head's `head.0.weight`), so a stage's checkpoint loads into the PyTorch
 * reference (`bench/torch_ref/agcl_torch.py`) with `load_state_dict`.
 */
export function namedVariables(
  parts: Record<string, HasVariables>,
): Record<string, tf.Variable> {
  const out: Record<string, tf.Variable> = {};
  for (const [prefix, m] of Object.entries(parts)) {
    const name = (k: string) => prefix === "" ? k : `${prefix}.${k}`;
    for (const [k, v] of Object.entries(m.params)) out[name(k)] = v;
    for (const [k, v] of Object.entries(m.state)) out[name(k)] = v;
  }
  return out;
}

/** Trainable variables of `vars` (by name) among `trainable`. */
export function pickTrainable(
  vars: Record<string, tf.Variable>,
  trainable: tf.Variable[],
): Record<string, tf.Variable> {
  const set = new Set(trainable);
  const out: Record<string, tf.Variable> = {};
  for (const [k, v] of Object.entries(vars)) if (set.has(v)) out[k] = v;
  return out;
}

/**
 * Input channels of the stage-1 network: the image's, times the
 * `2 coarse.context + 1` slices each input stacks.
 */
export function coarseInChannels(
  config: PipelineConfig,
  imageChannels: number,
): number {
  return imageChannels * (2 * config.coarse.context + 1);
}

/** The stage-1 multi-class network, on {@linkcode coarseInChannels} channels. */
export function buildCoarseNet(
  config: PipelineConfig,
  imageChannels: number,
  nClasses: number,
  seed: number,
): DeepLab {
  const m = config.model;
  return createDeepLab({
    depth: m.backbone,
    inChannels: coarseInChannels(config, imageChannels),
    stem: m.stem,
    outputStride: m.outputStride,
    widthMultiplier: config.coarse.widthMultiplier,
    nClasses,
    asppRates: m.asppRates,
    asppChannels: config.coarse.asppChannels,
    lowLevelSkip: config.coarse.lowLevelSkip,
    // DeepLabv3+'s 48 low-level channels, scaled with the network's width.
    lowLevelChannels: Math.max(
      8,
      Math.round(48 * config.coarse.widthMultiplier),
    ),
    seed,
  });
}

/** The stage-2 encoder (image channels + attention). */
export function buildEncoder(
  config: PipelineConfig,
  inChannels: number,
  seed: number,
): Encoder {
  const m = config.model;
  return createEncoder({
    depth: m.backbone,
    inChannels,
    stem: m.stem,
    outputStride: m.outputStride,
    widthMultiplier: m.widthMultiplier,
    seed,
  });
}

/** The stage-2 head: projection (contrastive) or classification (`ce`). */
export function buildHead(
  config: PipelineConfig,
  inFeatures: number,
  nTargets: number,
  seed: number,
): Head {
  if (config.pretrain.method === "ce") {
    return createClassificationHead({ inFeatures, nClasses: nTargets, seed });
  }
  return createProjectionHead({
    inFeatures,
    hidden: config.model.projectionHidden || inFeatures,
    outFeatures: config.model.projectionDim,
    seed,
  });
}

/**
 * The stage-3 network: the (frozen) encoder and an ASPP decoder with two
 * classes, or background and one class per target (`segment.head`).
 */
export function buildSegNet(
  config: PipelineConfig,
  encoder: Encoder,
  options: { inChannels: number; nTargets: number; seed: number },
): DeepLab {
  const { inChannels, nTargets, seed } = options;
  const m = config.model;
  return createDeepLab({
    depth: m.backbone,
    inChannels,
    stem: m.stem,
    outputStride: m.outputStride,
    widthMultiplier: m.widthMultiplier,
    encoder,
    nClasses: config.segment.head === "targets" ? nTargets + 1 : 2,
    asppRates: m.asppRates,
    asppChannels: m.asppChannels,
    lowLevelSkip: m.lowLevelSkip,
    lowLevelSource: m.lowLevelSource,
    seed,
  });
}

export type { DeepLab, Encoder, Head };
