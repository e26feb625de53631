/**
 * Attention-guided patch sampling (paper section 3.2): centres of
 * object-centric 2D patches drawn inside each target's coarse attention, slice
 * by slice, kept as a lazy index of `(case, slice, target, centre)` records.
 * Pixels are cut only when a batch asks for them.
 *
 * @module
 */
import { Prng } from "../random/prng.ts";
import { positiveInt } from "../_checks.ts";
import { validateSamplingCase } from "./_patch_validate.ts";

/** An integer label map: the coarse attention or the ground truth. */
export type LabelMap = Uint8Array | Int16Array;

/**
 * One preprocessed, canonical volume held in memory, ready for sampling.
 * Voxel `(x, y, z)` is at `(z * ny + y) * nx + x`; slices are axial (`z`),
 * with rows along `y` and columns along `x`. A 2D image has `nz = 1`.
 */
export interface SamplingCase {
  /** Case id, carried into each patch's provenance. */
  id: string;
  /** Domain (modality or phase) index into `Dataset.domains`. */
  domain: number;
  /** `[nx, ny, nz]`. */
  dims: [number, number, number];
  /** Image channels per voxel: 1 for CT/MRI, 3 for RGB. */
  channels: number;
  /** `[nz, ny, nx, channels]`, channels last. */
  image: Float32Array;
  /** `[nz, ny, nx]` coarse multi-class label map; target ids are its values (> 0). */
  attention: LabelMap;
  /** `[nz, ny, nx]` ground-truth label map; a target's label patch is `label === target`. */
  label?: LabelMap;
}

/** One patch of the lazy index: where to cut it, and for which target. */
export interface PatchRecord {
  /** Index into the `cases` array given to {@linkcode samplePatches}. */
  caseIndex: number;
  /** Axial slice `z`. */
  slice: number;
  /** Target id (an attention value). */
  target: number;
  /** Centre row (`y`). */
  cy: number;
  /** Centre column (`x`). */
  cx: number;
}

/** Per-target counts in a {@linkcode SamplingSummary}. */
export interface TargetSummary {
  /** Slices (over all cases) where the target has attention. */
  slices: number;
  /** Records drawn for the target. */
  records: number;
}

/** What {@linkcode samplePatches} found and drew. */
export interface SamplingSummary {
  /** Number of cases. */
  cases: number;
  /** Slices with attention for at least one requested target. */
  slices: number;
  /** Total records (patches) in the index. */
  records: number;
  /** Counts per target id (every requested target, absent ones with zeros). */
  targets: Record<number, TargetSummary>;
  /** Records per domain index. */
  domains: Record<number, number>;
  /** Requested targets with no attention in any slice of any case. */
  absentTargets: number[];
  /** Warnings raised while sampling (also passed to `onWarning`). */
  warnings: string[];
}

/** The lazy sampling index returned by {@linkcode samplePatches}. */
export interface PatchIndex {
  /** Side of the square patches, in pixels. */
  patchSize: number;
  /** Centres drawn per target per slice. */
  perTarget: number;
  /** Seed the centres were drawn with. */
  seed: number;
  /** Ids of the cases, in the order given (records refer to them by index). */
  caseIds: string[];
  /** The records, ordered by case, slice, target, then stratum. */
  records: PatchRecord[];
  /** Counts, absent targets and warnings. */
  summary: SamplingSummary;
}

/** Options for {@linkcode samplePatches}. */
export interface SamplePatchesOptions {
  /**
   * Target ids to sample; targets absent everywhere are listed in
   * `summary.absentTargets`. @default {every positive value found in the attention maps}
   */
  targets?: number[];
  /** Centres drawn per target per slice (the paper's 30). @default {30} */
  perTarget?: number;
  /** Side of the square patches (the paper's 128). @default {128} */
  patchSize?: number;
  /**
   * Smallest attention area (pixels) of a target in a slice for it to be
   * sampled there; raises the bar against stray coarse-segmentation voxels.
   * @default {1}
   */
  minArea?: number;
  /** Seed for the centre draws. @default {0} */
  seed?: number;
  /** Receives each warning. @default {console.warn} */
  onWarning?: (message: string) => void;
}

