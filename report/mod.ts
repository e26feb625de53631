/**
 * Reports a researcher reads: Vega-Lite figures rendered headlessly to SVG
 * and PNG (loss curves, Dice box plots, UMAP embedding maps, temperature
 * sweep), image/prediction/truth overlays, and the HTML page of one run or
 * of an ablation.
 *
 * @module
 */
export * from "./figures.ts";
export * from "./embedding.ts";
export * from "./overlay.ts";
export * from "./run_report.ts";
export * from "./ablation_report.ts";
export * from "./compare_report.ts";
export * from "./ablation_table.ts";
