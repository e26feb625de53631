/**
 * Data preparation for a run: the dataset (or the embedded phantom), the
 * train / evaluation split, and each case read, reoriented to canonical RAS
 * and mapped to [0, 1], held in memory as channels-last slices.
 *
 * @module
 */
import { join } from "node:path";
import {
  type CaseEntry,
  checkLabelValues,
  type Dataset,
  loadDataset,
  loadVoc,
  makePhantom,
  percentileNormalize,
  readNifti,
  readVocSample,
  toCanonical,
  VOC_IGNORE,
  type Volume,
  windowIntensity,
} from "../data/mod.ts";
import { Prng } from "../random/prng.ts";
import { scale8bit, toLabelMap } from "./_arrays.ts";
import {
  type IntensityConfig,
  type IntensityMode,
  intensityWindow,
  type PipelineConfig,
} from "./config.ts";

/** One case in memory, in canonical orientation. */
export interface PreparedCase {
  /** Case id (file base name). */
  id: string;
  /** The dataset entry. */
  entry: CaseEntry;
  /** Domain index into {@linkcode PreparedData.domains}. */
  domain: number;
  /** Canonical `[nx, ny, nz]`. */
  dims: [number, number, number];
  /** Canonical voxel spacing (mm). */
  spacing: [number, number, number];
  /** Image channels (1 for CT/MRI). */
  channels: number;
  /** `[nz, ny, nx, channels]` intensities in [0, 1]. */
  image: Float32Array;
  /** `[nz, ny, nx]` ground truth, when the entry has a label. */
  label?: Uint8Array | Int16Array;
  /** The image as read (original orientation), for writing predictions. */
  original: Volume;
}

/** Where the evaluation cases came from. */
export interface SplitInfo {
  /** `"validation"`: the dataset's own list; `"held-out"`: part of training. */
  source: "validation" | "held-out";
  /** Ids of the training cases. */
  train: string[];
  /** Ids of the evaluation cases. */
  evaluation: string[];
  /** Fraction held out, for `"held-out"`. */
  fraction?: number;
  /** Repeated `dataset.json` entries that were dropped (absent when none). */
  droppedDuplicates?: DroppedDuplicate[];
}

/** `entries` without repeats of an earlier entry's image; each repeat is recorded. */
function dropDuplicates(
  entries: CaseEntry[],
  list: DroppedDuplicate["list"],
  dropped: DroppedDuplicate[],
): CaseEntry[] {
  const first = new Map<string, number>();
  return entries.filter((e, i) => {
    const at = first.get(e.image);
    if (at === undefined) {
      first.set(e.image, i);
      return true;
    }
    dropped.push({ list, image: e.image, entries: [at, i] });
    return false;
  });
}

/** Refuses a case listed in both `training` and `validation` (data leakage). */
function refuseOverlap(
  training: CaseEntry[],
  validation: CaseEntry[],
  path: string,
): void {
  const train = new Map<string, number>();
  for (const [i, e] of training.entries()) {
    if (!train.has(e.image)) train.set(e.image, i);
  }
  for (const [j, e] of validation.entries()) {
    const i = train.get(e.image);
    if (i === undefined) continue;
    throw new Error(
      `Cannot train on ${path}: 'training'[${i}] and 'validation'[${j}] are the same case (${e.image}); a case that is trained on cannot also be scored`,
    );
  }
}

/** A `dataset.json` entry dropped because it repeats an earlier one. */
export interface DroppedDuplicate {
  /** The list both entries are in. */
  list: "training" | "validation";
  /** The image path they share. */
  image: string;
  /** Indices in the list: the kept entry, then the dropped one. */
  entries: [number, number];
}

/** A prepared dataset. */
export interface PreparedData {
  /** The dataset. */
  dataset: Dataset;
  /** Label id → name, background excluded, ascending. */
  targets: { id: number; name: string }[];
  /** Domain names. */
  domains: string[];
  /** Training cases. */
  train: PreparedCase[];
  /** Evaluation cases. */
  evaluation: PreparedCase[];
  /** The split. */
  split: SplitInfo;
  /** Intensity mapping used (after resolving `auto`). */
  intensity: Exclude<IntensityMode, "auto">;
  /** `true` for a PASCAL VOC folder (RGB, label 255 = ignore). */
  voc: boolean;
}

/** Whether `path` is a folder (a PASCAL VOC root) rather than a `dataset.json`. */
export async function isVocFolder(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

const IDENTITY = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]];

/**
 * Reads a PASCAL VOC folder: `train` for training, `val` for evaluation.
 * Images become 3-channel cases in [0, 1] (`[1, height, width, 3]`), masks
 * keep 255 (ignore). Targets are the classes present in the training masks;
 * the others are named in `onWarning`.
 */