/**
 * Draws attention-guided patch centres (paper section 3.2) and returns a
 * lazy index: only `(case, slice, target, centre)` records, no pixels.
 *
 * For every axial slice of every case and every requested target whose
 * attention appears in that slice, `perTarget` centres are drawn inside the
 * target's attention region by **stratified sampling in scan order**: the
 * region's `n` pixels, listed row by row (`y`, then `x`), are split into
 * `perTarget` strata of equal size, and one pixel is drawn uniformly from
 * each (centre `k` is pixel `floor((k + u_k) · n / perTarget)`, `u_k`
 * uniform in `[0, 1)`). Each stratum is a band of rows holding an equal share
 * of the organ, so the patches cover it from top to bottom instead of
 * clustering where chance puts them; a region smaller than `perTarget`
 * pixels gets repeated centres. Every centre lies inside its mask.
 *
 * A patch spans rows `cy - floor(p / 2)` to `cy - floor(p / 2) + p - 1`
 * (columns likewise); parts outside the image are padded with 0 in the
 * image, attention and label (see {@linkcode extractPatch}). A patch larger
 * than a slice is padded too, and raises a warning.
 *
 * @param cases Preprocessed canonical volumes; `image` `[nz, ny, nx, channels]`,
 * `attention` and `label` `[nz, ny, nx]`.
 * @param options Targets, patches per target per slice, patch size, seed.
 * @returns The index; `summary.absentTargets` lists requested targets found
 * in no slice.
 * @throws {Error} If `cases` is empty or no requested target has attention
 * anywhere.
 * @throws {TypeError} If a case's arrays have the wrong type or length.
 * @throws {RangeError} If an option or dims value is out of range.
 *
 * @example Usage
 * ```ts
 * import { samplePatches } from "@agcl/agcl/data";
 * import assert from "node:assert/strict";
 *
 * const attention = new Uint8Array(8 * 8); // one 8×8 slice
 * attention.fill(1, 16, 32); // target 1 in rows 2–3
 * const index = samplePatches([{
 *   id: "a", domain: 0, dims: [8, 8, 1], channels: 1,
 *   image: new Float32Array(64), attention,
 * }], { perTarget: 4, patchSize: 4, seed: 1 });
 * assert.equal(index.records.length, 4);
 * assert.ok(index.records.every((r) => r.cy === 2 || r.cy === 3));
 * ```
 */
