/**
 * Medical Segmentation Decathlon `dataset.json` loading (MONAI's BTCV
 * `dataset_0.json` works unchanged), with an optional per-entry `"domain"`
 * (the paper's modality).
 *
 * @module
 */
import { readNifti, readNiftiHeader } from "./nifti.ts";
import { affinesAgree } from "./_affine.ts";
import type { Volume, VoxelArray } from "./volume.ts";

/** One case of a dataset; paths are absolute. */
export interface CaseEntry {
  /** File base name of the image without `.nii`/`.nii.gz`. */
  id: string;
  /** Absolute path of the image. */
  image: string;
  /** Absolute path of the label map, when the case has one. */
  label?: string;
  /** The case's domain (modality); the dataset default when absent. */
  domain: string;
}

/** A loaded `dataset.json`. */
export interface Dataset {
  /** `name` from the json (or the folder name). */
  name: string;
  /** Absolute path of the json file. */
  path: string;
  /** Label value → name, e.g. `{0: "background", 1: "spleen"}`. */
  labels: Record<number, string>;
  /** Domains in order of first appearance (training, validation, test). */
  domains: string[];
  /** Cases with labels for training. */
  training: CaseEntry[];
  /** Cases with labels for validation (empty when the json has none). */
  validation: CaseEntry[];
  /** Cases to predict (labels usually absent). */
  test: CaseEntry[];
}

/** Options for {@linkcode loadDataset}. */
export interface LoadDatasetOptions {
  /**
   * Read every image and label header (not the voxels) to check the files
   * exist, are valid NIfTI, and that each image and its label share dims
   * and affine.
   * @default {true}
   */
  check?: boolean;
}

function fail(path: string, problem: string): never {
  throw new Error(`Cannot load dataset '${path}' as ${problem}`);
}

function dirname(p: string): string {
  const i = p.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : p.slice(0, i);
}

function resolvePath(base: string, rel: string): string {
  const joined = rel.startsWith("/") ? rel : `${base}/${rel}`;
  const out: string[] = [];
  for (const part of joined.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") out.pop();
    else out.push(part);
  }
  return "/" + out.join("/");
}

function absolute(p: string): string {
  return p.startsWith("/") ? resolvePath("/", p) : resolvePath(Deno.cwd(), p);
}

/** File base name without `.nii`/`.nii.gz`. */
export function caseId(path: string): string {
  const base = path.slice(path.lastIndexOf("/") + 1);
  return base.replace(/\.nii(\.gz)?$/, "");
}

function parseLabels(path: string, raw: unknown): Record<number, string> {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    fail(path, `'labels' must be an object such as {"0": "background"}`);
  }
  const out: Record<number, string> = {};
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    // MSD style {"0": "background"} or nnU-Net v2 style {"background": 0}
    if (/^\d+$/.test(k) && typeof v === "string") out[Number(k)] = v;
    else if (typeof v === "number" && Number.isInteger(v) && v >= 0) {
      out[v] = k;
    } else {
      fail(
        path,
        `'labels' entry ${JSON.stringify(k)}: ${
          JSON.stringify(v)
        } is neither "<int>": "<name>" nor "<name>": <int>`,
      );
    }
  }
  if (Object.keys(out).length === 0) fail(path, `'labels' is empty`);
  return out;
}

