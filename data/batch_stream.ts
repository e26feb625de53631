/**
 * Seeded, shuffled, optionally balanced streams of augmented patch batches
 * for contrastive pre-training (paper sections 3.1–3.2). Each batch is cut
 * and augmented from the in-memory volumes when asked for, carries the
 * `(domain, target)` ids the contrastive losses need, and the stream's whole
 * position can be saved and restored to resume exactly.
 *
 * @module
 */
import { Prng, type PrngState } from "../random/prng.ts";
import {
  type AugmentOptions,
  resolveAugmentOptions,
  type ResolvedAugmentOptions,
  sampleViewTransform,
  type ViewTransform,
} from "./augment.ts";
import type { PatchIndex, SamplingCase } from "./patch_sampler.ts";
import { positiveInt } from "../_checks.ts";
import { validateSamplingCase } from "./_patch_validate.ts";
import { renderView } from "./_render.ts";

/**
 * How samples are drawn: `"none"` shuffles all records; the others first pick
 * a group uniformly at random (a target, a domain, or a (domain, target)
 * pair), then the next record of that group's own shuffled order.
 */
export type Balance = "none" | "target" | "domain" | "domain-target";

const BALANCES: readonly Balance[] = [
  "none",
  "target",
  "domain",
  "domain-target",
];

/** Options for {@linkcode BatchStream}. */
export interface BatchStreamOptions {
  /** Patches per batch (the paper's 4). @default {4} */
  batchSize?: number;
  /** Augmented views per patch. @default {2} */
  views?: number;
  /** Seed of the shuffles, group choices and augmentations. @default {0} */
  seed?: number;
  /** Balancing of targets and/or domains. @default {"none"} */
  balance?: Balance;
  /**
   * With balancing, consecutive samples of a batch drawn from one group
   * (the batch's last run may be shorter): 2 or more gives every patch of a
   * batch another patch of its group, i.e. every anchor of a supervised
   * contrastive loss a positive besides its own twin view. @default {1}
   */
  groupSize?: number;
  /**
   * Pairwise augmentation of each view; `false` makes every view an exact
   * copy of the cut patch (e.g. for segmentation training). @default {{}} (all transforms on)
   */
  augment?: AugmentOptions | false;
  /** Drop the last, smaller batch of each epoch. @default {false} */
  dropLast?: boolean;
}

/** Where one patch of a batch came from. */
export interface PatchProvenance {
  /** Case id. */
  caseId: string;
  /** Axial slice. */
  slice: number;
  /** Centre row. */
  cy: number;
  /** Centre column. */
  cx: number;
}

/** One batch of augmented patches. */
export interface PatchBatch {
  /** Patches in the batch. */
  size: number;
  /** Views per patch. */
  views: number;
  /** Side of the square patches. */
  patchSize: number;
  /** Channels of `x`: the image channels, then the attention. */
  channels: number;
  /** `[size, views, patchSize, patchSize, channels]`: image channels, then the binary attention (0/1). */
  x: Float32Array;
  /** `[size, views, patchSize, patchSize]`: binary label of the patch's target. */
  y: Uint8Array;
  /** `[size]` target id of each patch. */
  target: Int32Array;
  /** `[size]` domain index of each patch. */
  domain: Int32Array;
  /** `size` entries: case, slice and centre of each patch. */
  provenance: PatchProvenance[];
}

/** The saved position of a {@linkcode BatchStream}, JSON-serialisable. */
export interface BatchStreamState {
  /** Format version (1). */
  version: 1;
  /** The stream's seed. */
  seed: number;
  /** The stream's balancing. */
  balance: Balance;
  /** The stream's group size (absent = 1). */
  groupSize?: number;
  /** The stream's batch size. */
  batchSize: number;
  /** The stream's views per patch. */
  views: number;
  /** Number of records of the index. */
  records: number;
  /** Hash of the index's records, to refuse restoring into another index. */
  fingerprint: number;
  /** Completed epochs. */
  epoch: number;
  /** Batches already drawn in the current epoch. */
  batchInEpoch: number;
  /** Per group: `[cycle, cursor]` into its shuffled order. */
  groups: [number, number][];
  /** State of the generator for group choices and augmentation. */
  prng: PrngState;
}

// Seeds of a group's shuffle in a given cycle: a 32-bit integer hash.
function mixSeed(seed: number, group: number, cycle: number): number {
  let h = (seed >>> 0) ^
    Math.imul(Math.floor(seed / 0x100000000) | 0, 0x9e3779b1);
  h = Math.imul(h ^ Math.imul(group + 1, 0x85ebca6b), 0xc2b2ae35);
  h ^= h >>> 15;
  h = Math.imul(h ^ Math.imul(cycle + 1, 0x27d4eb2f), 0x165667b1);
  h ^= h >>> 13;
  return h >>> 0;
}

