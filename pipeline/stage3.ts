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
 * their attention, target ids, image channels, seeds, warnings.
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
  },
): Promise<DeepLab> {
  const { encoder, cases, targets, channels, seeds, warn } = options;
  const net = buildSegNet(config, encoder, channels + 1, seeds.decoder);
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
        return segmentStage(config, net, { stream });
      },
    );
  } catch (e) {
    net.dispose();
    throw e;
  }
  return net;
}
