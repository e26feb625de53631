/**
 * Segmentation metrics on plain typed arrays (no tensors): Dice, IoU, VOC
 * mIoU with the 255 ignore label, an exact anisotropic Euclidean distance
 * transform, surface voxels, Hausdorff distance, HD95 and mean symmetric
 * surface distance in mm, per target and per case, and the `metrics.json`
 * summary.
 *
 * @module
 */
export * from "./overlap.ts";
export * from "./distance_transform.ts";
export * from "./surface_distance.ts";
export * from "./evaluate.ts";
export * from "./wilcoxon.ts";
export * from "./separation.ts";