export function samplePatches(
  cases: SamplingCase[],
  options: SamplePatchesOptions = {},
): PatchIndex {
  const {
    targets: requested,
    perTarget = 30,
    patchSize = 128,
    minArea = 1,
    seed = 0,
    onWarning = console.warn,
  } = options;
  const fn = "sample patches";
  if (!Array.isArray(cases) || cases.length === 0) {
    throw new Error(
      `Cannot ${fn} as 'cases' must hold at least one case: the dataset is empty`,
    );
  }
  positiveInt(perTarget, "perTarget", fn);
  positiveInt(patchSize, "patchSize", fn);
  positiveInt(minArea, "minArea", fn);
  if (requested !== undefined) {
    for (const t of requested) {
      if (!Number.isInteger(t) || t < 1 || t > 32767) {
        throw new RangeError(
          `Cannot ${fn} as 'targets' must hold integers in [1, 32767]: found ${t}`,
        );
      }
    }
  }
  cases.forEach((c) => validateSamplingCase(c, fn));

  const warnings: string[] = [];
  const warn = (m: string) => {
    warnings.push(m);
    onWarning(m);
  };
  const small = cases.filter((c) =>
    c.dims[0] < patchSize || c.dims[1] < patchSize
  );
  if (small.length > 0) {
    warn(
      `samplePatches: 'patchSize' ${patchSize} exceeds the slice size of ${small.length} case(s) (first: '${
        small[0]!.id
      }' is ${small[0]!.dims[0]}×${
        small[0]!.dims[1]
      }); those patches are zero-padded`,
    );
  }

  // Largest label value decides the size of the per-slice count table.
  let maxLabel = 0;
  for (const c of cases) {
    const a = c.attention;
    for (let i = 0; i < a.length; i++) if (a[i]! > maxLabel) maxLabel = a[i]!;
  }
  const wanted = new Uint8Array(maxLabel + 1);
  let targetList: number[];
  if (requested === undefined) {
    const seen = new Uint8Array(maxLabel + 1);
    for (const c of cases) {
      const a = c.attention;
      for (let i = 0; i < a.length; i++) if (a[i]! > 0) seen[a[i]!] = 1;
    }
    targetList = [];
    for (let t = 1; t <= maxLabel; t++) if (seen[t]) targetList.push(t);
  } else {
    targetList = [...new Set(requested)].sort((a, b) => a - b);
  }
  for (const t of targetList) if (t <= maxLabel) wanted[t] = 1;

  const targetSummary: Record<number, TargetSummary> = {};
  for (const t of targetList) targetSummary[t] = { slices: 0, records: 0 };
  const domainSummary: Record<number, number> = {};
  const prng = new Prng(seed);
  const records: PatchRecord[] = [];
  const counts = new Int32Array(maxLabel + 1);
  const seenInSlice: number[] = [];
  // Draw positions per target for the current slice, ascending.
  const draws = new Map<number, Int32Array>();
  const nextDraw = new Int32Array(maxLabel + 1);
  const running = new Int32Array(maxLabel + 1);
  let slicesWithAttention = 0;

  for (let ci = 0; ci < cases.length; ci++) {
    const c = cases[ci]!;
    const [nx, ny, nz] = c.dims;
    const a = c.attention;
    const plane = nx * ny;
    for (let z = 0; z < nz; z++) {
      const off = z * plane;
      seenInSlice.length = 0;
      for (let i = off; i < off + plane; i++) {
        const v = a[i]!;
        if (v > 0 && wanted[v]) {
          if (counts[v] === 0) seenInSlice.push(v);
          counts[v]!++;
        }
      }
      if (seenInSlice.length === 0) continue;
      seenInSlice.sort((p, q) => p - q);
      draws.clear();
      for (const t of seenInSlice) {
        const n = counts[t]!;
        if (n < minArea) continue;
        const d = new Int32Array(perTarget);
        for (let k = 0; k < perTarget; k++) {
          d[k] = Math.min(n - 1, Math.floor((k + prng.next()) * n / perTarget));
        }
        draws.set(t, d);
        nextDraw[t] = 0;
        running[t] = 0;
      }
      if (draws.size > 0) {
        slicesWithAttention++;
        // Second pass: walk the slice in scan order and emit each centre when
        // its target's running pixel count reaches the drawn position.
        const found = new Map<number, PatchRecord[]>();
        for (const t of draws.keys()) found.set(t, []);
        for (let i = off; i < off + plane; i++) {
          const v = a[i]!;
          const d = v > 0 ? draws.get(v) : undefined;
          if (d === undefined) continue;
          const r = running[v]!;
          let k = nextDraw[v]!;
          while (k < perTarget && d[k] === r) {
            const p = i - off;
            found.get(v)!.push({
              caseIndex: ci,
              slice: z,
              target: v,
              cy: Math.floor(p / nx),
              cx: p % nx,
            });
            k++;
          }
          nextDraw[v] = k;
          running[v] = r + 1;
        }
        for (const [t, list] of found) {
          for (const rec of list) records.push(rec);
          targetSummary[t]!.slices++;
          targetSummary[t]!.records += list.length;
          domainSummary[c.domain] = (domainSummary[c.domain] ?? 0) +
            list.length;
        }
      }
      for (const t of seenInSlice) counts[t] = 0;
    }
  }

  const absentTargets = targetList.filter((t) =>
    targetSummary[t]!.slices === 0
  );
  if (records.length === 0) {
    throw new Error(
      `Cannot ${fn} as no target has attention in any slice: targets [${targetList}] over ${cases.length} case(s)${
        minArea > 1 ? ` with 'minArea' ${minArea}` : ""
      }`,
    );
  }
  if (absentTargets.length > 0) {
    warn(
      `samplePatches: target(s) [${absentTargets}] have no attention in any slice and get no patches`,
    );
  }
  return {
    patchSize,
    perTarget,
    seed,
    caseIds: cases.map((c) => c.id),
    records,
    summary: {
      cases: cases.length,
      slices: slicesWithAttention,
      records: records.length,
      targets: targetSummary,
      domains: domainSummary,
      absentTargets,
      warnings,
    },
  };
}