async function prepareVoc(
  root: string,
  onCase?: (done: number, total: number) => void,
  onWarning?: (message: string) => void,
): Promise<PreparedData> {
  const voc = await loadVoc(root);
  const trainIds = voc.splits.train!;
  const evalIds = voc.splits.val!;
  const total = trainIds.length + evalIds.length;
  let done = 0;
  const read = async (ids: string[]) => {
    const out: PreparedCase[] = [];
    for (const id of ids) {
      const s = await readVocSample(voc, id);
      const { width: w, height: h } = s.image;
      const image = scale8bit(s.image.data);
      const entry: CaseEntry = {
        id,
        image: `${root}/JPEGImages/${id}.jpg`,
        domain: "voc",
      };
      if (s.label) entry.label = `${root}/SegmentationClass/${id}.png`;
      const c: PreparedCase = {
        id,
        entry,
        domain: 0,
        dims: [w, h, 1],
        spacing: [1, 1, 1],
        channels: 3,
        image,
        // Predictions are written as 2-D NIfTI on the pixel grid.
        original: {
          data: new Uint8Array(w * h),
          dims: [w, h, 1],
          spacing: [1, 1, 1],
          affine: IDENTITY,
        },
      };
      if (s.label) c.label = s.label.data;
      out.push(c);
      onCase?.(++done, total);
    }
    return out;
  };
  const train = await read(trainIds);
  const evaluation = await read(evalIds);
  const present = new Set<number>();
  for (const c of train) {
    for (const v of c.label ?? []) if (v && v !== VOC_IGNORE) present.add(v);
  }
  const targets = voc.classes.map((name, id) => ({ id, name }))
    .filter((t) => t.id > 0 && present.has(t.id));
  const absent = voc.classes.filter((_, id) => id > 0 && !present.has(id));
  if (targets.length === 0) {
    throw new Error(
      `Cannot train on VOC folder ${root}: no class has pixels in the train split`,
    );
  }
  if (absent.length) {
    onWarning?.(
      `VOC classes absent from the train split are not targets: ${
        absent.join(", ")
      }`,
    );
  }
  const entries = (cs: PreparedCase[]) => cs.map((c) => c.entry);
  const dataset: Dataset = {
    name: "PASCAL VOC",
    path: root,
    labels: Object.fromEntries(voc.classes.map((n, i) => [i, n])),
    domains: ["voc"],
    training: entries(train),
    validation: entries(evaluation),
    test: [],
  };
  return {
    dataset,
    targets,
    domains: ["voc"],
    train,
    evaluation,
    split: { source: "validation", train: trainIds, evaluation: evalIds },
    intensity: "none",
    voc: true,
  };
}

/**
 * Resolves the dataset path of a config: `config.data`, or the embedded
 * phantom written under `cacheDir`.
 */
export async function resolveDataPath(
  config: PipelineConfig,
  cacheDir: string,
): Promise<string> {
  if (config.data !== null) return config.data;
  const [nx, ny, nz] = config.phantom.size;
  return await makePhantom({
    dir: join(
      cacheDir,
      `phantom-${config.phantom.cases}-${nx}x${ny}x${nz}-s${config.seed}`,
    ),
    cases: config.phantom.cases,
    seed: config.seed,
    size: config.phantom.size,
  });
}

function minOf(data: ArrayLike<number>): number {
  let m = Infinity;
  for (let i = 0; i < data.length; i++) if (data[i]! < m) m = data[i]!;
  return m;
}

/**
 * Resolves `intensity: "auto"` from one image: the HU window (−175..250)
 * when it has values below −100 (CT in Hounsfield units), else percentiles.
 */
export async function resolveIntensity(
  image: string,
): Promise<Exclude<IntensityMode, "auto">> {
  return minOf((await readNifti(image)).data) < -100 ? "window" : "percentile";
}

/** An intensity mapping with `auto` resolved (see {@linkcode IntensityConfig}). */
export interface ResolvedIntensity {
  /** The mapping. */
  mode: Exclude<IntensityMode, "auto">;
  /** CT window `[min, max]` in HU, or a preset name. */
  window: IntensityConfig["window"];
  /** Percentiles `[lo, hi]` mapped to 0 and 1. */
  percentiles: [number, number];
}

/**
 * Maps a canonical volume's intensities to [0, 1] as the run's config says:
 * the CT window, percentiles, or the values as they are.
 *
 * @param volume The volume.
 * @param intensity The resolved mapping.
 * @returns Float32 values, same layout.
 */
export function normalizeIntensity(
  volume: Volume,
  intensity: ResolvedIntensity,
): Float32Array {
  const { mode, window, percentiles } = intensity;
  if (mode === "window") {
    const [min, max] = intensityWindow(window);
    return windowIntensity(volume, { min, max });
  }
  if (mode === "percentile") {
    const [lower, upper] = percentiles;
    return percentileNormalize(volume, { lower, upper });
  }
  return Float32Array.from(volume.data);
}

