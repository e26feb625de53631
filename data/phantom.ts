/**
 * The embedded default dataset: a procedural abdominal CT phantom in
 * Hounsfield units, in two domains (contrast-enhanced portal-venous and
 * non-contrast), written as NIfTI with a Decathlon `dataset.json` so that
 * the default run goes through the same loaders as real data.
 *
 * @module
 */
import { Prng } from "../random/prng.ts";
import { writeNifti } from "./nifti.ts";
import { fromCanonical } from "./orient.ts";
import { writeFileAtomic } from "./_io.ts";
import type { Volume } from "./volume.ts";

/** Bumped whenever the generator's output changes (invalidates caches). */
const GENERATOR_VERSION = 1;

/** Label values of the phantom (BTCV's order, without the organs it lacks). */
export const PHANTOM_LABELS: Readonly<Record<number, string>> = Object.freeze({
  0: "background",
  1: "spleen",
  2: "kidney_right",
  3: "kidney_left",
  4: "gallbladder",
  5: "liver",
  6: "stomach",
  7: "aorta",
  8: "ivc",
  9: "pancreas",
});

/** The phantom's two domains. */
export const PHANTOM_DOMAINS: readonly ["portal-venous", "non-contrast"] =
  Object.freeze(["portal-venous", "non-contrast"] as const);

/** Options for {@linkcode makePhantom}. */
export interface PhantomOptions {
  /**
   * Folder to write into. Default: `agcl/phantom-v<version>-seed<seed>-n<cases>-<nx>x<ny>x<nz>`
   * under `$XDG_CACHE_HOME` or `~/.cache` (else `./.runs`).
   */
  dir?: string;
  /** Number of cases (even indices portal-venous, odd non-contrast). @default {12} */
  cases?: number;
  /** Seed of the generator; the same seed gives the same files. @default {0} */
  seed?: number;
  /** Grid `[nx, ny, nz]` (field of view fixed at 380×380×200 mm). @default {[128, 128, 32]} */
  size?: [number, number, number];
}

type Vec3 = [number, number, number];

/** A smooth random boundary perturbation: sum of 3 plane waves. */
interface Waves {
  k: number[][];
  phase: number[];
  amp: number;
}

function makeWaves(prng: Prng, amp: number, wavelength: number): Waves {
  const k: number[][] = [];
  const phase: number[] = [];
  for (let i = 0; i < 3; i++) {
    const th = prng.uniform(0, 2 * Math.PI);
    const ph = Math.acos(prng.uniform(-1, 1));
    const w = (2 * Math.PI) / (wavelength * prng.uniform(0.7, 1.4));
    k.push([
      w * Math.sin(ph) * Math.cos(th),
      w * Math.sin(ph) * Math.sin(th),
      w * Math.cos(ph),
    ]);
    phase.push(prng.uniform(0, 2 * Math.PI));
  }
  return { k, phase, amp };
}

function waveAt(w: Waves, q: Vec3): number {
  let s = 0;
  for (let i = 0; i < 3; i++) {
    const k = w.k[i]!;
    s += Math.sin(k[0]! * q[0] + k[1]! * q[1] + k[2]! * q[2] + w.phase[i]!);
  }
  return (w.amp * s) / 3;
}

function rotation(ax: number, ay: number, az: number): number[][] {
  const [ca, sa, cb, sb, cc, sc] = [
    Math.cos(ax),
    Math.sin(ax),
    Math.cos(ay),
    Math.sin(ay),
    Math.cos(az),
    Math.sin(az),
  ];
  // Rz · Ry · Rx
  return [
    [cc * cb, cc * sb * sa - sc * ca, cc * sb * ca + sc * sa],
    [sc * cb, sc * sb * sa + cc * ca, sc * sb * ca - cc * sa],
    [-sb, cb * sa, cb * ca],
  ];
}

