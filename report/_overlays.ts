/**
 * Internal: picks overlay slices from a run directory — its predictions,
 * and the image and truth of the same cases from the run's dataset.
 */
import { join } from "node:path";
import { type CaseEntry, loadDataset } from "../data/dataset.ts";
import { readNifti } from "../data/nifti.ts";
import type { CaptionedSlice } from "./run_report.ts";

/** Slice `z` of a volume, row-major `[ny, nx]`. */
function slice(
  data: ArrayLike<number>,
  nx: number,
  ny: number,
  z: number,
): Float32Array {
  const out = new Float32Array(nx * ny);
  const base = z * nx * ny;
  for (let i = 0; i < nx * ny; i++) out[i] = data[base + i]!;
  return out;
}

/**
 * Up to `max` overlays: for each of the first predicted cases (by name), the
 * axial slice with the most foreground in truth ∪ prediction. Returns `[]`
 * and a reason when the run has no predictions or its dataset is unknown.
 */
export async function overlaysFromRun(
  runDir: string,
  config: Record<string, unknown> | undefined,
  max: number,
): Promise<{ slices: CaptionedSlice[]; reason?: string }> {
  const predDir = join(runDir, "predictions");
  const files: string[] = [];
  try {
    for await (const e of Deno.readDir(predDir)) {
      if (e.isFile && /\.nii(\.gz)?$/.test(e.name)) files.push(e.name);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      return { slices: [], reason: "no predictions/ folder" };
    }
    throw e;
  }
  if (files.length === 0) {
    return { slices: [], reason: "predictions/ is empty" };
  }
  const dataPath = typeof config?.dataPath === "string"
    ? config.dataPath
    : typeof config?.data === "string"
    ? config.data
    : undefined;
  if (!dataPath) return { slices: [], reason: "config.json names no dataset" };
  const ds = await loadDataset(dataPath, { check: false });
  const byId = new Map<string, CaseEntry>();
  for (const e of [...ds.training, ...ds.validation, ...ds.test]) {
    byId.set(e.id, e);
  }
  const slices: CaptionedSlice[] = [];
  for (const name of files.sort()) {
    if (slices.length >= max) break;
    const id = name.replace(/\.nii(\.gz)?$/, "");
    const entry = byId.get(id);
    if (!entry) continue;
    const pred = await readNifti(join(predDir, name));
    const image = await readNifti(entry.image);
    const truth = entry.label ? await readNifti(entry.label) : undefined;
    const [nx, ny, nz] = pred.dims;
    if (
      image.data.length !== pred.data.length ||
      (truth && truth.data.length !== pred.data.length)
    ) {
      continue; // multi-channel image or another grid: not drawn
    }
    let bestZ = 0, best = -1;
    for (let z = 0; z < nz; z++) {
      let count = 0;
      for (let i = z * nx * ny; i < (z + 1) * nx * ny; i++) {
        if (pred.data[i] !== 0 || (truth && truth.data[i] !== 0)) count++;
      }
      if (count > best) [best, bestZ] = [count, z];
    }
    slices.push({
      image: slice(image.data, nx, ny, bestZ),
      pred: slice(pred.data, nx, ny, bestZ),
      truth: truth
        ? slice(truth.data, nx, ny, bestZ)
        : new Float32Array(nx * ny),
      width: nx,
      height: ny,
      caption: `${id}, slice z=${bestZ}${truth ? "" : " (no truth)"}`,
    });
  }
  return slices.length > 0
    ? { slices }
    : { slices, reason: "no prediction matches a dataset case" };
}
