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

// ---------------------------------------------------------------------------
// Anatomy table. Positions and sizes are in mm in the anatomy frame (x to the
// patient's right, y anterior, z superior, origin mid-abdomen). Each case
// draws its own variation of every entry, in table order (the order fixes
// the random stream, so it must not change without a GENERATOR_VERSION bump).

/** A plane-wave boundary perturbation: amplitude (fraction of the radius) and wavelength (mm). */
type WaveSpec = [amplitude: number, wavelength: number];

/** An ellipsoidal organ part: centre and semi-axes, each jittered per case. */
interface EllipsoidSpec {
  kind: "ellipsoid";
  centre: Vec3;
  /** Per-axis centre jitter, ± mm. @default {6} */
  centreJitter?: number;
  semiAxes: Vec3;
  /** Relative jitter of each semi-axis. @default {0.1} */
  sizeJitter?: number;
  /** Mean rotation about x, y and z (rad), jittered by ±0.1, ±0.1, ±0.15. */
  tilt: Vec3;
  waves: WaveSpec;
}

/** A tubular organ along a polyline, radius interpolated between its points. */
interface TubeSpec {
  kind: "tube";
  points: Vec3[];
  /** Per-axis jitter of each point, ± mm. */
  pointJitter: number;
  radii: number[];
  /** Relative jitter of each radius. @default {0.1} */
  sizeJitter?: number;
  waves: WaveSpec;
}

/** One labelled organ: its parts, its label, its tissue and its inner detail. */
interface OrganSpec {
  label: number;
  tissue: keyof Tissues;
  parts: (EllipsoidSpec | TubeSpec)[];
  /** Tissue of the outer shell beyond this normalised radius (stomach wall). */
  wall?: { beyond: number; tissue: keyof Tissues };
  /** Tissue of the core within this normalised radius (renal medulla). */
  core?: { within: number; tissue: keyof Tissues };
  /** Chance of a gas cap and its level, as a fraction of the y semi-axis above the centre. */
  gas?: { chance: number; level: [number, number] };
}

/** The nine organs, in painting order (later wins where they overlap). */
const ORGANS: readonly OrganSpec[] = [
  {
    label: 5, // liver: right lobe, then left lobe
    tissue: "liver",
    parts: [
      {
        kind: "ellipsoid",
        centre: [64, 0, 38],
        semiAxes: [64, 70, 58],
        tilt: [0, 0, 0.1],
        waves: [0.09, 90],
      },
      {
        kind: "ellipsoid",
        centre: [-2, 34, 48],
        semiAxes: [46, 32, 32],
        tilt: [0, 0, -0.2],
        waves: [0.1, 70],
      },
    ],
  },
  {
    label: 4,
    tissue: "gallbladder",
    parts: [{
      kind: "ellipsoid",
      centre: [56, 46, -8],
      centreJitter: 5,
      semiAxes: [15, 14, 30],
      tilt: [-0.4, 0.3, 0],
      waves: [0.06, 50],
    }],
  },
  {
    label: 1,
    tissue: "spleen",
    parts: [{
      kind: "ellipsoid",
      centre: [-88, -28, 42],
      semiAxes: [22, 50, 44],
      tilt: [0, 0, -0.6],
      waves: [0.1, 60],
    }],
  },
  {
    label: 6,
    tissue: "stomachContent",
    parts: [{
      kind: "ellipsoid",
      centre: [-42, 36, 36],
      semiAxes: [42, 30, 46],
      tilt: [0, 0, 0.35],
      waves: [0.1, 80],
    }],
    wall: { beyond: 0.86, tissue: "stomachWall" },
    gas: { chance: 0.7, level: [0.35, 0.6] },
  },
  {
    label: 9,
    tissue: "pancreas",
    parts: [{
      kind: "tube",
      points: [[22, -2, -6], [-8, 10, 0], [-40, 6, 6], [-72, -14, 12]],
      pointJitter: 5,
      radii: [15, 11, 10, 8],
      waves: [0.12, 40],
    }],
  },
  {
    label: 2,
    tissue: "kidneyCortex",
    parts: [{
      kind: "ellipsoid",
      centre: [68, -50, -30],
      semiAxes: [26, 21, 50],
      tilt: [0.1, -0.2, 0.4],
      waves: [0.05, 60],
    }],
    core: { within: 0.7, tissue: "kidneyMedulla" },
  },
  {
    label: 3,
    tissue: "kidneyCortex",
    parts: [{
      kind: "ellipsoid",
      centre: [-68, -50, -18],
      semiAxes: [26, 21, 50],
      tilt: [0.1, 0.2, -0.4],
      waves: [0.05, 60],
    }],
    core: { within: 0.7, tissue: "kidneyMedulla" },
  },
  {
    label: 8,
    tissue: "ivc",
    parts: [{
      kind: "tube",
      points: [[24, -30, -110], [24, -26, 20], [30, -18, 85]],
      pointJitter: 3,
      radii: [12, 12, 10],
      waves: [0.04, 60],
    }],
  },
  {
    label: 7,
    tissue: "aorta",
    parts: [{
      kind: "tube",
      points: [[-14, -34, -110], [-12, -32, 0], [-8, -30, 110]],
      pointJitter: 3,
      radii: [11, 11, 12],
      sizeJitter: 0.08,
      waves: [0.02, 80],
    }],
  },
];

