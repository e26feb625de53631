/**
 * The `pipeline` part of AGCL for Deno.
 *
 * @module
 */
export * from "./config.ts";
export * from "./budget.ts";
export * from "./run_dir.ts";
export * from "./progress.ts";
export * from "./label_fusion.ts";
export * from "./sliding_window.ts";
export * from "./optim.ts";
export * from "./attention.ts";
export {
  type Coverage,
  type CoverageScores,
  formatMetricsTable,
  formatStageTable,
  underTrainedWarnings,
} from "./evaluate.ts";
export * from "./run.ts";
export * from "./ablation.ts";
export * from "./environment.ts";
export * from "./predict.ts";
export * from "./evaluate_files.ts";
export {
  downsampleSlices,
  resolveCoarseFlip,
  type ResolveCoarseFlipOptions,
  resolveCoarseTta,
  resolveJitter,
  type SliceSource,
} from "./coarse.ts";
export { crossfitFolds } from "./stage1.ts";
