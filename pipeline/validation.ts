/**
 * Validation Dice at the end of each epoch of stages 1 and 3, on a small
 * fixed sample of held-out data (a few whole slices for the coarse network,
 * a few [image, attention] patches per target for the segmentation
 * network), so that `log.jsonl` carries a learning curve besides the loss.
 * The sample is chosen once, before training, and is small enough that the
 * check costs a few per cent of the stage; it is watched, never used to
 * choose a checkpoint.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  extractPatch,
  type LabelMap,
  samplePatches,
  type SamplingCase,
  VOC_IGNORE,
} from "../data/mod.ts";
import { sliceBatch, type SliceSource } from "./coarse.ts";
import { foregroundProbability, targetClasses } from "./segment.ts";
import type { DeepLab } from "./_models.ts";
import { roundUp } from "./_train_util.ts";

/** One validation of a stage's network (a line of `log.jsonl` adds stage, epoch, step and ms). */
export interface StageValidation {
  /** Mean Dice over the targets whose truth appears in the sample, `null` when none does. */
  dice: number | null;
  /** Dice per target name over the sample (pixels pooled), `null` where the truth has none of it. */
  targets: Record<string, number | null>;
  /** What was scored, e.g. `4 slices of 1 evaluation case(s)`. */
  sample: string;
}

/** Pooled Dice counts of one target. */
interface Counts {
  inter: number;
  pred: number;
  truth: number;
}

function summarise(
  counts: Map<number, Counts>,
  name: (id: number) => string,
  sample: string,
): StageValidation {
  const targets: Record<string, number | null> = {};
  const present: number[] = [];
  for (const [id, c] of counts) {
    const d = c.truth > 0 ? (2 * c.inter) / (c.pred + c.truth) : null;
    targets[name(id)] = d;
    if (d !== null) present.push(d);
  }
  return {
    dice: present.length
      ? present.reduce((a, b) => a + b, 0) / present.length
      : null,
    targets,
    sample,
  };
}

/**
 * Picks up to `count` axial slices that contain labelled foreground, spread
 * over the cases (round robin) and, within a case, evenly over its
 * foreground slices.
 *
 * @param cases Cases with `dims` and a `label` (`[nz, ny, nx]`).
 * @param count Slices wanted.
 * @returns `[case index, z]` pairs.
 *
 * @example
 * ```ts ignore
 * const label = new Uint8Array(2 * 2 * 4).fill(1, 4, 12); // slices 1 and 2
 * pickValidationSlices([{ dims: [2, 2, 4], label }], 1); // [[0, 2]]
 * ```
 */
export function pickValidationSlices(
  cases: { dims: [number, number, number]; label?: LabelMap }[],
  count: number,
): [number, number][] {
  const lists = cases.map((c) => {
    const [nx, ny, nz] = c.dims;
    const out: number[] = [];
    if (!c.label) return out;
    for (let z = 0; z < nz; z++) {
      const s = c.label.subarray(z * nx * ny, (z + 1) * nx * ny);
      if (s.some((v) => v > 0 && v !== VOC_IGNORE)) out.push(z);
    }
    return out;
  });
  const withSlices = lists.flatMap((l, i) => (l.length ? [i] : []));
  if (withSlices.length === 0 || count <= 0) return [];
  const picks: [number, number][] = [];
  const per = Math.ceil(count / withSlices.length);
  for (let k = 0; k < per && picks.length < count; k++) {
    for (const i of withSlices) {
      if (picks.length >= count) break;
      const l = lists[i]!;
      const n = Math.min(per, l.length);
      if (k >= n) continue;
      picks.push([i, l[Math.floor(((k + 0.5) * l.length) / n)]!]);
    }
  }
  return picks;
}

/**
 * A validator of the coarse (stage-1) network: per-target Dice of its
 * argmax over `slices` labelled slices of `cases`, pooled over the slices.
 *
 * @param net The stage-1 network.
 * @param cases Held-out cases; those without a label are skipped.
 * @param options Padding multiple, targets `{id, name}`, slices per check.
 * @returns The validator, or `null` when no case has labelled foreground.
 */
