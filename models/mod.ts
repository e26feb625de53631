/**
 * The `models` part of AGCL for Deno.
 *
 * @module
 */
export {};
