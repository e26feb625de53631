/**
 * The `data` part of AGCL for Deno.
 *
 * @module
 */
export {};