export function coarseValidator(
  net: DeepLab,
  cases: SliceSource[],
  options: {
    multiple: number;
    targets: { id: number; name: string }[];
    slices?: number;
    /** Neighbouring slices on each side as channels (`coarse.context`). */
    context?: number;
  },
): (() => Promise<StageValidation>) | null {
  const { multiple, targets, slices = 4, context = 0 } = options;
  const picks = pickValidationSlices(cases, slices);
  if (picks.length === 0) return null;
  const used = [...new Set(picks.map(([i]) => i))].map((i) => cases[i]!);
  const local = picks.map(([i, z]) => [used.indexOf(cases[i]!), z]) as [
    number,
    number,
  ][];
  const h = roundUp(Math.max(...used.map((c) => c.dims[1])), multiple);
  const w = roundUp(Math.max(...used.map((c) => c.dims[0])), multiple);
  const { x, y, channels } = sliceBatch(used, local, {
    height: h,
    width: w,
    context,
  });
  // Pixels outside a case's own slice (padding) are left out of the counts.
  const inside = new Uint8Array(local.length * h * w);
  local.forEach(([ci, _z], b) => {
    const [nx, ny] = used[ci]!.dims;
    for (let r = 0; r < ny; r++) {
      inside.fill(1, (b * h + r) * w, (b * h + r) * w + nx);
    }
  });
  const names = new Map(targets.map((t) => [t.id, t.name]));
  const sample = `${picks.length} slice(s) of ${used.length} case(s)`;
  return async () => {
    const arg = tf.tidy(() =>
      net.apply(tf.tensor4d(x, [local.length, h, w, channels]), {
        training: false,
      }).argMax(-1)
    );
    const pred = await arg.data();
    arg.dispose();
    const counts = new Map<number, Counts>(
      targets.map((t) => [t.id, { inter: 0, pred: 0, truth: 0 }]),
    );
    for (let i = 0; i < pred.length; i++) {
      if (!inside[i] || y[i] === VOC_IGNORE) continue;
      const p = counts.get(pred[i]!), t = counts.get(y[i]!);
      if (p) p.pred++;
      if (t) t.truth++;
      if (p && pred[i] === y[i]) p.inter++;
    }
    return summarise(counts, (id) => names.get(id) ?? String(id), sample);
  };
}

/**
 * A validator of the segmentation (stage-3) network: per-target Dice of
 * its thresholded foreground (probability > 0.5) over `perTarget` patches
 * per target, cut around the cases' attention as at training, pooled over
 * each target's patches.
 *
 * @param net The stage-3 network.
 * @param cases Held-out cases with their (predicted) attention and labels.
 * @param options Targets `{id, name}`, patch size, patches per target, seed.
 * @returns The validator, or `null` when no case has a label or no target
 *   has attention.
 */
export function segmentValidator(
  net: DeepLab,
  cases: SamplingCase[],
  options: {
    targets: { id: number; name: string }[];
    patchSize: number;
    perTarget?: number;
    seed: number;
  },
): (() => Promise<StageValidation>) | null {
  const { targets, patchSize: p, perTarget = 2, seed } = options;
  const labelled = cases.filter((c) => c.label);
  if (labelled.length === 0) return null;
  let records;
  try {
    records = samplePatches(labelled, {
      targets: targets.map((t) => t.id),
      perTarget: 1,
      patchSize: p,
      seed,
      onWarning: () => {},
    }).records;
  } catch {
    return null; // no target has attention in any held-out slice
  }
  // Up to perTarget records per target, evenly over its slices and cases.
  const picked = targets.flatMap((t) => {
    const own = records.filter((r) => r.target === t.id);
    const n = Math.min(perTarget, own.length);
    return Array.from(
      { length: n },
      (_, k) => own[Math.floor(((k + 0.5) * own.length) / n)]!,
    );
  });
  if (picked.length === 0) return null;
  const ch = labelled[0]!.channels + 1;
  const x = new Float32Array(picked.length * p * p * ch);
  const y = new Uint8Array(picked.length * p * p);
  picked.forEach((r, b) => {
    const patch = extractPatch(labelled[r.caseIndex]!, r, { patchSize: p });
    for (let i = 0; i < p * p; i++) {
      const at = (b * p * p + i) * ch;
      for (let c = 0; c < ch - 1; c++) {
        x[at + c] = patch.image[i * (ch - 1) + c]!;
      }
      x[at + ch - 1] = patch.attention[i]!;
    }
    y.set(patch.label, b * p * p);
  });
  const names = new Map(targets.map((t) => [t.id, t.name]));
  const classOf = targetClasses(net, targets.map((t) => t.id));
  const classes = picked.map((r) => classOf.get(r.target)!);
  const sample = `${picked.length} patch(es) of ${
    new Set(picked.map((r) => r.caseIndex)).size
  } case(s)`;
  return async () => {
    const fg = tf.tidy(() =>
      foregroundProbability(
        net,
        tf.tensor4d(x, [picked.length, p, p, ch]),
        { classes },
      )
    );
    const prob = await fg.data();
    fg.dispose();
    const counts = new Map<number, Counts>(
      targets.map((t) => [t.id, { inter: 0, pred: 0, truth: 0 }]),
    );
    picked.forEach((r, b) => {
      const c = counts.get(r.target)!;
      for (let i = b * p * p; i < (b + 1) * p * p; i++) {
        const pr = prob[i]! > 0.5, t = y[i] === 1;
        if (pr) c.pred++;
        if (t) c.truth++;
        if (pr && t) c.inter++;
      }
    });
    return summarise(counts, (id) => names.get(id) ?? String(id), sample);
  };
}
