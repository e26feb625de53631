/**
 * The `data` part of AGCL for Deno.
 *
 * @module
 */
export * from "./patch_sampler.ts";
export * from "./augment.ts";
export * from "./batch_stream.ts";