/** A deformed solid: `radius(q) < 1` inside, about 0 at its centre line. */
interface Shape {
  /** Bounding sphere in the anatomy frame, for an early out. */
  centre: Vec3;
  bound: number;
  /** Normalised radius at anatomy-frame point `q`. */
  radius(q: Vec3): number;
}

function ellipsoid(
  centre: Vec3,
  semi: Vec3,
  rot: number[][],
  waves: Waves,
): Shape {
  // local = rotᵀ (q − centre)
  return {
    centre,
    bound: Math.max(...semi) * (1.01 + waves.amp),
    radius(q: Vec3): number {
      const d0 = q[0] - centre[0], d1 = q[1] - centre[1], d2 = q[2] - centre[2];
      const l0 = (rot[0]![0]! * d0 + rot[1]![0]! * d1 + rot[2]![0]! * d2) /
        semi[0];
      const l1 = (rot[0]![1]! * d0 + rot[1]![1]! * d1 + rot[2]![1]! * d2) /
        semi[1];
      const l2 = (rot[0]![2]! * d0 + rot[1]![2]! * d1 + rot[2]![2]! * d2) /
        semi[2];
      return Math.sqrt(l0 * l0 + l1 * l1 + l2 * l2) - waveAt(waves, q);
    },
  };
}

/** A tube along a polyline, radius interpolated between its points. */
function tube(points: Vec3[], radii: number[], waves: Waves): Shape {
  const lo: Vec3 = [Infinity, Infinity, Infinity];
  const hi: Vec3 = [-Infinity, -Infinity, -Infinity];
  for (const p of points) {
    for (let i = 0; i < 3; i++) {
      lo[i] = Math.min(lo[i]!, p[i]!);
      hi[i] = Math.max(hi[i]!, p[i]!);
    }
  }
  const centre: Vec3 = [0, 1, 2].map((i) => (lo[i]! + hi[i]!) / 2) as Vec3;
  const half = Math.hypot(hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]) / 2;
  return {
    centre,
    bound: half + Math.max(...radii) * (1.01 + waves.amp),
    radius(q: Vec3): number {
      let best = Infinity;
      for (let s = 0; s + 1 < points.length; s++) {
        const a = points[s]!, b = points[s + 1]!;
        const ab = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
        const aq = [q[0] - a[0], q[1] - a[1], q[2] - a[2]];
        const len2 = ab[0]! ** 2 + ab[1]! ** 2 + ab[2]! ** 2;
        let t = (aq[0]! * ab[0]! + aq[1]! * ab[1]! + aq[2]! * ab[2]!) / len2;
        t = t < 0 ? 0 : t > 1 ? 1 : t;
        const d = Math.hypot(
          aq[0]! - t * ab[0]!,
          aq[1]! - t * ab[1]!,
          aq[2]! - t * ab[2]!,
        );
        const r = radii[s]! + t * (radii[s + 1]! - radii[s]!);
        best = Math.min(best, d / r);
      }
      return best - waveAt(waves, q);
    },
  };
}

function inBound(s: Shape, q: Vec3): boolean {
  const d0 = q[0] - s.centre[0],
    d1 = q[1] - s.centre[1],
    d2 = q[2] - s.centre[2];
  return d0 * d0 + d1 * d1 + d2 * d2 < s.bound * s.bound;
}

/** Mean HU per tissue for one domain. */
interface Tissues {
  fat: number;
  muscle: number;
  bone: number;
  cortex: number;
  liver: number;
  spleen: number;
  kidneyCortex: number;
  kidneyMedulla: number;
  aorta: number;
  ivc: number;
  pancreas: number;
  stomachWall: number;
  stomachContent: number;
  gallbladder: number;
  bowel: number;
}

const CONTRAST: Tissues = {
  fat: -100,
  muscle: 55,
  bone: 300,
  cortex: 750,
  liver: 115,
  spleen: 120,
  kidneyCortex: 190,
  kidneyMedulla: 140,
  aorta: 200,
  ivc: 150,
  pancreas: 100,
  stomachWall: 95,
  stomachContent: 15,
  gallbladder: 10,
  bowel: 70,
};