function asLabelMap(
  data: ArrayLike<number>,
  file: string,
): Uint8Array | Int16Array {
  let max = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (!Number.isInteger(v) || v < 0) {
      throw new Error(
        `Cannot use label file ${file}: voxel ${i} has value ${v}, expected a non-negative integer`,
      );
    }
    if (v > max) max = v;
  }
  return toLabelMap(data, max);
}

/** Options for {@linkcode prepareCase}. */
export interface PrepareCaseOptions {
  /** Domain index into {@linkcode PreparedData.domains}. */
  domain: number;
  /** The intensity mapping. */
  intensity: ResolvedIntensity;
}

/**
 * Reads one image (and label) into canonical orientation.
 *
 * @param entry The case.
 * @param options Its domain index and the intensity mapping.
 * @returns The case in memory.
 * @throws {Error} For unreadable files (the message names the file).
 */
export async function prepareCase(
  entry: CaseEntry,
  options: PrepareCaseOptions,
): Promise<PreparedCase> {
  const { domain, intensity } = options;
  const original = await readNifti(entry.image);
  const canon = toCanonical(original);
  const image = normalizeIntensity(canon, intensity);
  const out: PreparedCase = {
    id: entry.id,
    entry,
    domain,
    dims: canon.dims,
    spacing: canon.spacing,
    channels: 1,
    image,
    original,
  };
  if (entry.label) {
    const lab = toCanonical(await readNifti(entry.label));
    if (lab.dims.some((d, i) => d !== canon.dims[i])) {
      throw new Error(
        `Cannot use case ${entry.id}: label ${entry.label} has dims [${lab.dims}] but image ${entry.image} has [${canon.dims}]`,
      );
    }
    out.label = asLabelMap(lab.data, entry.label);
  }
  return out;
}

/** Options for {@linkcode heldOutIndices}. */
export interface HeldOutIndicesOptions {
  /** Fraction to hold out. */
  fraction: number;
  /** The run's seed. */
  seed: number;
}

/**
 * Picks the held-out cases of a dataset without a validation list: a seeded
 * `fraction` of the cases (at least one, and at least one left to train
 * on). With several domains, the cases are held out within each domain
 * that has at least two (stratified, so every domain stays in training);
 * only when no domain has two does the draw span domains.
 *
 * @param domains Domain of each labelled case.
 * @param options Fraction to hold out and the run's seed.
 * @returns Indices of the held-out cases.
 */
export function heldOutIndices(
  domains: string[],
  options: HeldOutIndicesOptions,
): Set<number> {
  const { fraction, seed } = options;
  const n = domains.length;
  const prng = new Prng(seed + 7919);
  const groups = new Map<string, number[]>();
  domains.forEach((d, i) => groups.set(d, [...(groups.get(d) ?? []), i]));
  const pick = (idx: number[]) => {
    const order = prng.shuffle(idx.slice());
    const k = Math.min(
      idx.length - 1,
      Math.max(1, Math.round(idx.length * fraction)),
    );
    return order.slice(0, k);
  };
  const stratifiable = [...groups.values()].filter((g) => g.length >= 2);
  if (groups.size < 2 || stratifiable.length === 0) {
    return new Set(pick(domains.map((_, i) => i)).slice(0, n - 1));
  }
  return new Set(stratifiable.flatMap(pick));
}

/** Options for {@linkcode prepareData}. */
export interface PrepareDataOptions {
  /** Called after each case is read. */
  onCase?: (done: number, total: number) => void;
  /** Receives warnings (VOC classes absent from training, repeated entries, …). */
  onWarning?: (message: string) => void;
}

/**
 * Loads the dataset of a config (a `dataset.json`, or a PASCAL VOC folder),
 * splits it and reads every case.
 *
 * Evaluation uses the dataset's `validation` entries; when there are none,
 * a seeded random `validationFraction` of `training` is held out (at least
 * one case, and at least one left to train on), within each domain when
 * there are several ({@linkcode heldOutIndices}). A warning names
 * evaluation domains that have no training case.
 *
 * @param path `dataset.json` path.
 * @param config The run's config (seed, split fraction, intensity).
 * @param options Progress and warning callbacks.
 * @returns The prepared data.
 * @throws {Error} When the dataset has fewer than 2 labelled cases, or a
 * label has no voxel in the training cases (the label is named).
 */