function fingerprintOf(index: PatchIndex): number {
  let h = 0x811c9dc5 ^ index.patchSize;
  const add = (v: number) => {
    h = Math.imul(h ^ (v & 0xffff), 0x01000193);
    h = Math.imul(h ^ (v >>> 16), 0x01000193);
  };
  for (const r of index.records) {
    add(r.caseIndex);
    add(r.slice);
    add(r.target);
    add(r.cy);
    add(r.cx);
  }
  return h >>> 0;
}

/**
 * A seeded stream of augmented patch batches over a {@linkcode PatchIndex}.
 *
 * An epoch is `ceil(records / batchSize)` batches (`floor` with `dropLast`),
 * i.e. as many samples as the index has records. With `balance: "none"` each
 * epoch is a fresh shuffle of all records; with balancing, each sample first
 * picks a group uniformly, then takes the next record of that group's own
 * shuffled order (reshuffled each time it is used up), so rare targets or
 * domains are seen as often as common ones. Each of the `views` views is a
 * fresh draw of the pairwise augmentation ({@linkcode sampleViewTransform}),
 * rendered straight from the volume: nothing but the index stays in memory.
 *
 * {@linkcode BatchStream.getState} returns a JSON-serialisable position;
 * {@linkcode BatchStream.setState} on a stream built from the same index and
 * options continues with exactly the batches the saved one would have given.
 *
 * @example Usage
 * ```ts
 * import { BatchStream, samplePatches } from "@agcl/agcl/data";
 * import assert from "node:assert/strict";
 *
 * const attention = new Uint8Array(16 * 16).fill(1, 64, 192);
 * const cases = [{ id: "a", domain: 0, dims: [16, 16, 1] as [number, number, number],
 *   channels: 1, image: new Float32Array(256), attention }];
 * const index = samplePatches(cases, { perTarget: 6, patchSize: 8 });
 * const stream = new BatchStream(index, cases, { batchSize: 4, seed: 1 });
 * const saved = stream.getState();
 * const batch = stream.next();
 * assert.equal(batch.x.length, 4 * 2 * 8 * 8 * 2); // [size, views, p, p, image + attention]
 * stream.setState(saved);
 * assert.deepEqual(stream.next().x, batch.x);
 * ```
 */
export class BatchStream {
  /** Patches per full batch. */
  readonly batchSize: number;
  /** Views per patch. */
  readonly views: number;
  /** Side of the square patches. */
  readonly patchSize: number;
  /** Channels of a batch's `x` (image channels + attention). */
  readonly channels: number;
  /** Batches per epoch. */
  readonly batchesPerEpoch: number;
  #index: PatchIndex;
  #cases: SamplingCase[];
  #seed: number;
  #balance: Balance;
  #groupSize: number;
  #augment: ResolvedAugmentOptions | null;
  #fingerprint: number;
  #prng: Prng;
  #groups: Uint32Array[]; // members (record numbers) of each group
  #cycle: number[];
  #cursor: number[];
  #order: (Uint32Array | null)[]; // shuffled members for the current cycle
  #epoch = 0;
  #batchInEpoch = 0;
  #inside: Uint8Array;
  #dropLast: boolean;