/** Body half-axes (mm) before the per-case aspect ratio. */
const BODY_SEMI_AXES: [number, number] = [150, 105];

/** Unlabelled bowel loops: how many, where and how large. */
const BOWEL = {
  count: [6, 12] as [number, number],
  centre: [[-90, 90], [-10, 70], [-100, 10]] as [number, number][],
  radius: [14, 26] as [number, number],
  gasChance: 0.25,
  gasHu: -700,
  huJitter: 15,
};

// ---------------------------------------------------------------------------
// Shape functions: one case's draw of the table.

/** Everything random about one case, drawn before any voxel is painted. */
interface CaseAnatomy {
  /** World → anatomy frame: q = Rᵀ (p − shift) / scale. */
  scale: number;
  shift: Vec3;
  rot: number[][];
  /** Standard deviation of the image noise (HU). */
  noise: number;
  tissues: Tissues;
  /** Half-axes of the body outline (mm). */
  bodyAxes: [number, number];
  body: Shape;
  /** Inside the subcutaneous fat: the abdominal wall (muscle). */
  wall: Shape;
  /** Inside the wall: the abdominal cavity (visceral fat). */
  cavity: Shape;
  vertebra: Shape;
  lamina: Shape;
  /** Psoas and paraspinal muscles. */
  muscles: Shape[];
  bowel: { shape: Shape; hu: number }[];
  organs: { shape: Shape; organ: OrganSpec }[];
  /** Gas level (anatomy y, mm) of each organ with a gas cap that has one. */
  gasLevel: Map<OrganSpec, number>;
  /** ±5 HU low-frequency texture inside organs. */
  texture: Waves;
  /** HU above -1000 of gas voxels, indexed by voxel & 4095. */
  gasNoise: Float32Array;
}

/** Per-case tissue HU: the domain's enhancement scaled by `enhance`, ±6 HU. */
function drawTissues(
  prng: Prng,
  domain: "portal-venous" | "non-contrast",
  enhance: number,
): Tissues {
  const base = domain === "portal-venous" ? CONTRAST : NON_CONTRAST;
  const entries = (Object.keys(base) as (keyof Tissues)[]).map((k) => {
    const nc = NON_CONTRAST[k];
    const v = nc + (base[k] - nc) * enhance;
    return [k, v + prng.uniform(-6, 6)];
  });
  return Object.fromEntries(entries) as unknown as Tissues;
}

/** Rotation about x, y, z by `tilt` plus ±0.1, ±0.1, ±0.15 rad. */
function drawTilt(prng: Prng, tilt: Vec3): number[][] {
  return rotation(
    tilt[0] + prng.uniform(-0.1, 0.1),
    tilt[1] + prng.uniform(-0.1, 0.1),
    tilt[2] + prng.uniform(-0.15, 0.15),
  );
}

function drawWaves(prng: Prng, [amp, wavelength]: WaveSpec): Waves {
  return makeWaves(prng, amp, wavelength);
}

function jitterPoint(prng: Prng, p: Vec3, d: number): Vec3 {
  return p.map((v) => v + prng.uniform(-d, d)) as Vec3;
}

function jitterSize(prng: Prng, v: number, f: number): number {
  return v * prng.uniform(1 - f, 1 + f);
}

/** One case's draw of an organ part: its shape, centre and sizes (mm). */
interface DrawnPart {
  shape: Shape;
  /** The drawn centre (ellipsoid) or first point (tube). */
  centre: Vec3;
  /** The drawn semi-axes (ellipsoid) or radii (tube). */
  size: number[];
}

