/**
 * Patch sampler + pairwise augmentation throughput: patches per second at
 * 128×128 with two views, beside what an R50 contrastive pre-training step
 * consumes, which must be at least 10× lower so data never starves training.
 */
import { BatchStream, samplePatches, type SamplingCase } from "../data/mod.ts";
import { Prng } from "../random/mod.ts";
import { type BenchFlags, printTable, rssMiB, timeMs } from "./_common.ts";

/**
 * What one R50 pre-training step consumes: PyTorch 1.13 on this machine's
 * CPU, ResNet-50 (CIFAR stem) + projection head, 4 samples × 2 views of
 * 128×128, forward + backward + SGD step: ~877 ms (measured for issue 9).
 */
const R50_STEP_MS = 877;
const R50_STEP_SAMPLES = 4;

/** CT-like cases: a smooth noisy body with ellipsoid organs as attention and label. */
function syntheticCases(
  count: number,
  dims: [number, number, number],
  channels: number,
): SamplingCase[] {
  const prng = new Prng(7);
  const [nx, ny, nz] = dims;
  return Array.from({ length: count }, (_, k) => {
    const image = new Float32Array(nx * ny * nz * channels);
    const attention = new Uint8Array(nx * ny * nz);
    const label = new Uint8Array(nx * ny * nz);
    const organs = Array.from({ length: 6 }, (_, t) => ({
      t: t + 1,
      cx: prng.uniform(0.25, 0.75) * nx,
      cy: prng.uniform(0.25, 0.75) * ny,
      cz: prng.uniform(0.2, 0.8) * nz,
      r: prng.uniform(0.06, 0.14) * nx,
    }));
    for (let z = 0; z < nz; z++) {
      for (let y = 0; y < ny; y++) {
        for (let x = 0; x < nx; x++) {
          const i = (z * ny + y) * nx + x;
          for (let c = 0; c < channels; c++) {
            image[i * channels + c] = 0.4 + 0.2 * prng.next();
          }
          for (const o of organs) {
            const d = ((x - o.cx) ** 2 + (y - o.cy) ** 2) / o.r ** 2 +
              ((z - o.cz) / (0.3 * nz)) ** 2;
            if (d < 1.1) attention[i] = o.t;
            if (d < 1) label[i] = o.t;
          }
        }
      }
    }
    return {
      id: `synthetic${k}`,
      domain: k % 2,
      dims,
      channels,
      image,
      attention,
      label,
    };
  });
}

/** Runs the patches bench. */
export default async function patchesBench(flags: BenchFlags): Promise<void> {
  const dims: [number, number, number] = flags.quick
    ? [192, 192, 8]
    : [256, 256, 24];
  const reps = flags.quick ? 3 : 7;
  const batchSize = 32;
  const consumed = R50_STEP_SAMPLES / (R50_STEP_MS / 1000);
  const rows: (string | number)[][] = [];
  for (
    const [label, channels] of [["CT (1 ch)", 1], ["RGB (3 ch)", 3]] as const
  ) {
    const cases = syntheticCases(2, dims, channels);
    let index = samplePatches(cases, { patchSize: 128, perTarget: 30 });
    const indexMs = await timeMs(() => {
      index = samplePatches(cases, { patchSize: 128, perTarget: 30 });
    }, { reps: 3 });
    const voxels = cases.length * dims[0] * dims[1] * dims[2];
    console.log(
      `${label}: index of ${index.records.length} records over ${cases.length}×[${dims}] in ${
        indexMs.toFixed(1)
      } ms (${(voxels / indexMs / 1000).toFixed(1)} Mvoxel/s)`,
    );
    for (const augment of [true, false]) {
      const stream = new BatchStream(index, cases, {
        batchSize,
        views: 2,
        seed: 1,
        balance: "target",
        ...(augment ? {} : { augment: false as const }),
      });
      const ms = await timeMs(() => stream.next(), { reps, warmup: 2 });
      const perSec = batchSize / (ms / 1000);
      rows.push([
        label,
        augment
          ? `crop+rot+flip+${channels === 3 ? "colour" : "intensity"}`
          : "none (cut only)",
        ms,
        perSec,
        2 * perSec,
        consumed,
        `${(perSec / consumed).toFixed(0)}×`,
      ]);
    }
  }
  printTable([
    "image",
    "augmentation",
    `ms / batch of ${batchSize}`,
    "patches/s (2 views each)",
    "views/s",
    "R50 step consumes (patches/s)",
    "ratio",
  ], rows);
  console.log(
    `R50 step: PyTorch 1.13 CPU, ${R50_STEP_SAMPLES} patches × 2 views in ${R50_STEP_MS} ms (issue 9); ` +
      `target ≥ 10×. RSS ${rssMiB().toFixed(0)} MiB.`,
  );
}