const NON_CONTRAST: Tissues = {
  fat: -100,
  muscle: 50,
  bone: 300,
  cortex: 750,
  liver: 58,
  spleen: 48,
  kidneyCortex: 33,
  kidneyMedulla: 30,
  aorta: 42,
  ivc: 40,
  pancreas: 40,
  stomachWall: 42,
  stomachContent: 12,
  gallbladder: 8,
  bowel: 35,
};

/** Field of view in mm (x, y, z). */
const FOV: Vec3 = [380, 380, 200];

interface CaseImage {
  hu: Int16Array;
  label: Uint8Array;
}

/**
 * Renders one case in the canonical RAS layout (x fastest), in HU.
 * World x runs to the patient's right, y anterior, z superior.
 */
function renderCase(
  prng: Prng,
  size: [number, number, number],
  domain: "portal-venous" | "non-contrast",
): CaseImage {
  const [nx, ny, nz] = size;
  const sp: Vec3 = [FOV[0] / nx, FOV[1] / ny, FOV[2] / nz];
  const base = domain === "portal-venous" ? CONTRAST : NON_CONTRAST;
  // per-case variation: body size, position, rotation, enhancement, noise
  const scale = prng.uniform(0.88, 1.12);
  const aspect = prng.uniform(0.9, 1.1);
  const shift: Vec3 = [
    prng.uniform(-12, 12),
    prng.uniform(-12, 12),
    prng.uniform(-10, 10),
  ];
  const rot = rotation(
    prng.uniform(-0.06, 0.06),
    prng.uniform(-0.04, 0.04),
    prng.uniform(-0.2, 0.2),
  );
  const enhance = prng.uniform(0.85, 1.15);
  const noise = prng.uniform(8, 16);
  const hu = (k: keyof Tissues): number => {
    const nc = NON_CONTRAST[k];
    const v = nc + (base[k] - nc) * enhance;
    return v + prng.uniform(-6, 6);
  };
  const T: Tissues = Object.fromEntries(
    (Object.keys(base) as (keyof Tissues)[]).map((k) => [k, hu(k)]),
  ) as unknown as Tissues;
  const jit = (v: number, f = 0.1) => v * prng.uniform(1 - f, 1 + f);
  const J = (c: Vec3, d = 6): Vec3 =>
    c.map((v) => v + prng.uniform(-d, d)) as Vec3;
  const W = (amp = 0.08, wl = 70) => makeWaves(prng, amp, wl);
  const R = (z: number, y = 0, x = 0) =>
    rotation(
      x + prng.uniform(-0.1, 0.1),
      y + prng.uniform(-0.1, 0.1),
      z + prng.uniform(-0.15, 0.15),
    );

  // body wall and skeleton (anatomy frame, mm)
  const bx = 150 * aspect, by = 105 / aspect;
  const body = ellipsoid(
    [0, 0, 0],
    [bx, by, 1e4],
    rotation(0, 0, 0),
    W(0.02, 120),
  );
  const inner = ellipsoid(
    [0, 2, 0],
    [bx - 22, by - 18, 1e4],
    rotation(0, 0, 0),
    W(0.03, 90),
  );
  const abdomen = ellipsoid(
    [0, 4, 0],
    [bx - 30, by - 26, 1e4],
    rotation(0, 0, 0),
    W(0.03, 90),
  );
  const vertebra = ellipsoid(
    [0, -55, 0],
    [19, 17, 1e4],
    rotation(0, 0, 0),
    W(0.02, 60),
  );
  const lamina = ellipsoid(
    [0, -80, 0],
    [12, 9, 1e4],
    rotation(0, 0, 0),
    W(0.02, 60),
  );
  const psoasL = tube([[-32, -52, 100], [-42, -45, -100]], [10, 19], W(0.05));
  const psoasR = tube([[32, -52, 100], [42, -45, -100]], [10, 19], W(0.05));
  const paraL = ellipsoid(
    [-36, -84, 0],
    [22, 15, 1e4],
    rotation(0, 0, 0),
    W(0.05),
  );
  const paraR = ellipsoid(
    [36, -84, 0],
    [22, 15, 1e4],
    rotation(0, 0, 0),
    W(0.05),
  );

  // organs, painted in this order (later wins)
  const bowel: Shape[] = [];
  const bowelHu: number[] = [];
  const nBowel = 6 + prng.int(6);
  for (let i = 0; i < nBowel; i++) {
    const c: Vec3 = [
      prng.uniform(-90, 90),
      prng.uniform(-10, 70),
      prng.uniform(-100, 10),
    ];
    const r = prng.uniform(14, 26);
    bowel.push(
      ellipsoid(
        c,
        [r, r * prng.uniform(0.7, 1), r * prng.uniform(1, 2.2)],
        R(prng.uniform(0, 3)),
        W(0.1, 50),
      ),
    );
    bowelHu.push(prng.next() < 0.25 ? -700 : T.bowel + prng.uniform(-15, 15));
  }
  const liver = [
    ellipsoid(J([64, 0, 38]), [jit(64), jit(70), jit(58)], R(0.1), W(0.09, 90)),
    ellipsoid(
      J([-2, 34, 48]),
      [jit(46), jit(32), jit(32)],
      R(-0.2),
      W(0.1, 70),
    ),
  ];
  const gall = ellipsoid(
    J([56, 46, -8], 5),
    [jit(15), jit(14), jit(30)],
    R(0, 0.3, -0.4),
    W(0.06, 50),
  );
  const spleen = ellipsoid(
    J([-88, -28, 42]),
    [jit(22), jit(50), jit(44)],
    R(-0.6),
    W(0.1, 60),
  );
  const stomachC = J([-42, 36, 36]);
  const stomachS: Vec3 = [jit(42), jit(30), jit(46)];
  const stomach = ellipsoid(stomachC, stomachS, R(0.35), W(0.1, 80));
  const stomachAir = prng.next() < 0.7;
  const airLevel = stomachC[1] + stomachS[1] * prng.uniform(0.35, 0.6);
  const pancreas = tube(
    [
      J([22, -2, -6], 5),
      J([-8, 10, 0], 5),
      J([-40, 6, 6], 5),
      J([-72, -14, 12], 5),
    ],
    [jit(15), jit(11), jit(10), jit(8)],
    W(0.12, 40),
  );
  const kidneyR = ellipsoid(
    J([68, -50, -30]),
    [jit(26), jit(21), jit(50)],
    R(0.4, -0.2, 0.1),
    W(0.05, 60),
  );
  const kidneyL = ellipsoid(
    J([-68, -50, -18]),
    [jit(26), jit(21), jit(50)],
    R(-0.4, 0.2, 0.1),
    W(0.05, 60),
  );
  const ivc = tube(
    [J([24, -30, -110], 3), J([24, -26, 20], 3), J([30, -18, 85], 3)],
    [jit(12), jit(12), jit(10)],
    W(0.04, 60),
  );
  const aorta = tube(
    [J([-14, -34, -110], 3), J([-12, -32, 0], 3), J([-8, -30, 110], 3)],
    [jit(11, 0.08), jit(11, 0.08), jit(12, 0.08)],
    W(0.02, 80),
  );
  const texture = W(5, 60); // ±5 HU low-frequency texture inside organs

  const hu32 = new Float32Array(nx * ny * nz);
  const label = new Uint8Array(nx * ny * nz);
  // painting order: later wins
  const muscles = [psoasL, psoasR, paraL, paraR];
  const organs: { shape: Shape; value: number; id: number }[] = [
    { shape: liver[0]!, value: T.liver, id: 5 },
    { shape: liver[1]!, value: T.liver, id: 5 },
    { shape: gall, value: T.gallbladder, id: 4 },
    { shape: spleen, value: T.spleen, id: 1 },
    { shape: stomach, value: T.stomachContent, id: 6 },
    { shape: pancreas, value: T.pancreas, id: 9 },
    { shape: kidneyR, value: T.kidneyCortex, id: 2 },
    { shape: kidneyL, value: T.kidneyCortex, id: 3 },
    { shape: ivc, value: T.ivc, id: 8 },
    { shape: aorta, value: T.aorta, id: 7 },
  ];
  const airNoise = Float32Array.from(
    { length: 4096 },
    () => prng.uniform(0, 30),
  );
  const q: Vec3 = [0, 0, 0];
  let idx = 0;
  for (let k = 0; k < nz; k++) {
    const wz = (k - (nz - 1) / 2) * sp[2];
    for (let j = 0; j < ny; j++) {
      const wy = (j - (ny - 1) / 2) * sp[1];
      for (let i = 0; i < nx; i++, idx++) {
        const wx = (i - (nx - 1) / 2) * sp[0];
        // anatomy frame: q = Rᵀ (p − shift) / scale
        const d0 = wx - shift[0], d1 = wy - shift[1], d2 = wz - shift[2];
        q[0] = (rot[0]![0]! * d0 + rot[1]![0]! * d1 + rot[2]![0]! * d2) /
          scale;
        q[1] = (rot[0]![1]! * d0 + rot[1]![1]! * d1 + rot[2]![1]! * d2) /
          scale;
        q[2] = (rot[0]![2]! * d0 + rot[1]![2]! * d1 + rot[2]![2]! * d2) /
          scale;
        let v = -1000;
        let lab = 0;
        // cheap test first: the body's waves move its edge by at most 2%
        const e0 = q[0] / bx, e1 = q[1] / by;
        if (e0 * e0 + e1 * e1 < 1.0404 && body.radius(q) < 1) {
          v = T.fat; // subcutaneous fat
          let visceral = false;
          if (inner.radius(q) < 1) {
            v = T.muscle; // abdominal wall
            if (abdomen.radius(q) < 1) {
              v = T.fat; // visceral fat
              visceral = true;
            }
          }
          for (let m = 0; m < muscles.length; m++) {
            const s = muscles[m]!;
            if (inBound(s, q) && s.radius(q) < 1) v = T.muscle;
          }
          const rv = vertebra.radius(q), rl = lamina.radius(q);
          if (rv < 1 || rl < 1) v = Math.min(rv, rl) > 0.8 ? T.cortex : T.bone;
          if (visceral) {
            for (let b = 0; b < bowel.length; b++) {
              const s = bowel[b]!;
              if (inBound(s, q) && s.radius(q) < 1) v = bowelHu[b]!;
            }
          }
          let rOrgan = Infinity;
          for (let o = 0; o < organs.length; o++) {
            const { shape, value, id } = organs[o]!;
            if (!inBound(shape, q)) continue;
            const r = shape.radius(q);
            if (r < 1) {
              v = value;
              lab = id;
              rOrgan = r;
            }
          }
          if (lab !== 0) {
            if (lab === 6) {
              if (rOrgan > 0.86) v = T.stomachWall;
              else if (stomachAir && q[1] > airLevel) {
                v = -1000 + airNoise[idx & 4095]!;
              }
            } else if ((lab === 2 || lab === 3) && rOrgan < 0.7) {
              v = T.kidneyMedulla;
            }
            if (v > -500) v += waveAt(texture, q);
          }
        }
        hu32[idx] = v;
        label[idx] = lab;
      }
    }
  }
  // partial-volume blur in-plane ([1, 2, 1] / 4 along x then y), then noise
  const tmp = new Float32Array(hu32.length);
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      const row = (k * ny + j) * nx;
      for (let i = 0; i < nx; i++) {
        const a = hu32[row + Math.max(0, i - 1)]!,
          b = hu32[row + i]!,
          c = hu32[row + Math.min(nx - 1, i + 1)]!;
        tmp[row + i] = 0.25 * a + 0.5 * b + 0.25 * c;
      }
    }
  }
  const out = new Int16Array(hu32.length);
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      const row = (k * ny + j) * nx;
      const up = (k * ny + Math.max(0, j - 1)) * nx;
      const dn = (k * ny + Math.min(ny - 1, j + 1)) * nx;
      for (let i = 0; i < nx; i++) {
        const v = 0.25 * tmp[up + i]! + 0.5 * tmp[row + i]! +
          0.25 * tmp[dn + i]! + noise * prng.normal();
        out[row + i] = Math.max(-1024, Math.min(3071, Math.round(v)));
      }
    }
  }
  return { hu: out, label };
}

