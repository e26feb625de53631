/**
 * Stage 3 as a product: the segmentation network (the frozen stage-2
 * encoder and a decoder trained with Dice on [image, attention] patches of
 * the training cases).
 *
 * @module
 */
import { BatchStream, samplePatches, type SamplingCase } from "../data/mod.ts";
import type { PipelineConfig } from "./config.ts";
import { segmentStage } from "./segment.ts";
import { segmentValidator } from "./validation.ts";
import { type StageContext, trainOrRestore } from "./_stage_runner.ts";
import {
  buildSegNet,
  type DeepLab,
  type Encoder,
  namedVariables,
} from "./_models.ts";

/**
 * Runs (or restores) stage 3.
 *
 * @param ctx Run directory, progress, finished stages, resume point.
 * @param config The run's config.
 * @param options The pre-trained encoder (frozen here), training cases with
 * their attention, target ids, image channels, seeds, warnings, and the
 * held-out cases of the per-epoch validation Dice.
 * @returns The segmentation network, which shares `encoder`'s variables
 * (its `dispose()` disposes the encoder too).
 */
export async function runStage3(
  ctx: StageContext,
  config: PipelineConfig,
  options: {
    encoder: Encoder;
    cases: SamplingCase[];
    targets: number[];
    channels: number;
    seeds: { decoder: number; sample: number; stream: number };
    warn: (message: string) => void;
    /** Held-out cases whose validation Dice is logged at each epoch end. */
    validation?: {
      cases: SamplingCase[];
      targets: { id: number; name: string }[];
      seed: number;
    };
  },
): Promise<DeepLab> {
  const { encoder, cases, targets, channels, seeds, warn } = options;
  const net = buildSegNet(config, encoder, {
    inChannels: channels + 1,
    nTargets: targets.length,
    seed: seeds.decoder,
  });
  try {
    await trainOrRestore(
      ctx,
      "segment",
      namedVariables({ "": net }),
      () => {
        const index = samplePatches(cases, {
          targets,
          perTarget: config.segment.perTarget,
          patchSize: config.patchSize,
          seed: seeds.sample,
          onWarning: warn,
        });
        const stream = new BatchStream(index, cases, {
          batchSize: config.segment.batchSize,
          views: 1,
          seed: seeds.stream,
          balance: "target",
          augment: { crop: false, intensity: false, color: false },
        });
        const spec = segmentStage(config, net, { stream, targets });
        const v = options.validation;
        const check = v && segmentValidator(net, v.cases, {
          targets: v.targets,
          patchSize: config.patchSize,
          seed: v.seed,
        });
        if (check) spec.validate = check;
        return spec;
      },
    );
  } catch (e) {
    net.dispose();
    throw e;
  }
  return net;
}