/** Draws an organ part: centre or points, sizes, rotation, waves, in that order. */
function drawPart(prng: Prng, part: EllipsoidSpec | TubeSpec): DrawnPart {
  const f = part.sizeJitter ?? 0.1;
  if (part.kind === "tube") {
    const points = part.points.map((p) =>
      jitterPoint(prng, p, part.pointJitter)
    );
    const radii = part.radii.map((r) => jitterSize(prng, r, f));
    const shape = tube(points, radii, drawWaves(prng, part.waves));
    return { shape, centre: points[0]!, size: radii };
  }
  const centre = jitterPoint(prng, part.centre, part.centreJitter ?? 6);
  const semi = part.semiAxes.map((r) => jitterSize(prng, r, f)) as Vec3;
  const shape = ellipsoid(
    centre,
    semi,
    drawTilt(prng, part.tilt),
    drawWaves(prng, part.waves),
  );
  return { shape, centre, size: semi };
}

/** An upright cylinder-like ellipsoid (1e4 mm along z) of the body frame. */
function column(
  prng: Prng,
  centre: Vec3,
  semi: [number, number],
  waves: WaveSpec,
): Shape {
  return ellipsoid(
    centre,
    [semi[0], semi[1], 1e4],
    rotation(0, 0, 0),
    drawWaves(prng, waves),
  );
}

/** Draws one case: pose, tissues, body wall, skeleton, bowel and organs. */
function drawAnatomy(
  prng: Prng,
  domain: "portal-venous" | "non-contrast",
): CaseAnatomy {
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
  const tissues = drawTissues(prng, domain, enhance);

  // body wall and skeleton
  const bx = BODY_SEMI_AXES[0] * aspect, by = BODY_SEMI_AXES[1] / aspect;
  const body = column(prng, [0, 0, 0], [bx, by], [0.02, 120]);
  const wall = column(prng, [0, 2, 0], [bx - 22, by - 18], [0.03, 90]);
  const cavity = column(prng, [0, 4, 0], [bx - 30, by - 26], [0.03, 90]);
  const vertebra = column(prng, [0, -55, 0], [19, 17], [0.02, 60]);
  const lamina = column(prng, [0, -80, 0], [12, 9], [0.02, 60]);
  const psoas = (side: number) =>
    tube(
      [[32 * side, -52, 100], [42 * side, -45, -100]],
      [10, 19],
      drawWaves(prng, [0.05, 70]),
    );
  const psoasL = psoas(-1), psoasR = psoas(1);
  const paraL = column(prng, [-36, -84, 0], [22, 15], [0.05, 70]);
  const paraR = column(prng, [36, -84, 0], [22, 15], [0.05, 70]);

  const bowel: { shape: Shape; hu: number }[] = [];
  const nBowel = BOWEL.count[0] + prng.int(BOWEL.count[1] - BOWEL.count[0]);
  for (let i = 0; i < nBowel; i++) {
    const c = BOWEL.centre.map(([lo, hi]) => prng.uniform(lo, hi)) as Vec3;
    const r = prng.uniform(BOWEL.radius[0], BOWEL.radius[1]);
    const semi: Vec3 = [r, r * prng.uniform(0.7, 1), r * prng.uniform(1, 2.2)];
    const shape = ellipsoid(
      c,
      semi,
      drawTilt(prng, [0, 0, prng.uniform(0, 3)]),
      drawWaves(prng, [0.1, 50]),
    );
    const hu = prng.next() < BOWEL.gasChance
      ? BOWEL.gasHu
      : tissues.bowel + prng.uniform(-BOWEL.huJitter, BOWEL.huJitter);
    bowel.push({ shape, hu });
  }

  const organs: { shape: Shape; organ: OrganSpec }[] = [];
  const gasLevel = new Map<OrganSpec, number>();
  for (const organ of ORGANS) {
    let last: DrawnPart | undefined;
    for (const part of organ.parts) {
      last = drawPart(prng, part);
      organs.push({ shape: last.shape, organ });
    }
    if (organ.gas && last) {
      // the gas cap's level: above the centre by a fraction of the y size
      const hasGas = prng.next() < organ.gas.chance;
      const level = last.centre[1] +
        last.size[1]! * prng.uniform(organ.gas.level[0], organ.gas.level[1]);
      if (hasGas) gasLevel.set(organ, level);
    }
  }
  const texture = drawWaves(prng, [5, 60]);
  const gasNoise = Float32Array.from(
    { length: 4096 },
    () => prng.uniform(0, 30),
  );
  return {
    scale,
    shift,
    rot,
    noise,
    tissues,
    bodyAxes: [bx, by],
    body,
    wall,
    cavity,
    vertebra,
    lamina,
    muscles: [psoasL, psoasR, paraL, paraR],
    bowel,
    organs,
    gasLevel,
    texture,
    gasNoise,
  };
}

