/**
 * HD95 + ASSD (with Dice) of a 512×512×100 label pair with 13 labels, beside
 * the same computation in scipy (binary_erosion + distance_transform_edt on
 * each label's bounding box, as MONAI's get_mask_edges(crop=True) does).
 */
import { squaredDistanceToFeatures } from "../metrics/distance_transform.ts";
import { evaluateLabelMaps } from "../metrics/evaluate.ts";
import { Prng } from "../random/prng.ts";
import {
  type BenchFlags,
  printTable,
  REFERENCE_PYTHON,
  rssMiB,
  timeMs,
} from "./_common.ts";

/** Ellipsoid "organs" (truth) and a perturbed copy with spurious blobs (prediction). */
function makePair(
  dims: [number, number, number],
  labels: number,
  seed: number,
): { pred: Uint8Array; truth: Uint8Array } {
  const [nx, ny, nz] = dims;
  const prng = new Prng(seed);
  const truth = new Uint8Array(nx * ny * nz);
  const pred = new Uint8Array(nx * ny * nz);
  const paint = (
    vol: Uint8Array,
    l: number,
    c: number[],
    r: number[],
  ) => {
    const [cx, cy, cz] = c as [number, number, number];
    const [rx, ry, rz] = r as [number, number, number];
    for (
      let z = Math.max(0, Math.floor(cz - rz));
      z <= Math.min(nz - 1, cz + rz);
      z++
    ) {
      for (
        let y = Math.max(0, Math.floor(cy - ry));
        y <= Math.min(ny - 1, cy + ry);
        y++
      ) {
        for (
          let x = Math.max(0, Math.floor(cx - rx));
          x <= Math.min(nx - 1, cx + rx);
          x++
        ) {
          const d = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 +
            ((z - cz) / rz) ** 2;
          if (d <= 1) vol[(z * ny + y) * nx + x] = l;
        }
      }
    }
  };
  for (let l = 1; l <= labels; l++) {
    const c = [
      prng.uniform(0.2, 0.8) * nx,
      prng.uniform(0.2, 0.8) * ny,
      prng.uniform(0.3, 0.7) * nz,
    ];
    const r = [
      prng.uniform(0.03, 0.15) * nx,
      prng.uniform(0.03, 0.15) * ny,
      prng.uniform(0.05, 0.3) * nz,
    ];
    paint(truth, l, c, r);
    paint(
      pred,
      l,
      c.map((v) => v + prng.uniform(-4, 4)),
      r.map((v) => v * prng.uniform(0.85, 1.15)),
    );
    if (l % 3 === 0) {
      paint(pred, l, [
        prng.uniform(0.1, 0.9) * nx,
        prng.uniform(0.1, 0.9) * ny,
        prng.uniform(0.1, 0.9) * nz,
      ], [4, 4, 2]);
    }
  }
  return { pred, truth };
}

const SCIPY_CODE = `
import json, sys, time
import numpy as np
from scipy import ndimage
nx, ny, nz, labels = map(int, sys.argv[2:6])
sp = [float(v) for v in sys.argv[6:9]][::-1]
raw = np.fromfile(sys.argv[1], dtype=np.uint8)
n = nx * ny * nz
pred, truth = raw[:n].reshape(nz, ny, nx), raw[n:].reshape(nz, ny, nx)
def run():
    out = {}
    for l in range(1, labels + 1):
        a, b = pred == l, truth == l
        u = np.argwhere(a | b)
        lo, hi = u.min(0), u.max(0) + 1
        sl = tuple(slice(i, j) for i, j in zip(lo, hi))
        a, b = a[sl], b[sl]
        ea, eb = a ^ ndimage.binary_erosion(a), b ^ ndimage.binary_erosion(b)
        d1 = ndimage.distance_transform_edt(~eb, sampling=sp)[ea]
        d2 = ndimage.distance_transform_edt(~ea, sampling=sp)[eb]
        out[l] = [max(np.percentile(d1, 95), np.percentile(d2, 95)), float(np.concatenate([d1, d2]).mean())]
    return out
t = []
for _ in range(int(sys.argv[9])):
    t0 = time.perf_counter(); res = run(); t.append((time.perf_counter() - t0) * 1000)
# One full-volume EDT (distance to the truth's label-1 voxels), for the raw transform.
t0 = time.perf_counter()
ndimage.distance_transform_edt(truth != 1, sampling=sp)
edt_ms = (time.perf_counter() - t0) * 1000
print(json.dumps({"ms": sorted(t)[len(t) // 2], "res": res, "edt_ms": edt_ms}))
`;