function parseList(
  path: string,
  json: Record<string, unknown>,
  key: "training" | "validation" | "test",
  defaultDomain: string,
): CaseEntry[] {
  const raw = json[key];
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) fail(path, `'${key}' must be a list`);
  const base = dirname(path);
  return raw.map((item: unknown, i: number) => {
    let image: unknown, label: unknown, domain: unknown;
    if (typeof item === "string") image = item;
    else if (typeof item === "object" && item !== null) {
      ({ image, label, domain } = item as Record<string, unknown>);
    } else {
      fail(path, `'${key}'[${i}] must be a path or an object with 'image'`);
    }
    if (typeof image !== "string" || image === "") {
      fail(path, `'${key}'[${i}] has no 'image' path`);
    }
    if (label !== undefined && typeof label !== "string") {
      fail(path, `'${key}'[${i}].label must be a path string`);
    }
    if (domain !== undefined && (typeof domain !== "string" || domain === "")) {
      fail(path, `'${key}'[${i}].domain must be a non-empty string`);
    }
    if (key !== "test" && label === undefined) {
      fail(path, `'${key}'[${i}] (${image}) has no 'label'`);
    }
    const entry: CaseEntry = {
      id: caseId(image),
      image: resolvePath(base, image),
      domain: (domain as string | undefined) ?? defaultDomain,
    };
    if (typeof label === "string") entry.label = resolvePath(base, label);
    return entry;
  });
}

function formatAffine(a: number[][]): string {
  return `[${
    a.slice(0, 3).map((r) => `[${r.map((v) => +v.toFixed(4)).join(", ")}]`)
      .join(", ")
  }]`;
}

/**
 * Checks that an image and its label map share the voxel grid.
 *
 * @param image Image geometry (a volume or a header's geometry).
 * @param label Label geometry.
 * @param names The two file names, for the message.
 * @throws {Error} Naming both files and both dims or affines on a mismatch.
 */
export function checkSameGrid(
  image: { dims: number[]; affine: number[][] },
  label: { dims: number[]; affine: number[][] },
  names: { image: string; label: string },
): void {
  if (image.dims.some((d, i) => d !== label.dims[i])) {
    throw new Error(
      `Image '${names.image}' and label '${names.label}' have different grids: dims [${image.dims}] vs [${label.dims}]`,
    );
  }
  // 1e-4: files from different writers round the same affine differently.
  if (!affinesAgree(image.affine, label.affine, 1e-4)) {
    throw new Error(
      `Image '${names.image}' and label '${names.label}' have different affines: ${
        formatAffine(image.affine)
      } vs ${formatAffine(label.affine)}`,
    );
  }
}

async function checkEntries(entries: CaseEntry[]): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < entries.length) {
      const e = entries[next++]!;
      const img = await readNiftiHeader(e.image);
      if (e.label !== undefined) {
        const lab = await readNiftiHeader(e.label);
        checkSameGrid(img, lab, { image: e.image, label: e.label });
      }
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
}

/**
 * Loads a Decathlon `dataset.json`: `labels`, the `training`, `validation`
 * and `test` lists (test entries as paths or `{image}` objects), and each
 * entry's optional `"domain"` (default: `modality["0"]`, else `"default"`).
 * Relative paths resolve against the json file's folder.
 *
 * By default every header is read (not the voxels) to check the files and
 * that each image and label share dims and affine. Label values are
 * checked against `labels` when a label map is read ({@linkcode loadCase}).
 *
 * @example Usage
 * ```ts
 * import { loadDataset, makePhantom } from "@agcl/agcl/data";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const ds = await loadDataset(
 *   await makePhantom({ dir, cases: 2, size: [32, 32, 8], seed: 1 }),
 * );
 * assert.equal(ds.training.length + ds.validation.length, 2);
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @param path The `dataset.json` file.
 * @param options Whether to check the headers.
 * @returns The dataset, with absolute paths.
 * @throws {Error} Naming the file when it is missing, not JSON, malformed,
 * has duplicate case ids, or (with `check`) when a case file is missing,
 * not NIfTI, or its image and label grids differ.
 */