// ---------------------------------------------------------------------------
// Renderer.

/**
 * Paints the voxel `idx` at anatomy-frame point `q`: air, then body fat,
 * wall muscle, visceral fat, muscles, bone, bowel and organs, later wins.
 */
function paintVoxel(
  a: CaseAnatomy,
  q: Vec3,
  idx: number,
  out: { hu: Float32Array; label: Uint8Array },
): void {
  const t = a.tissues;
  let v = -1000;
  let lab = 0;
  // cheap test first: the body's waves move its edge by at most 2%
  const e0 = q[0] / a.bodyAxes[0], e1 = q[1] / a.bodyAxes[1];
  if (e0 * e0 + e1 * e1 < 1.0404 && a.body.radius(q) < 1) {
    v = t.fat; // subcutaneous fat
    let visceral = false;
    if (a.wall.radius(q) < 1) {
      v = t.muscle; // abdominal wall
      if (a.cavity.radius(q) < 1) {
        v = t.fat; // visceral fat
        visceral = true;
      }
    }
    for (const s of a.muscles) {
      if (inBound(s, q) && s.radius(q) < 1) v = t.muscle;
    }
    const rv = a.vertebra.radius(q), rl = a.lamina.radius(q);
    if (rv < 1 || rl < 1) v = Math.min(rv, rl) > 0.8 ? t.cortex : t.bone;
    if (visceral) {
      for (const { shape, hu } of a.bowel) {
        if (inBound(shape, q) && shape.radius(q) < 1) v = hu;
      }
    }
    let winner: OrganSpec | undefined;
    let rOrgan = Infinity;
    for (const { shape, organ } of a.organs) {
      if (!inBound(shape, q)) continue;
      const r = shape.radius(q);
      if (r < 1) {
        v = t[organ.tissue];
        lab = organ.label;
        winner = organ;
        rOrgan = r;
      }
    }
    if (winner) {
      if (winner.wall && rOrgan > winner.wall.beyond) {
        v = t[winner.wall.tissue];
      } else {
        const level = a.gasLevel.get(winner);
        if (level !== undefined && q[1] > level) {
          v = -1000 + a.gasNoise[idx & 4095]!;
        }
      }
      if (winner.core && rOrgan < winner.core.within) {
        v = t[winner.core.tissue];
      }
      if (v > -500) v += waveAt(a.texture, q);
    }
  }
  out.hu[idx] = v;
  out.label[idx] = lab;
}

/**
 * Partial-volume blur in-plane ([1, 2, 1] / 4 along x then y), then
 * Gaussian noise of `sigma` HU, rounded and clipped to [-1024, 3071].
 */
function blurAndAddNoise(
  prng: Prng,
  hu: Float32Array,
  [nx, ny, nz]: [number, number, number],
  sigma: number,
): Int16Array {
  const tmp = new Float32Array(hu.length);
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      const row = (k * ny + j) * nx;
      for (let i = 0; i < nx; i++) {
        const a = hu[row + Math.max(0, i - 1)]!,
          b = hu[row + i]!,
          c = hu[row + Math.min(nx - 1, i + 1)]!;
        tmp[row + i] = 0.25 * a + 0.5 * b + 0.25 * c;
      }
    }
  }
  const out = new Int16Array(hu.length);
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      const row = (k * ny + j) * nx;
      const up = (k * ny + Math.max(0, j - 1)) * nx;
      const dn = (k * ny + Math.min(ny - 1, j + 1)) * nx;
      for (let i = 0; i < nx; i++) {
        const v = 0.25 * tmp[up + i]! + 0.5 * tmp[row + i]! +
          0.25 * tmp[dn + i]! + sigma * prng.normal();
        out[row + i] = Math.max(-1024, Math.min(3071, Math.round(v)));
      }
    }
  }
  return out;
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
  const a = drawAnatomy(prng, domain);
  const [nx, ny, nz] = size;
  const sp: Vec3 = [FOV[0] / nx, FOV[1] / ny, FOV[2] / nz];
  const { rot, shift, scale } = a;
  const painted = {
    hu: new Float32Array(nx * ny * nz),
    label: new Uint8Array(nx * ny * nz),
  };
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
        paintVoxel(a, q, idx, painted);
      }
    }
  }
  return {
    hu: blurAndAddNoise(prng, painted.hu, size, a.noise),
    label: painted.label,
  };
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
