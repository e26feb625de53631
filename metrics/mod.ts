/**
 * The `metrics` part of AGCL for Deno.
 *
 * @module
 */
export {};