/** A patch cut from a case: image, binary attention and binary label. */
export interface Patch {
  /** Side of the square patch. */
  size: number;
  /** Image channels. */
  channels: number;
  /** `[size, size, channels]`, rows then columns then channels. */
  image: Float32Array;
  /** `[size, size]` binary mask of the target's attention (1 inside). */
  attention: Uint8Array;
  /** `[size, size]` binary ground truth of the target (all 0 without a label map). */
  label: Uint8Array;
}

/** Options of {@linkcode extractPatch}. */
export interface ExtractPatchOptions {
  /** Side `p` of the (square) patch. */
  patchSize: number;
}

/**
 * Cuts the patch of one record: rows `cy - floor(p / 2)` … `+ p - 1`,
 * columns likewise, of slice `record.slice`. Pixels outside the image are 0
 * in the image, the attention and the label (zero padding). The attention
 * and label are binary: `1` where the map equals `record.target`.
 *
 * @param sample The case the record points at.
 * @param record The record (its `caseIndex` is not checked against `sample`).
 * @param options `patchSize`: side `p` of the patch.
 * @returns The patch: image `[p, p, channels]`, attention and label `[p, p]`.
 * @throws {RangeError} If the record's slice or centre lies outside the case,
 * or `patchSize` is not a positive integer.
 *
 * @example Usage
 * ```ts
 * import { extractPatch } from "@agcl/agcl/data";
 * import assert from "node:assert/strict";
 *
 * const image = Float32Array.from({ length: 16 }, (_, i) => i); // 4×4 slice
 * const c = { id: "a", domain: 0, dims: [4, 4, 1] as [number, number, number],
 *   channels: 1, image, attention: new Uint8Array(16).fill(2) };
 * const p = extractPatch(c, { caseIndex: 0, slice: 0, target: 2, cy: 0, cx: 0 }, {
 *   patchSize: 2,
 * });
 * assert.deepEqual([...p.image], [0, 0, 0, 0]); // rows -1..0, cols -1..0
 * ```
 */
export function extractPatch(
  sample: SamplingCase,
  record: PatchRecord,
  options: ExtractPatchOptions,
): Patch {
  const { patchSize } = options;
  positiveInt(patchSize, "patchSize", "extract patch");
  const [nx, ny, nz] = sample.dims;
  const { slice, cy, cx, target } = record;
  if (
    !(slice >= 0 && slice < nz && cy >= 0 && cy < ny && cx >= 0 && cx < nx)
  ) {
    throw new RangeError(
      `Cannot extract patch as the record (slice ${slice}, cy ${cy}, cx ${cx}) lies outside case '${sample.id}' of dims [${sample.dims}]`,
    );
  }
  const p = patchSize;
  const ch = sample.channels;
  const image = new Float32Array(p * p * ch);
  const attention = new Uint8Array(p * p);
  const label = new Uint8Array(p * p);
  const y0 = cy - Math.floor(p / 2);
  const x0 = cx - Math.floor(p / 2);
  const xa = Math.max(0, -x0);
  const xb = Math.min(p, nx - x0);
  const lab = sample.label;
  for (let i = 0; i < p; i++) {
    const y = y0 + i;
    if (y < 0 || y >= ny || xa >= xb) continue;
    const row = (slice * ny + y) * nx + x0;
    image.set(
      sample.image.subarray((row + xa) * ch, (row + xb) * ch),
      (i * p + xa) * ch,
    );
    for (let j = xa; j < xb; j++) {
      attention[i * p + j] = sample.attention[row + j] === target ? 1 : 0;
      if (lab) label[i * p + j] = lab[row + j] === target ? 1 : 0;
    }
  }
  return { size: p, channels: ch, image, attention, label };
}