  /**
   * Creates a stream over `index`, whose records point into `cases`.
   *
   * @param index The index from {@linkcode samplePatches}.
   * @param cases The same cases, in the same order, that built `index`.
   * @param options Batch size, views, seed, balancing, augmentation.
   * @throws {TypeError} If `cases` do not match the index or differ in channels.
   * @throws {RangeError} If an option is out of range or a record lies outside its case.
   * @throws {Error} If the index has no records.
   */
  constructor(
    index: PatchIndex,
    cases: SamplingCase[],
    options: BatchStreamOptions = {},
  ) {
    const {
      batchSize = 4,
      views = 2,
      seed = 0,
      balance = "none",
      groupSize = 1,
      augment = {},
      dropLast = false,
    } = options;
    const fn = "create BatchStream";
    positiveInt(batchSize, "batchSize", fn);
    positiveInt(views, "views", fn);
    positiveInt(groupSize, "groupSize", fn);
    if (!Number.isFinite(seed)) {
      throw new RangeError(
        `Cannot ${fn} as 'seed' must be a finite number: current value is ${seed}`,
      );
    }
    if (!BALANCES.includes(balance)) {
      throw new RangeError(
        `Cannot ${fn} as 'balance' must be one of ${
          BALANCES.map((b) => `"${b}"`).join(", ")
        }: current value is "${balance}"`,
      );
    }
    const n = index.records.length;
    if (n === 0) {
      throw new Error(`Cannot ${fn} as the index has no records`);
    }
    if (
      cases.length !== index.caseIds.length ||
      cases.some((c, i) => c.id !== index.caseIds[i])
    ) {
      throw new TypeError(
        `Cannot ${fn} as 'cases' must be the cases the index was built from: expected ids [${index.caseIds}], found [${
          cases.map((c) => c.id)
        }]`,
      );
    }
    cases.forEach((c) => validateSamplingCase(c, fn));
    const ch = cases[0]!.channels;
    const odd = cases.find((c) => c.channels !== ch);
    if (odd) {
      throw new TypeError(
        `Cannot ${fn} as every case must have the same 'channels': case '${
          cases[0]!.id
        }' has ${ch}, case '${odd.id}' has ${odd.channels}`,
      );
    }
    for (const r of index.records) {
      const c = cases[r.caseIndex];
      if (
        !c || !(r.slice >= 0 && r.slice < c.dims[2] && r.cy >= 0 &&
          r.cy < c.dims[1] && r.cx >= 0 && r.cx < c.dims[0])
      ) {
        throw new RangeError(
          `Cannot ${fn} as record (case ${r.caseIndex}, slice ${r.slice}, cy ${r.cy}, cx ${r.cx}) lies outside its case`,
        );
      }
    }
    this.batchSize = batchSize;
    this.views = views;
    this.patchSize = index.patchSize;
    this.channels = ch + 1;
    this.batchesPerEpoch = dropLast
      ? Math.max(1, Math.floor(n / batchSize))
      : Math.ceil(n / batchSize);
    this.#dropLast = dropLast;
    this.#index = index;
    this.#cases = cases;
    this.#seed = seed;
    this.#balance = balance;
    this.#groupSize = groupSize;
    this.#augment = augment === false ? null : resolveAugmentOptions(augment);
    this.#fingerprint = fingerprintOf(index);
    this.#prng = new Prng(seed);
    this.#groups = groupRecords(index, cases, balance);
    this.#cycle = this.#groups.map(() => 0);
    this.#cursor = this.#groups.map(() => 0);
    this.#order = this.#groups.map(() => null);
    this.#inside = new Uint8Array(index.patchSize * index.patchSize);
  }

  /** Completed epochs. */
  get epoch(): number {
    return this.#epoch;
  }

  /** Batches drawn so far in the current epoch. */
  get batchInEpoch(): number {
    return this.#batchInEpoch;
  }

  /** Number of groups being balanced (1 for `"none"`). */
  get groupCount(): number {
    return this.#groups.length;
  }

