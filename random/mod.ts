/**
 * Seeded randomness for the whole library. Every sampler, augmentation and
 * initialiser takes a {@linkcode Prng} or a seed to make one from, so the
 * same seed reproduces the same run.
 *
 * @module
 */
export * from "./prng.ts";
