/**
 * The `losses` part of AGCL for Deno.
 *
 * @module
 */
export {};
