/**
 * A small, fast, seeded pseudo-random generator (xoshiro128**, seeded by
 * SplitMix32) whose state can be saved in a checkpoint and restored, and
 * which can be forked into independent child streams.
 *
 * @module
 */

/** The saved state of a {@linkcode Prng}: four unsigned 32-bit words. */
export type PrngState = [number, number, number, number];

function splitMix32(seed: number): () => number {
  let s = seed >>> 0;
  return function next(): number {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/**
 * Seeded generator used for everything random in the library: weight
 * initialisation, patch sampling, augmentation and batch shuffling.
 *
 * The same seed always gives the same sequence, on every platform.
 *
 * @example Usage
 * ```ts
 * import { Prng } from "@agcl/agcl/random";
 * import assert from "node:assert/strict";
 *
 * const a = new Prng(42);
 * const b = new Prng(42);
 * assert.equal(a.next(), b.next());
 * const saved = a.getState();
 * const x = a.next();
 * a.setState(saved);
 * assert.equal(a.next(), x);
 * ```
 */
export class Prng {
  #s: Uint32Array = new Uint32Array(4);

  /**
   * Creates a generator from an integer seed.
   *
   * @param seed Any finite number; its low 32 bits and high bits are mixed in.
   * @throws {RangeError} If `seed` is not a finite number.
   */
  constructor(seed: number) {
    if (!Number.isFinite(seed)) {
      throw new RangeError(
        `Cannot create Prng as 'seed' must be a finite number: current value is ${seed}`,
      );
    }
    const hi = Math.floor(seed / 0x100000000) >>> 0;
    const sm = splitMix32((seed >>> 0) ^ Math.imul(hi, 0x27d4eb2d));
    for (let i = 0; i < 4; i++) this.#s[i] = sm();
    if ((this.#s[0]! | this.#s[1]! | this.#s[2]! | this.#s[3]!) === 0) {
      this.#s[0] = 1; // the all-zero state is a fixed point of xoshiro
    }
  }

  /** Returns the next unsigned 32-bit integer. */
  nextUint32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1]! << 9) >>> 0;
    s[2] = s[2]! ^ s[0]!;
    s[3] = s[3]! ^ s[1]!;
    s[1] = s[1]! ^ s[2]!;
    s[0] = s[0]! ^ s[3]!;
    s[2] = s[2]! ^ t;
    s[3] = rotl(s[3]!, 11);
    return result;
  }

  /** Returns a uniform number in `[0, 1)` with 32 bits of resolution. */
  next(): number {
    return this.nextUint32() / 0x100000000;
  }

  /**
   * Returns a uniform number in `[low, high)`.
   *
   * @param low Inclusive lower bound.
   * @param high Exclusive upper bound.
   */
  uniform(low: number, high: number): number {
    return low + (high - low) * this.next();
  }

  /**
   * Returns a uniform integer in `[0, n)`, without modulo bias.
   *
   * @param n Exclusive upper bound, a positive integer up to 2^32.
   * @throws {RangeError} If `n` is not a positive integer.
   */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 0x100000000) {
      throw new RangeError(
        `Cannot draw Prng.int as 'n' must be an integer in [1, 2^32]: current value is ${n}`,
      );
    }
    // Rejection sampling keeps every value equally likely.
    const limit = 0x100000000 - (0x100000000 % n);
    let x = this.nextUint32();
    while (x >= limit) x = this.nextUint32();
    return x % n;
  }

  /** Returns a standard normal sample (Box-Muller). */
  normal(): number {
    let u = this.next();
    while (u === 0) u = this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /**
   * Shuffles `array` in place (Fisher-Yates) and returns it.
   *
   * @param array The array (or typed array) to shuffle.
   */
  shuffle<A extends { length: number; [index: number]: unknown }>(
    array: A,
  ): A {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = array[i];
      array[i] = array[j];
      array[j] = tmp;
    }
    return array;
  }

  /** Returns the state, to store in a checkpoint. */
  getState(): PrngState {
    return [this.#s[0]!, this.#s[1]!, this.#s[2]!, this.#s[3]!];
  }

  /**
   * Restores a state returned by {@linkcode Prng.getState}.
   *
   * @param state Four unsigned 32-bit integers, not all zero.
   * @throws {TypeError} If `state` is not four unsigned 32-bit integers.
   */
  setState(state: readonly number[]): void {
    if (
      state.length !== 4 ||
      !state.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffffffff) ||
      state.every((w) => w === 0)
    ) {
      throw new TypeError(
        `Cannot restore Prng as 'state' must be 4 unsigned 32-bit integers, not all zero: current value is [${state}]`,
      );
    }
    for (let i = 0; i < 4; i++) this.#s[i] = state[i]!;
  }
}
