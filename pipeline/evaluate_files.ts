/**
 * Evaluation of a folder of predicted NIfTI label maps against the label
 * maps of a `dataset.json` split (what `deno task eval` runs): the file
 * work (listing, NIfTI reading, grid checks) around the typed-array metrics
 * of `metrics/`.
 *
 * @module
 */
import {
  type CaseEntry,
  checkLabelValues,
  checkSameGrid,
  type Dataset,
  loadDataset,
} from "../data/dataset.ts";
import { readNifti } from "../data/nifti.ts";
import {
  type CaseMetrics,
  evaluateLabelMaps,
  type MetricsSummary,
  summarizeMetrics,
} from "../metrics/evaluate.ts";

/** Options for {@linkcode evaluatePredictions}. */
export interface EvaluatePredictionsOptions {
  /** Which list of the dataset the predictions belong to. @default {"validation"} */
  split?: "training" | "validation" | "test";
  /** Evaluate only the cases that have a prediction (else a missing one is an error). @default {false} */
  partial?: boolean;
  /**
   * Called once per case after it is evaluated, with how many cases are
   * done (this one included) of how many will be (e.g. for a progress bar).
   */
  onCase?: (
    id: string,
    metrics: CaseMetrics,
    progress: { done: number; total: number },
  ) => void;
}

/** Result of {@linkcode evaluatePredictions}. */
export interface EvaluatePredictionsResult {
  /** The `metrics.json` content. */
  summary: MetricsSummary;
  /** Ids of split cases without a prediction (only with `partial`). */
  missing: string[];
  /** Prediction files that match no case of the split (ignored). */
  unmatched: string[];
}

const NIFTI = /\.nii(\.gz)?$/;

/**
 * Evaluates every case of a dataset split against `<predDir>/<case id>.nii.gz`
 * (or `.nii`), the id being the image file's base name: per-target Dice,
 * IoU, HD, HD95 and ASSD with the label map's spacing, summarised as
 * `metrics.json`.
 *
 * @param predDir Folder of predicted label maps.
 * @param dataset A `dataset.json` path or a loaded dataset.
 * @param options Split, partial evaluation, progress callback.
 * @returns The summary, the missing and the unmatched files.
 * @throws {Error} When the folder does not exist, has no prediction for the
 * split, a case lacks a prediction (without `partial`) or a label map, or a
 * prediction's grid differs from its label map's.
 *
 * @example
 * ```ts ignore
 * import { evaluatePredictions } from "@agcl/agcl/pipeline";
 * const { summary } = await evaluatePredictions(".runs/tiny/predictions", "data/dataset.json");
 * console.log(summary.mean.dice);
 * ```
 */
export async function evaluatePredictions(
  predDir: string,
  dataset: string | Dataset,
  options: EvaluatePredictionsOptions = {},
): Promise<EvaluatePredictionsResult> {
  const { split = "validation", partial = false } = options;
  const ds = typeof dataset === "string"
    ? await loadDataset(dataset, { check: false })
    : dataset;
  const entries: CaseEntry[] = ds[split];
  if (!Array.isArray(entries)) {
    throw new RangeError(
      `Cannot evaluate predictions as 'split' must be training, validation or test: current value is '${split}'`,
    );
  }
  if (entries.length === 0) {
    const sizes = (["training", "validation", "test"] as const)
      .map((s) => `${ds[s].length} ${s}`).join(", ");
    throw new Error(
      `Cannot evaluate predictions as split '${split}' of '${ds.path}' is empty (it has ${sizes} cases): choose another split with --split (and --partial if only some of its cases were predicted)`,
    );
  }
  const files = new Map<string, string>();
  try {
    for await (const e of Deno.readDir(predDir)) {
      if (e.isFile && NIFTI.test(e.name)) {
        files.set(e.name.replace(NIFTI, ""), e.name);
      }
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(
        `Cannot evaluate predictions as folder '${predDir}' does not exist`,
      );
    }
    throw e;
  }
  const ids = new Set(entries.map((e) => e.id));
  const unmatched = [...files.keys()].filter((id) => !ids.has(id)).map((id) =>
    files.get(id)!
  );
  const missing = entries.filter((e) => !files.has(e.id)).map((e) => e.id);
  const present = entries.filter((e) => files.has(e.id));
  const sample = (list: string[]) =>
    list.slice(0, 5).map((s) => `'${s}'`).join(", ") +
    (list.length > 5 ? ", …" : "");
  if (present.length === 0) {
    throw new Error(
      `Cannot evaluate predictions as no file in '${predDir}' matches a case of split '${split}' (expected names like '${
        entries[0]!.id
      }.nii.gz'; found ${
        files.size === 0 ? "no NIfTI files" : sample(unmatched)
      })`,
    );
  }
  if (missing.length > 0 && !partial) {
    throw new Error(
      `Cannot evaluate predictions as ${missing.length} of ${entries.length} cases of split '${split}' have no prediction in '${predDir}': ${
        sample(missing)
      } (to evaluate only the predicted cases pass --partial, or { partial: true })`,
    );
  }
  const cases: { image: string; id: string; metrics: CaseMetrics }[] = [];
  for (const entry of present) {
    if (entry.label === undefined) {
      throw new Error(
        `Cannot evaluate predictions as case '${entry.id}' of split '${split}' has no label map in '${ds.path}'`,
      );
    }
    const predPath = `${predDir.replace(/\/+$/, "")}/${files.get(entry.id)!}`;
    const [pred, truth] = await Promise.all([
      readNifti(predPath),
      readNifti(entry.label),
    ]);
    checkSameGrid(pred, truth, { image: predPath, label: entry.label });
    // Undeclared or fractional labels would be scored as nothing, silently.
    checkLabelValues(pred.data, { labels: ds.labels, source: predPath });
    checkLabelValues(truth.data, { labels: ds.labels, source: entry.label });
    const metrics = evaluateLabelMaps(pred.data, truth.data, {
      dims: truth.dims,
      spacing: truth.spacing,
      labels: ds.labels,
    });
    cases.push({ image: entry.image, id: entry.id, metrics });
    options.onCase?.(entry.id, metrics, {
      done: cases.length,
      total: present.length,
    });
  }
  return { summary: summarizeMetrics(cases), missing, unmatched };
}