export async function prepareData(
  path: string,
  config: PipelineConfig,
  options: PrepareDataOptions = {},
): Promise<PreparedData> {
  const { onCase, onWarning } = options;
  if (await isVocFolder(path)) return prepareVoc(path, onCase, onWarning);
  const dataset = await loadDataset(path);
  const targets = Object.entries(dataset.labels)
    .map(([k, v]) => ({ id: Number(k), name: v }))
    .filter((t) => t.id > 0)
    .sort((a, b) => a.id - b.id);
  if (targets.length === 0) {
    throw new Error(
      `Cannot train on ${path}: its labels list no target besides background`,
    );
  }
  const domains = dataset.domains.length ? dataset.domains : ["default"];
  const duplicates: DroppedDuplicate[] = [];
  const training = dropDuplicates(dataset.training, "training", duplicates);
  const validationAll = dropDuplicates(
    dataset.validation,
    "validation",
    duplicates,
  );
  for (const d of duplicates) {
    onWarning?.(
      `${path}: '${d.list}'[${d.entries[1]}] repeats '${d.list}'[${
        d.entries[0]
      }] (${d.image}); the repeat was dropped so that the case counts once`,
    );
  }
  refuseOverlap(dataset.training, dataset.validation, path);
  const labelled = training.filter((e) => e.label);
  let trainEntries: CaseEntry[];
  let evalEntries: CaseEntry[];
  let split: SplitInfo;
  const validation = validationAll.filter((e) => e.label);
  if (validation.length > 0) {
    trainEntries = labelled;
    evalEntries = validation;
    split = {
      source: "validation",
      train: trainEntries.map((e) => e.id),
      evaluation: evalEntries.map((e) => e.id),
    };
  } else {
    if (labelled.length < 2) {
      throw new Error(
        `Cannot train on ${path}: it has ${labelled.length} labelled training case(s) and no validation list; at least 2 are needed to hold one out`,
      );
    }
    const evalSet = heldOutIndices(labelled.map((e) => e.domain), {
      fraction: config.validationFraction,
      seed: config.seed,
    });
    trainEntries = labelled.filter((_, i) => !evalSet.has(i));
    evalEntries = labelled.filter((_, i) => evalSet.has(i));
    split = {
      source: "held-out",
      fraction: config.validationFraction,
      train: trainEntries.map((e) => e.id),
      evaluation: evalEntries.map((e) => e.id),
    };
  }
  if (duplicates.length > 0) split.droppedDuplicates = duplicates;
  if (trainEntries.length === 0) {
    throw new Error(
      `Cannot train on ${path}: it has no labelled training case`,
    );
  }
  const trainDomains = new Set(trainEntries.map((e) => e.domain));
  const unseen = [
    ...new Set(
      evalEntries.map((e) => e.domain).filter((d) => !trainDomains.has(d)),
    ),
  ];
  if (unseen.length > 0) {
    onWarning?.(
      `evaluation case(s) of domain ${
        unseen.map((d) => `"${d}"`).join(", ")
      } have no training case of that domain: the Dice measures transfer to an unseen acquisition${
        split.source === "held-out"
          ? " (each of these domains has a single labelled case; add a validation list to dataset.json to choose the split)"
          : ""
      }`,
    );
  }
  const intensity = config.intensity.mode === "auto"
    ? await resolveIntensity(trainEntries[0]!.image)
    : config.intensity.mode;
  const mapping: ResolvedIntensity = { ...config.intensity, mode: intensity };
  const total = trainEntries.length + evalEntries.length;
  let done = 0;
  const read = async (entries: CaseEntry[]) => {
    const out: PreparedCase[] = [];
    for (const e of entries) {
      const d = Math.max(0, domains.indexOf(e.domain));
      const c = await prepareCase(e, { domain: d, intensity: mapping });
      for (const note of c.original.assumed ?? []) {
        onWarning?.(`${e.image}: ${note}`);
      }
      if ((c.original.nonFinite ?? 0) > 0) {
        onWarning?.(
          `${e.image} has ${c.original.nonFinite} NaN or infinite voxels; they were mapped to finite intensities`,
        );
      }
      if (c.label) {
        checkLabelValues(c.label, { labels: dataset.labels, source: e.label! });
      }
      out.push(c);
      onCase?.(++done, total);
    }
    return out;
  };
  const train = await read(trainEntries);
  const evaluation = await read(evalEntries);
  const counts = new Map<number, number>();
  for (const c of train) {
    for (const v of c.label!) if (v) counts.set(v, (counts.get(v) ?? 0) + 1);
  }
  for (const t of targets) {
    if (!counts.get(t.id)) {
      throw new Error(
        `Cannot train on ${path}: label ${t.id} ("${t.name}") has no voxels in the ${train.length} training case(s)`,
      );
    }
  }
  return {
    dataset,
    targets,
    domains,
    train,
    evaluation,
    split,
    intensity,
    voc: false,
  };
}