function defaultDir(
  seed: number,
  cases: number,
  size: [number, number, number],
): string {
  let root: string | undefined;
  try {
    root = Deno.env.get("XDG_CACHE_HOME") ??
      (Deno.env.get("HOME") ? `${Deno.env.get("HOME")}/.cache` : undefined);
  } catch {
    root = undefined; // no env permission
  }
  const name = `phantom-v${GENERATOR_VERSION}-seed${seed}-n${cases}-${
    size.join("x")
  }`;
  return root ? `${root}/agcl/${name}` : `${Deno.cwd()}/.runs/${name}`;
}

interface PhantomStamp {
  version: number;
  seed: number;
  cases: number;
  size: number[];
}

async function isComplete(dir: string, stamp: PhantomStamp): Promise<boolean> {
  try {
    const json = JSON.parse(await Deno.readTextFile(`${dir}/dataset.json`));
    if (JSON.stringify(json.phantom) !== JSON.stringify(stamp)) return false;
    for (const e of [...json.training, ...json.validation]) {
      await Deno.stat(`${dir}/${e.image}`);
      await Deno.stat(`${dir}/${e.label}`);
    }
    return true;
  } catch {
    return false;
  }
}

/**
 * Writes (or finds, when already complete in `dir`) the procedural
 * abdominal CT phantom: `cases` volumes in HU (int16) with label maps of 9
 * organs — spleen, both kidneys, gallbladder, liver, stomach, aorta, IVC,
 * pancreas ({@linkcode PHANTOM_LABELS}) — plus fat, muscle, spine and
 * bowel loops as background. Each case varies in body size, position,
 * rotation, organ shapes, intensities and noise. Even cases are
 * contrast-enhanced (`"portal-venous"`: aorta ≈ 200 HU, enhanced liver,
 * spleen and kidneys), odd cases `"non-contrast"` (organs 30–60 HU).
 * Cases are stored as LPS (like most CT) except every third, stored RAS,
 * so loaders must reorient. The last quarter of the cases form the
 * validation list; entries carry `"domain"`.
 *
 * Deterministic for a seed: case `i` is the same whatever `cases` is.
 *
 * @example Usage
 * ```ts
 * import { makePhantom, loadDataset } from "@agcl/agcl/data";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const json = await makePhantom({ dir, cases: 2, size: [32, 32, 8], seed: 3 });
 * const ds = await loadDataset(json);
 * assert.deepEqual(ds.domains, ["portal-venous", "non-contrast"]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @param options Folder, case count, seed and grid size.
 * @returns The path of the phantom's `dataset.json`.
 * @throws {RangeError} If `cases` is not a positive integer or a size is < 8.
 * @throws {Error} If the folder cannot be written.
 */
