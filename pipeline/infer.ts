/**
 * Volume inference: per target, tile its attention region slice by slice
 * with overlapping windows, blend the stage-3 probabilities (Gaussian, as
 * MONAI's sliding window), then fuse the targets into one label map.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { InferenceConfig } from "./config.ts";
import { fuseLabels, type TargetProbability } from "./label_fusion.ts";
import { slidingWindowInference } from "./sliding_window.ts";
import { foregroundProbability, targetClasses } from "./segment.ts";
import type { DeepLab } from "./_models.ts";
import type { LabelMap } from "../data/mod.ts";
import { newLabelMap } from "./_arrays.ts";
import {
  type CaseImage,
  cutWindows,
  dilateMask,
  targetRegion,
} from "./attention.ts";

/** Options for {@linkcode segmentVolume}. */
export interface SegmentVolumeOptions extends InferenceConfig {
  /** `[nz, ny, nx]` coarse multi-class map. */
  attention: LabelMap;
  /** Patch side. */
  patchSize: number;
  /** Target label ids, ascending (the fusion tie rule follows this order). */
  targets: number[];
  /** Called after each slice. */
  onSlice?: (done: number, total: number) => void;
}

/**
 * Segments a canonical volume: per-target sliding-window probabilities
 * over the attention's bounding box grown by `margin` pixels, then label
 * fusion (argmax among targets with p > 0.5 within `margin` pixels of their
 * own attention; ties go to the lower label). The network's attention
 * channel is the attention itself, as in training.
 *
 * @param net The stage-3 network.
 * @param c The image.
 * @param options The attention, window and target settings.
 * @returns `[nz, ny, nx]` fused labels.
 */
export async function segmentVolume(
  net: DeepLab,
  c: CaseImage,
  options: SegmentVolumeOptions,
): Promise<LabelMap> {
  const { attention } = options;
  const [nx, ny, nz] = c.dims;
  const p = options.patchSize;
  const k = c.channels + 1;
  const area = nx * ny;
  const out = newLabelMap(area * nz, Math.max(0, ...options.targets));
  const classOf = targetClasses(net, options.targets);
  // Slice by slice, so memory holds one slice's probabilities per target.
  for (let z = 0; z < nz; z++) {
    const maps: TargetProbability[] = [];
    for (const target of options.targets) {
      const box = targetRegion(attention, c.dims, { target, z });
      if (!box) continue;
      const m = options.margin;
      const region = {
        y0: Math.max(0, box.y0 - m),
        y1: Math.min(ny, box.y1 + m),
        x0: Math.max(0, box.x0 - m),
        x1: Math.min(nx, box.x1 + m),
      };
      const prob = await slidingWindowInference(
        [ny, nx],
        region,
        {
          patchSize: p,
          overlap: options.overlap,
          mode: options.mode,
          sigmaScale: options.sigmaScale,
          batchSize: options.batchSize,
          predict: async (windows) => {
            const x = cutWindows(c, attention, {
              target,
              z,
              windows,
              patchSize: p,
            });
            const input = tf.tensor4d(x, [windows.length, p, p, k]);
            const fg = foregroundProbability(
              net,
              input,
              { classes: new Array(windows.length).fill(classOf.get(target)!) },
            );
            const data = await fg.data() as Float32Array;
            tf.dispose([input, fg]);
            return data;
          },
        },
      );
      const inside = new Uint8Array(area);
      const base = z * area;
      for (let v = 0; v < area; v++) {
        inside[v] = attention[base + v] === target ? 1 : 0;
      }
      maps.push({
        label: target,
        prob,
        attention: m > 0
          ? dilateMask(inside, { width: nx, height: ny, radius: m })
          : inside,
      });
    }
    if (maps.length > 0) out.set(fuseLabels(maps), z * area);
    options.onSlice?.(z + 1, nz);
  }
  return out;
}
