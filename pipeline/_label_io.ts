/**
 * Label maps of prepared cases on disk: coarse masks read onto a case's
 * canonical grid, and canonical label maps written in the case's original
 * layout, header and affine.
 */
import { join } from "node:path";
import {
  fromCanonical,
  type LabelMap,
  readNifti,
  toCanonical,
  writeNifti,
} from "../data/mod.ts";
import type { PreparedCase } from "./prepare.ts";
import { toLabelMap } from "./_arrays.ts";

/**
 * Reads `<dir>/<case id>.nii.gz` (or `.nii`) onto the case's canonical grid.
 *
 * @throws {Error} When the file is missing or its grid differs from the image's.
 */
export async function readCaseLabels(
  dir: string,
  c: PreparedCase,
): Promise<LabelMap> {
  let path = join(dir, `${c.id}.nii.gz`);
  try {
    await Deno.stat(path);
  } catch {
    path = join(dir, `${c.id}.nii`);
  }
  const v = toCanonical(await readNifti(path));
  if (v.dims.some((d, i) => d !== c.dims[i])) {
    throw new Error(
      `Cannot use coarse mask ${path}: dims [${v.dims}] differ from image ${c.entry.image} [${c.dims}]`,
    );
  }
  return toLabelMap(v.data);
}

/** Writes a canonical label map in the case's original layout, header and affine. */
export async function writeCaseLabels(
  path: string,
  map: LabelMap,
  c: PreparedCase,
): Promise<void> {
  const data = fromCanonical(map, c.original);
  await writeNifti(path, { ...c.original, data }, {
    datatype: map instanceof Int16Array ? "int16" : "uint8",
  });
}
