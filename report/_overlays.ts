/**
 * Internal: picks overlay slices from a run directory — its predictions,
 * and the image and truth of the same cases from the run's dataset (a
 * `dataset.json`, or a PASCAL VOC folder).
 *
 * Volumes are reoriented to canonical RAS and shown as axial slices in the
 * radiological convention (viewed from the feet: patient right on the image
 * left, anterior up), whatever the files' own voxel order. VOC photos are
 * shown as photographs (top row first).
 */
import { join } from "node:path";
import { type CaseEntry, loadDataset } from "../data/dataset.ts";
import { readNifti } from "../data/nifti.ts";
import { toCanonical } from "../data/orient.ts";
import { runDataPath } from "../data/run_paths.ts";
import { loadVoc, readVocSample } from "../data/voc.ts";
import type { Volume } from "../data/volume.ts";
import type { CaptionedSlice } from "./run_report.ts";

/** How radiological axial slices are described in captions. */
export const RADIOLOGICAL =
  "axial, radiological view: patient right on image left, anterior up";

/**
 * Axial slice `z` of a canonical (RAS) volume in radiological display
 * order, row-major `[ny, nx]`: display row `r` is canonical `y = ny − 1 − r`
 * (anterior first) and display column `c` is `x = nx − 1 − c` (patient
 * right first), i.e. the canonical slice turned by 180°.
 */
export function radiologicalSlice(
  data: ArrayLike<number>,
  nx: number,
  ny: number,
  z: number,
): Float32Array {
  const out = new Float32Array(nx * ny);
  const base = z * nx * ny;
  for (let r = 0; r < ny; r++) {
    for (let c = 0; c < nx; c++) {
      out[r * nx + c] = data[base + (ny - 1 - r) * nx + (nx - 1 - c)]!;
    }
  }
  return out;
}

/** The axial slice with the most foreground in `a` ∪ `b`. */
function busiestSlice(
  a: ArrayLike<number>,
  b: ArrayLike<number> | undefined,
  dims: [number, number, number],
): number {
  const [nx, ny, nz] = dims;
  let bestZ = 0, best = -1;
  for (let z = 0; z < nz; z++) {
    let count = 0;
    for (let i = z * nx * ny; i < (z + 1) * nx * ny; i++) {
      if ((a[i] !== 0 && a[i] !== 255) || (b && b[i] !== 0 && b[i] !== 255)) {
        count++;
      }
    }
    if (count > best) [best, bestZ] = [count, z];
  }
  return bestZ;
}

function sameGrid(a: Volume, b: Volume): boolean {
  return a.dims.every((d, i) => d === b.dims[i]);
}

/** Prediction files in `predictions/`, sorted, or a reason there are none. */
async function predictionFiles(
  predDir: string,
): Promise<{ files: string[]; reason?: string }> {
  const files: string[] = [];
  try {
    for await (const e of Deno.readDir(predDir)) {
      if (e.isFile && /\.nii(\.gz)?$/.test(e.name)) files.push(e.name);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      return { files, reason: "no predictions/ folder" };
    }
    throw e;
  }
  if (files.length === 0) return { files, reason: "predictions/ is empty" };
  return { files: files.sort() };
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

/** VOC overlays: the photo in grey (Rec. 601 luma), top row first. */
async function vocOverlays(
  root: string,
  predDir: string,
  files: string[],
  max: number,
): Promise<CaptionedSlice[]> {
  const voc = await loadVoc(root);
  const slices: CaptionedSlice[] = [];
  for (const name of files) {
    if (slices.length >= max) break;
    const id = name.replace(/\.nii(\.gz)?$/, "");
    let sample;
    try {
      sample = await readVocSample(voc, id);
    } catch {
      continue; // not an image of this folder
    }
    const { width, height, data } = sample.image;
    const pred = await readNifti(join(predDir, name));
    if (pred.data.length !== width * height) continue;
    const image = new Float32Array(width * height);
    for (let i = 0; i < image.length; i++) {
      image[i] = 0.299 * data[3 * i]! + 0.587 * data[3 * i + 1]! +
        0.114 * data[3 * i + 2]!;
    }
    slices.push({
      image,
      pred: Float32Array.from(pred.data),
      truth: sample.label
        ? Float32Array.from(sample.label.data)
        : new Float32Array(width * height),
      width,
      height,
      caption: `${id}${sample.label ? "" : " (no truth)"}`,
      view: "photograph, top row first",
    });
  }
  return slices;
}

/**
 * Up to `max` overlays: for each of the first predicted cases (by name), the
 * axial slice with the most foreground in truth ∪ prediction, in the
 * radiological convention. Returns `[]` and a reason when the run has no
 * predictions or its dataset is unknown.
 */
export async function overlaysFromRun(
  runDir: string,
  config: Record<string, unknown> | undefined,
  max: number,
): Promise<{ slices: CaptionedSlice[]; reason?: string }> {
  const predDir = join(runDir, "predictions");
  const found = await predictionFiles(predDir);
  if (found.reason) return { slices: [], reason: found.reason };
  const files = found.files;
  const dataPath = runDataPath(runDir, config);
  if (!dataPath) return { slices: [], reason: "config.json names no dataset" };
  if (await isDirectory(dataPath)) {
    const slices = await vocOverlays(dataPath, predDir, files, max);
    return slices.length > 0
      ? { slices }
      : { slices, reason: "no prediction matches a VOC image" };
  }
  const ds = await loadDataset(dataPath, { check: false });
  const byId = new Map<string, CaseEntry>();
  for (const e of [...ds.training, ...ds.validation, ...ds.test]) {
    byId.set(e.id, e);
  }
  const slices: CaptionedSlice[] = [];
  for (const name of files) {
    if (slices.length >= max) break;
    const id = name.replace(/\.nii(\.gz)?$/, "");
    const entry = byId.get(id);
    if (!entry) continue;
    const pred = toCanonical(await readNifti(join(predDir, name)));
    const image = toCanonical(await readNifti(entry.image));
    const truth = entry.label
      ? toCanonical(await readNifti(entry.label))
      : undefined;
    if (!sameGrid(image, pred) || (truth && !sameGrid(truth, pred))) {
      continue; // another grid: not drawn
    }
    const [nx, ny, nz] = pred.dims;
    const z = busiestSlice(pred.data, truth?.data, pred.dims);
    slices.push({
      image: radiologicalSlice(image.data, nx, ny, z),
      pred: radiologicalSlice(pred.data, nx, ny, z),
      truth: truth
        ? radiologicalSlice(truth.data, nx, ny, z)
        : new Float32Array(nx * ny),
      width: nx,
      height: ny,
      caption: `${id}, slice z=${z} of ${nz} (from inferior)${
        truth ? "" : " (no truth)"
      }`,
      view: RADIOLOGICAL,
      sides: { left: "R", right: "L", top: "A", bottom: "P" },
    });
  }
  return slices.length > 0
    ? { slices }
    : { slices, reason: "no prediction matches a dataset case" };
}
