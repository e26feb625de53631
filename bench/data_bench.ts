/**
 * Reading and preprocessing a BTCV-sized CT (512×512×100 int16 .nii.gz,
 * stored LPS like most CT): ours (readNifti → toCanonical → HU window and
 * percentile normalisation) vs nibabel + numpy on the same file in the
 * same run. Target: within 2× of nibabel + numpy.
 */
import {
  percentileNormalize,
  readNifti,
  toCanonical,
  windowIntensity,
  writeNifti,
} from "../data/mod.ts";
import { Prng } from "../random/prng.ts";
import { type BenchFlags, printTable, runPython, timeMs } from "./_common.ts";

/** A CT-like volume: air, a noisy body ellipse with organs and a spine. */
function syntheticCt(nx: number, ny: number, nz: number): Int16Array {
  const prng = new Prng(0);
  const out = new Int16Array(nx * ny * nz);
  const noise = Float32Array.from({ length: 65536 }, () => prng.normal() * 15);
  let k = 0;
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++, k++) {
        const u = (x - nx / 2) / (nx * 0.4), v = (y - ny / 2) / (ny * 0.3);
        const r = u * u + v * v;
        let hu = -1000;
        if (r < 1) {
          hu = r > 0.8 ? -100 : 40;
          const s = (u + 0.3) ** 2 + (v + 0.5) ** 2;
          if (s < 0.02) hu = 400;
          if ((u - 0.35) ** 2 + v * v < 0.08 + 0.02 * Math.sin(z / 9)) hu = 110;
        }
        out[k] = hu + noise[(k * 7919) & 65535]!;
      }
    }
  }
  return out;
}

export default async function run(flags: BenchFlags): Promise<void> {
  const [nx, ny, nz] = flags.quick ? [256, 256, 50] : [512, 512, 100];
  const dir = await Deno.makeTempDir({ prefix: "agcl-data-bench-" });
  try {
    const path = `${dir}/ct.nii.gz`;
    const sx = 0.78, sz = 2.5;
    await writeNifti(path, {
      data: syntheticCt(nx, ny, nz),
      dims: [nx, ny, nz],
      spacing: [sx, sx, sz],
      affine: [[-sx, 0, 0, 200], [0, -sx, 0, 200], [0, 0, sz, -120], [
        0,
        0,
        0,
        1,
      ]],
    });
    const mb = (nx * ny * nz * 2) / 2 ** 20;
    const fileMb = (await Deno.stat(path)).size / 2 ** 20;
    const reps = flags.quick ? 2 : 3;
    const read = await timeMs(() => readNifti(path), { reps });
    const full = await timeMs(async () => {
      const v = toCanonical(await readNifti(path));
      windowIntensity(v);
      percentileNormalize(v);
    }, { reps });
    const rows: (string | number)[][] = [
      ["ours: read", read, mb / (read / 1e3)],
      ["ours: read + canonical + window + percentile", full, mb / (full / 1e3)],
    ];
    let ratio = "";
    if (flags.comparePytorch) {
      const py = await runPython(
        `import json, sys, time, numpy as np, nibabel as nib
p = sys.argv[1]; reps = int(sys.argv[2])
def med(f):
    f(); t = []
    for _ in range(reps):
        t0 = time.perf_counter(); f(); t.append((time.perf_counter() - t0) * 1e3)
    return sorted(t)[len(t) // 2]
def read():
    return np.asanyarray(nib.load(p).dataobj)
def full():
    img = nib.as_closest_canonical(nib.load(p))
    a = np.asanyarray(img.dataobj)
    w = np.clip((a.astype(np.float32) + 175) / 425, 0, 1)
    lo, hi = np.percentile(a, [1, 99])
    q = np.clip((a.astype(np.float32) - lo) / (hi - lo), 0, 1)
    return w, q
print(json.dumps({"read": med(read), "full": med(full), "nibabel": nib.__version__, "numpy": np.__version__}))`,
        [path, String(reps)],
      ) as
        | { read: number; full: number; nibabel: string; numpy: string }
        | undefined;
      if (py) {
        rows.push(
          [`nibabel ${py.nibabel}: read`, py.read, mb / (py.read / 1e3)],
          [
            `nibabel + numpy ${py.numpy}: same steps`,
            py.full,
            mb / (py.full / 1e3),
          ],
        );
        ratio = `ours / nibabel+numpy time: read ${
          (read / py.read).toFixed(2)
        }×, read+preprocess ${(full / py.full).toFixed(2)}× (target ≤ 2×)`;
      }
    }
    console.log(
      `${nx}×${ny}×${nz} int16 (${mb.toFixed(1)} MiB voxels, ${
        fileMb.toFixed(1)
      } MiB gzip), LPS on disk`,
    );
    printTable(["what", "ms", "MiB/s"], rows);
    if (ratio) console.log(ratio);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