/** Runs the metrics bench. */
export default async function metricsBench(flags: BenchFlags): Promise<void> {
  const dims: [number, number, number] = flags.quick
    ? [256, 256, 50]
    : [512, 512, 100];
  const spacing = [0.8, 0.8, 2.5];
  const nLabels = 13;
  const { pred, truth } = makePair(dims, nLabels, 1);
  const labels = Object.fromEntries(
    Array.from({ length: nLabels }, (_, i) => [i + 1, `organ_${i + 1}`]),
  );
  const reps = flags.quick ? 1 : 3;
  let result = evaluateLabelMaps(pred, truth, { dims, spacing, labels });
  const ms = await timeMs(() => {
    result = evaluateLabelMaps(pred, truth, { dims, spacing, labels });
  }, { reps, warmup: 0 });
  const features = new Uint8Array(truth.length);
  for (let i = 0; i < truth.length; i++) features[i] = truth[i] === 1 ? 1 : 0;
  const edtMs = await timeMs(
    () => squaredDistanceToFeatures(features, { dims, spacing }),
    { reps: 1, warmup: 0 },
  );
  const rows: (string | number)[][] = [[
    `evaluateLabelMaps (Dice, HD95, ASSD) ${dims.join("×")}, ${nLabels} labels`,
    ms,
    "",
    "",
  ]];
  if (flags.comparePytorch) {
    const file = await Deno.makeTempFile({ suffix: ".raw" });
    try {
      const raw = new Uint8Array(pred.length * 2);
      raw.set(pred);
      raw.set(truth, pred.length);
      await Deno.writeFile(file, raw);
      const out = await new Deno.Command(REFERENCE_PYTHON, {
        args: [
          "-c",
          SCIPY_CODE,
          file,
          ...dims.map(String),
          String(nLabels),
          ...spacing.map(String),
          String(reps),
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      if (out.success) {
        const ref = JSON.parse(new TextDecoder().decode(out.stdout)) as {
          ms: number;
          edt_ms: number;
          res: Record<string, [number, number]>;
        };
        let maxDiff = 0;
        for (const [l, [h, m]] of Object.entries(ref.res)) {
          const t = result.targets[`organ_${l}`]!;
          maxDiff = Math.max(
            maxDiff,
            Math.abs(t.hd95! - h),
            Math.abs(t.assd! - m),
          );
        }
        rows.push([
          "scipy binary_erosion + distance_transform_edt (bbox crops)",
          ref.ms,
          (ref.ms / ms).toFixed(2),
          maxDiff.toExponential(1),
        ]);
        rows.push([
          `squaredDistanceToFeatures, full ${dims.join("×")} volume`,
          edtMs,
          "",
          "",
        ]);
        rows.push([
          "scipy distance_transform_edt, same volume",
          ref.edt_ms,
          (ref.edt_ms / edtMs).toFixed(2),
          "",
        ]);
      } else {
        console.error(
          `scipy reference failed: ${
            new TextDecoder().decode(out.stderr).trim().split("\n").pop()
          }`,
        );
      }
    } finally {
      await Deno.remove(file);
    }
  }
  printTable(["what", "ms", "scipy/ours", "max |Δ| mm"], rows);
  console.log(`rss ${rssMiB().toFixed(0)} MiB`);
}
