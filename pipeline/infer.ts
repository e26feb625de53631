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
import { type Region, slidingWindowInference, type Window } from "./sliding_window.ts";
import { foregroundProbability } from "./segment.ts";
import type { DeepLab } from "./_models.ts";
import type { LabelMap } from "./coarse.ts";

/** The image part of a case: canonical, channels last. */
export interface CaseImage {
  /** `[nx, ny, nz]`. */
  dims: [number, number, number];
  /** Image channels. */
  channels: number;
  /** `[nz, ny, nx, channels]`. */
  image: Float32Array;
}

/**
 * Cuts windows of one slice as the stage-3 input: image channels, then the
 * binary attention of `target`; zero outside the slice.
 *
 * @returns `[windows.length, p, p, channels + 1]`.
 */
export function cutWindows(
  c: CaseImage,
  attention: LabelMap,
  target: number,
  z: number,
  windows: Window[],
  p: number,
): Float32Array {
  const [nx, ny] = c.dims;
  const ch = c.channels;
  const k = ch + 1;
  const out = new Float32Array(windows.length * p * p * k);
  windows.forEach((win, b) => {
    for (let i = 0; i < p; i++) {
      const y = win.y + i;
      if (y < 0 || y >= ny) continue;
      for (let j = 0; j < p; j++) {
        const x = win.x + j;
        if (x < 0 || x >= nx) continue;
        const v = (z * ny + y) * nx + x;
        const o = ((b * p + i) * p + j) * k;
        for (let q = 0; q < ch; q++) out[o + q] = c.image[v * ch + q]!;
        out[o + ch] = attention[v] === target ? 1 : 0;
      }
    }
  });
  return out;
}

/** Bounding box of `target` in slice `z`, or `null` when absent. */
export function targetRegion(
  attention: LabelMap,
  dims: [number, number, number],
  target: number,
  z: number,
): Region | null {
  const [nx, ny] = dims;
  let y0 = ny, y1 = -1, x0 = nx, x1 = -1;
  for (let y = 0; y < ny; y++) {
    const row = (z * ny + y) * nx;
    for (let x = 0; x < nx; x++) {
      if (attention[row + x] === target) {
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
      }
    }
  }
  return y1 < 0 ? null : { y0, y1: y1 + 1, x0, x1: x1 + 1 };
}

/** Options for {@linkcode segmentVolume}. */
export interface SegmentVolumeOptions extends InferenceConfig {
  /** Patch side. */
  patchSize: number;
  /** Target label ids, ascending (the fusion tie rule follows this order). */
  targets: number[];
  /** Called after each slice. */
  onSlice?: (done: number, total: number) => void;
}

/**
 * Segments a canonical volume: per-target sliding-window probabilities
 * inside the attention, then label fusion (argmax among targets with
 * p > 0.5 inside their own attention; ties go to the lower label).
 *
 * @param net The stage-3 network.
 * @param c The image.
 * @param attention `[nz, ny, nx]` coarse multi-class map.
 * @param options Window and target settings.
 * @returns `[nz, ny, nx]` fused labels.
 */
export async function segmentVolume(
  net: DeepLab,
  c: CaseImage,
  attention: LabelMap,
  options: SegmentVolumeOptions,
): Promise<LabelMap> {
  const [nx, ny, nz] = c.dims;
  const p = options.patchSize;
  const k = c.channels + 1;
  const area = nx * ny;
  const out = options.targets.some((t) => t > 255)
    ? new Int16Array(area * nz)
    : new Uint8Array(area * nz);
  // Slice by slice, so memory holds one slice's probabilities per target.
  for (let z = 0; z < nz; z++) {
    const maps: TargetProbability[] = [];
    for (const target of options.targets) {
      const region = targetRegion(attention, c.dims, target, z);
      if (!region) continue;
      const prob = await slidingWindowInference(
        [ny, nx],
        region,
        {
          patchSize: p,
          overlap: options.overlap,
          mode: options.mode,
          sigmaScale: options.sigmaScale,
          batchSize: options.batchSize,
        },
        async (windows) => {
          const x = cutWindows(c, attention, target, z, windows, p);
          const input = tf.tensor4d(x, [windows.length, p, p, k]);
          const fg = foregroundProbability(net, input);
          const data = await fg.data() as Float32Array;
          tf.dispose([input, fg]);
          return data;
        },
      );
      const att = new Uint8Array(area);
      const base = z * area;
      for (let v = 0; v < area; v++) att[v] = attention[base + v] === target ? 1 : 0;
      maps.push({ label: target, prob, attention: att });
    }
    if (maps.length > 0) out.set(fuseLabels(maps), z * area);
    options.onSlice?.(z + 1, nz);
  }
  return out;
}
