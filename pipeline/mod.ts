/**
 * The `pipeline` part of AGCL for Deno.
 *
 * @module
 */
export {};
