/**
 * AGCL for Deno: attention-guided supervised contrastive learning for
 * semantic segmentation (Lee et al.), all three stages, on TensorFlow.js.
 *
 * - `losses`: NT-Xent, supervised and modal-target contrastive, Dice.
 * - `models`: ResNet encoders, the paper's ASPP/DeepLab head, checkpoints.
 * - `data`: NIfTI, `dataset.json`, preprocessing, patches, augmentation.
 * - `metrics`: Dice, HD95, mean surface distance.
 * - `pipeline`: the three stages, label fusion, volume inference.
 * - `backends`: `cpu`, `wasm` and `webgpu`, selected with fallback.
 * - `random`: the seeded generator everything random uses.
 *
 * @module
 */
export * from "./backends/mod.ts";
export * from "./random/mod.ts";
export * from "./losses/mod.ts";
export * from "./models/mod.ts";
export * from "./data/mod.ts";
export * from "./metrics/mod.ts";
export * from "./pipeline/mod.ts";