export async function loadDataset(
  path: string,
  options: LoadDatasetOptions = {},
): Promise<Dataset> {
  const { check = true } = options;
  const abs = absolute(path);
  let text: string;
  try {
    text = await Deno.readTextFile(abs);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) fail(abs, "it does not exist");
    fail(abs, `it cannot be read: ${e instanceof Error ? e.message : e}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    fail(abs, `it is not valid JSON: ${e instanceof Error ? e.message : e}`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    fail(abs, "it is not a JSON object");
  }
  const obj = json as Record<string, unknown>;
  const labels = parseLabels(abs, obj.labels);
  const modality = obj.modality as Record<string, unknown> | undefined;
  const defaultDomain = typeof modality?.["0"] === "string"
    ? modality["0"] as string
    : "default";
  const training = parseList(abs, obj, "training", defaultDomain);
  const validation = parseList(abs, obj, "validation", defaultDomain);
  const test = parseList(abs, obj, "test", defaultDomain);
  if (training.length + validation.length + test.length === 0) {
    fail(abs, "it lists no cases in 'training', 'validation' or 'test'");
  }
  const seen = new Map<string, string>();
  const domains: string[] = [];
  for (const e of [...training, ...validation, ...test]) {
    const prev = seen.get(e.id);
    if (prev !== undefined && prev !== e.image) {
      fail(abs, `two cases share the id '${e.id}': '${prev}' and '${e.image}'`);
    }
    seen.set(e.id, e.image);
    if (!domains.includes(e.domain)) domains.push(e.domain);
  }
  if (check) await checkEntries([...training, ...validation, ...test]);
  const name = typeof obj.name === "string"
    ? obj.name
    : dirname(abs).slice(dirname(abs).lastIndexOf("/") + 1);
  return { name, path: abs, labels, domains, training, validation, test };
}

/** Options of {@linkcode checkLabelValues}. */
export interface CheckLabelValuesOptions {
  /** Declared label values → names. */
  labels: Record<number, string>;
  /** The file, for the message. */
  source: string;
}

/**
 * Checks that every value of a label map is declared in `labels`.
 *
 * @param data Label voxels.
 * @param options The declared labels and the file they came from.
 * @throws {Error} Listing the undeclared values and their voxel counts.
 */
export function checkLabelValues(
  data: VoxelArray,
  options: CheckLabelValuesOptions,
): void {
  const { labels, source } = options;
  const declared = new Set(Object.keys(labels).map(Number));
  const bad = new Map<number, number>();
  let last = NaN;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v === last) continue;
    if (!declared.has(v)) bad.set(v, (bad.get(v) ?? 0) + 1);
    else last = v;
  }
  if (bad.size > 0) {
    // recount exactly (the run-length shortcut above skips repeats)
    for (const k of bad.keys()) bad.set(k, 0);
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      if (bad.has(v)) bad.set(v, bad.get(v)! + 1);
    }
    const list = [...bad.entries()].sort((a, b) => a[0] - b[0]).slice(0, 10)
      .map(([v, n]) => `${v} (${n} voxels)`).join(", ");
    throw new Error(
      `Label map '${source}' has values not declared in dataset.json 'labels' (${
        [...declared].sort((a, b) => a - b).join(", ")
      }): ${list}`,
    );
  }
}

/** One case read from disk. */
export interface LoadedCase {
  /** The entry it came from. */
  entry: CaseEntry;
  /** The image volume. */
  image: Volume;
  /** The label map, when the entry has one. */
  label?: Volume;
}

/**
 * Reads one case's image and label, and checks that they share dims and
 * affine and that the label values are declared in the dataset's `labels`.
 *
 * @param entry A case of {@linkcode loadDataset}'s result.
 * @param dataset The dataset (for its `labels`).
 * @returns The image and label volumes.
 * @throws {Error} As {@linkcode readNifti}; on a grid mismatch; on
 * undeclared label values.
 */
export async function loadCase(
  entry: CaseEntry,
  dataset: Pick<Dataset, "labels">,
): Promise<LoadedCase> {
  const image = await readNifti(entry.image);
  if (entry.label === undefined) return { entry, image };
  const label = await readNifti(entry.label);
  checkSameGrid(image, label, { image: entry.image, label: entry.label });
  checkLabelValues(label.data, {
    labels: dataset.labels,
    source: entry.label,
  });
  return { entry, image, label };
}
