/**
 * The `data` part of AGCL for Deno: NIfTI read/write, Decathlon
 * `dataset.json`, intensity preprocessing, canonical reorientation, the
 * procedural abdominal phantom, and PASCAL VOC images.
 *
 * @module
 */
export * from "./volume.ts";
export * from "./nifti.ts";
export * from "./dataset.ts";
export * from "./preprocess.ts";
export * from "./orient.ts";
export * from "./phantom.ts";
export * from "./patch_sampler.ts";
export * from "./augment.ts";
export * from "./slice_augment.ts";
export * from "./batch_stream.ts";
export * from "./voc.ts";
export * from "./image.ts";
export * from "./run_paths.ts";
