/**
 * The `pipeline` part of AGCL for Deno: configs and presets, the run
 * directory, label fusion, sliding-window inference and the three stages.
 *
 * @module
 */
export * from "./config.ts";
export * from "./run_dir.ts";
export * from "./progress.ts";
export * from "./label_fusion.ts";
export * from "./sliding_window.ts";
export * from "./optim.ts";
export * from "./attention.ts";