export async function makePhantom(
  options: PhantomOptions = {},
): Promise<string> {
  const { cases = 12, seed = 0, size = [128, 128, 32] } = options;
  if (!(Number.isInteger(cases) && cases >= 1 && cases <= 10000)) {
    throw new RangeError(
      `Cannot compute makePhantom as 'cases' must be an integer in [1, 10000]: current value is ${cases}`,
    );
  }
  if (!Number.isFinite(seed)) {
    throw new RangeError(
      `Cannot compute makePhantom as 'seed' must be a finite number: current value is ${seed}`,
    );
  }
  if (
    !Array.isArray(size) || size.length !== 3 ||
    !size.every((s) => Number.isInteger(s) && s >= 8 && s <= 1024)
  ) {
    throw new RangeError(
      `Cannot compute makePhantom as 'size' must be 3 integers in [8, 1024]: current value is [${size}]`,
    );
  }
  const dir = options.dir ?? defaultDir(seed, cases, size);
  const stamp: PhantomStamp = {
    version: GENERATOR_VERSION,
    seed,
    cases,
    size: [...size],
  };
  const jsonPath = `${dir}/dataset.json`;
  if (await isComplete(dir, stamp)) return jsonPath;
  try {
    await Deno.mkdir(`${dir}/imagesTr`, { recursive: true });
    await Deno.mkdir(`${dir}/labelsTr`, { recursive: true });
  } catch (e) {
    throw new Error(
      `Cannot write the phantom into '${dir}': ${
        e instanceof Error ? e.message : e
      }`,
    );
  }
  const master = new Prng(seed);
  const sp = [FOV[0] / size[0], FOV[1] / size[1], FOV[2] / size[2]];
  const nVal = cases >= 2 ? Math.max(1, Math.floor(cases / 4)) : 0;
  const entries: { image: string; label: string; domain: string }[] = [];
  for (let c = 0; c < cases; c++) {
    // one independent stream per case, from the master sequence
    const prng = new Prng(master.nextUint32());
    const domain = PHANTOM_DOMAINS[c % 2]!;
    const { hu, label } = renderCase(prng, size, domain);
    // canonical (RAS) grid centred on the origin
    const ras = [
      [sp[0]!, 0, 0, -((size[0] - 1) / 2) * sp[0]!],
      [0, sp[1]!, 0, -((size[1] - 1) / 2) * sp[1]!],
      [0, 0, sp[2]!, -((size[2] - 1) / 2) * sp[2]!],
      [0, 0, 0, 1],
    ];
    const lps = c % 3 !== 2;
    const affine = lps
      ? [
        [-sp[0]!, 0, 0, ((size[0] - 1) / 2) * sp[0]!],
        [0, -sp[1]!, 0, ((size[1] - 1) / 2) * sp[1]!],
        ras[2]!,
        ras[3]!,
      ]
      : ras;
    const stored: Volume = {
      data: hu,
      dims: [...size],
      spacing: [sp[0]!, sp[1]!, sp[2]!],
      affine,
    };
    const id = `phantom_${String(c).padStart(3, "0")}`;
    const img = { ...stored, data: fromCanonical(hu, stored) };
    const lab = { ...stored, data: fromCanonical(label, stored) };
    await writeNifti(`${dir}/imagesTr/${id}.nii.gz`, img);
    await writeNifti(`${dir}/labelsTr/${id}.nii.gz`, lab);
    entries.push({
      image: `./imagesTr/${id}.nii.gz`,
      label: `./labelsTr/${id}.nii.gz`,
      domain,
    });
  }
  const json = {
    name: "AGCLAbdomenPhantom",
    description:
      "Procedural abdominal CT phantom in HU (AGCL for Deno): 9 organs, two domains (portal-venous contrast-enhanced, non-contrast); every case varies in size, position, rotation, shape, intensity and noise",
    reference: "generated by makePhantom (data/phantom.ts)",
    licence: "MIT",
    release: String(GENERATOR_VERSION),
    tensorImageSize: "3D",
    modality: { "0": "CT" },
    labels: Object.fromEntries(
      Object.entries(PHANTOM_LABELS).map(([k, v]) => [k, v]),
    ),
    numTraining: cases - nVal,
    numTest: 0,
    training: entries.slice(0, cases - nVal),
    validation: entries.slice(cases - nVal),
    test: [],
    phantom: stamp,
  };
  await writeFileAtomic(jsonPath, [
    new TextEncoder().encode(JSON.stringify(json, null, 2) + "\n"),
  ]);
  return jsonPath;
}