  #take(g: number): number {
    let order = this.#order[g];
    if (!order) {
      const members = this.#groups[g]!;
      const rng = new Prng(mixSeed(this.#seed, g, this.#cycle[g]!));
      order = rng.shuffle(members.slice());
      this.#order[g] = order;
    }
    const rec = order[this.#cursor[g]!]!;
    if (++this.#cursor[g]! === order.length) {
      this.#cursor[g] = 0;
      this.#cycle[g]!++;
      this.#order[g] = null;
    }
    return rec;
  }

  /**
   * Returns the next batch, moving to the next epoch after the last batch of
   * this one.
   *
   * @returns The batch: `x` `[size, views, p, p, channels]`, `y` `[size, views, p, p]`,
   * `target` and `domain` `[size]`, and provenance.
   */
  next(): PatchBatch {
    if (this.#batchInEpoch === this.batchesPerEpoch) {
      this.#epoch++;
      this.#batchInEpoch = 0;
    }
    const n = this.#index.records.length;
    const B = this.batchSize;
    const last = this.#batchInEpoch === this.batchesPerEpoch - 1;
    const size = last && !this.#dropLast && n % B !== 0 ? n % B : B;
    this.#batchInEpoch++;
    const p = this.patchSize;
    const V = this.views;
    const C = this.channels;
    const x = new Float32Array(size * V * p * p * C);
    const y = new Uint8Array(size * V * p * p);
    const target = new Int32Array(size);
    const domain = new Int32Array(size);
    const provenance: PatchProvenance[] = [];
    const G = this.#groups.length;
    const identity: ViewTransform = {
      crop: { top: 0, left: 0, height: p, width: p },
      angle: 0,
      flip: false,
    };
    const resolved = this.#augment
      ? { ...this.#augment, patchSize: p, channels: C - 1 }
      : null;
    let g = 0;
    for (let s = 0; s < size; s++) {
      if (G > 1 && s % this.#groupSize === 0) g = this.#prng.int(G);
      const r = this.#index.records[this.#take(g)]!;
      const c = this.#cases[r.caseIndex]!;
      const [nx, ny] = c.dims;
      target[s] = r.target;
      domain[s] = c.domain;
      provenance.push({ caseId: c.id, slice: r.slice, cy: r.cy, cx: r.cx });
      const src = {
        image: c.image,
        attention: c.attention,
        label: c.label,
        nx,
        ny,
        channels: c.channels,
        plane: r.slice * nx * ny,
        target: r.target,
        y0: r.cy - Math.floor(p / 2),
        x0: r.cx - Math.floor(p / 2),
      };
      for (let v = 0; v < V; v++) {
        const t = resolved
          ? sampleViewTransform(this.#prng, resolved)
          : identity;
        const k = s * V + v;
        renderView(src, p, t, {
          x,
          xOff: k * p * p * C,
          xStride: C,
          attentionInX: true,
          att: null,
          attOff: 0,
          y,
          yOff: k * p * p,
        }, this.#inside);
      }
    }
    return {
      size,
      views: V,
      patchSize: p,
      channels: C,
      x,
      y,
      target,
      domain,
      provenance,
    };
  }

  /**
   * Returns the stream's position, JSON-serialisable, for a checkpoint.
   *
   * @returns The state.
   */
  getState(): BatchStreamState {
    return {
      version: 1,
      seed: this.#seed,
      balance: this.#balance,
      ...(this.#groupSize !== 1 ? { groupSize: this.#groupSize } : {}),
      batchSize: this.batchSize,
      views: this.views,
      records: this.#index.records.length,
      fingerprint: this.#fingerprint,
      epoch: this.#epoch,
      batchInEpoch: this.#batchInEpoch,
      groups: this.#groups.map((_, g) => [this.#cycle[g]!, this.#cursor[g]!]),
      prng: this.#prng.getState(),
    };
  }

  /**
   * Restores a position saved by {@linkcode BatchStream.getState}; the next
   * batches are those the saved stream would have given.
   *
   * @param state A state from a stream over the same index with the same options.
   * @throws {TypeError} If the state is malformed or from another index or options.
   */
  setState(state: BatchStreamState): void {
    const fn = "restore BatchStream";
    const expect: [string, unknown, unknown][] = [
      ["version", state?.version, 1],
      ["seed", state?.seed, this.#seed],
      ["balance", state?.balance, this.#balance],
      ["groupSize", state?.groupSize ?? 1, this.#groupSize],
      ["batchSize", state?.batchSize, this.batchSize],
      ["views", state?.views, this.views],
      ["records", state?.records, this.#index.records.length],
      ["fingerprint", state?.fingerprint, this.#fingerprint],
    ];
    for (const [name, got, want] of expect) {
      if (got !== want) {
        throw new TypeError(
          `Cannot ${fn} as the state's '${name}' must be ${
            JSON.stringify(want)
          } to match this stream: current value is ${JSON.stringify(got)}`,
        );
      }
    }
    const groups = state.groups;
    if (
      !Array.isArray(groups) || groups.length !== this.#groups.length ||
      !groups.every((gc, g) =>
        Array.isArray(gc) && Number.isInteger(gc[0]) && gc[0] >= 0 &&
        Number.isInteger(gc[1]) && gc[1] >= 0 &&
        gc[1] < this.#groups[g]!.length
      ) ||
      !Number.isInteger(state.epoch) || state.epoch < 0 ||
      !Number.isInteger(state.batchInEpoch) || state.batchInEpoch < 0 ||
      state.batchInEpoch > this.batchesPerEpoch
    ) {
      throw new TypeError(
        `Cannot ${fn} as the state's 'groups', 'epoch' or 'batchInEpoch' are malformed for ${this.#groups.length} group(s) and ${this.batchesPerEpoch} batches per epoch`,
      );
    }
    this.#prng.setState(state.prng);
    this.#epoch = state.epoch;
    this.#batchInEpoch = state.batchInEpoch;
    groups.forEach(([cycle, cursor], g) => {
      if (this.#cycle[g] !== cycle) this.#order[g] = null;
      this.#cycle[g] = cycle;
      this.#cursor[g] = cursor;
    });
  }
}

function groupRecords(
  index: PatchIndex,
  cases: SamplingCase[],
  balance: Balance,
): Uint32Array[] {
  const n = index.records.length;
  if (balance === "none") return [Uint32Array.from({ length: n }, (_, i) => i)];
  const keyOf = (i: number): string => {
    const r = index.records[i]!;
    const d = cases[r.caseIndex]!.domain;
    return balance === "target"
      ? String(r.target)
      : balance === "domain"
      ? String(d)
      : `${d}:${r.target}`;
  };
  const byKey = new Map<string, number[]>();
  for (let i = 0; i < n; i++) {
    const k = keyOf(i);
    let list = byKey.get(k);
    if (!list) byKey.set(k, list = []);
    list.push(i);
  }
  // Numeric key order, so group numbers do not depend on record order.
  const keys = [...byKey.keys()].sort((a, b) => {
    const [a0, a1 = 0] = a.split(":").map(Number);
    const [b0, b1 = 0] = b.split(":").map(Number);
    return a0! - b0! || a1 - b1;
  });
  return keys.map((k) => Uint32Array.from(byKey.get(k)!));
}
