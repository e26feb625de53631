// Bad inputs and faults, one table (issue 16, "also wanted"): each case
// makes its files in a fresh temporary folder, runs the public API or a CLI
// entry, and asserts the exact error class and text, and that the folder
// holds afterwards exactly what the case put there (no output, no
// `*.tmp-*` file of an atomic write). Classes: NIfTI header defects, gzip
// defects, dataset.json defects, label defects, CLI misuse, write faults.
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadDataset, readNifti, writeNifti } from "../data/mod.ts";
import { gzip } from "../data/_io.ts";
import { mergeConfig, PRESETS } from "../pipeline/config.ts";
import { prepareData } from "../pipeline/prepare.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const IDENTITY = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]];
const AFFINE2 = [[2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0], [0, 0, 0, 1]];

/** A valid 4×3×2 int16 `.nii` (vox_offset 352), as bytes. */
async function niftiBytes(dir: string): Promise<Uint8Array> {
  const p = join(dir, "_seed.nii");
  await writeNifti(p, {
    data: Int16Array.from({ length: 24 }, (_, i) => i),
    dims: [4, 3, 2],
    spacing: [1, 1, 1],
    affine: IDENTITY,
  });
  const b = await Deno.readFile(p);
  await Deno.remove(p);
  return b;
}

/** `bytes` with `edit` applied to a copy's header. */
function edited(bytes: Uint8Array, edit: (v: DataView) => void): Uint8Array {
  const b = bytes.slice();
  edit(new DataView(b.buffer));
  return b;
}

/**
 * A two-case dataset of 8×8×2 volumes (labels 0..2 declared) in `dir`;
 * `mutate` edits the JSON and `label` replaces case 1's label voxels.
 */
async function dataset(
  dir: string,
  options: {
    mutate?: (ds: Record<string, unknown>) => void;
    label?: ArrayLike<number>;
  } = {},
): Promise<string> {
  const meta = {
    dims: [8, 8, 2] as [number, number, number],
    spacing: [2, 2, 2] as [number, number, number],
    affine: AFFINE2,
  };
  const training = [];
  for (let i = 0; i < 2; i++) {
    const lab = new Uint8Array(128);
    lab.fill(1, 10, 30);
    lab.fill(2, 40, 60);
    await writeNifti(join(dir, `img${i}.nii.gz`), {
      ...meta,
      data: Int16Array.from({ length: 128 }, (_, k) => (k * 7 + i) % 50),
    });
    await writeNifti(join(dir, `lab${i}.nii.gz`), {
      ...meta,
      data: i === 1 && options.label ? Float32Array.from(options.label) : lab,
    });
    training.push({ image: `./img${i}.nii.gz`, label: `./lab${i}.nii.gz` });
  }
  const ds: Record<string, unknown> = {
    labels: { 0: "background", 1: "one", 2: "two" },
    training,
  };
  options.mutate?.(ds);
  const json = join(dir, "dataset.json");
  await Deno.writeTextFile(json, JSON.stringify(ds));
  return json;
}

function prepare(json: string): Promise<unknown> {
  return prepareData(
    json,
    mergeConfig(PRESETS.tiny, { intensity: "percentile" }),
  );
}

/** Runs a CLI entry file; rejects with its stderr when it exits non-zero. */
async function cli(file: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", file, ...args],
    cwd: ROOT,
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const stderr = new TextDecoder().decode(out.stderr).trim();
  if (out.code !== 0) {
    throw new CliError(`exit ${out.code}: ${stderr.split("\n").pop()}`);
  }
}

class CliError extends Error {
  override name = "CliError";
}

/**
 * Runs `code` (a module body importing from the package root by absolute
 * path) in a child Deno whose files may not grow past `kib` KiB (`ulimit -f`,
 * with SIGXFSZ ignored, so a write past it fails with EFBIG as one on a full
 * disk fails with ENOSPC: part of the data written, then an error). Rejects
 * with the error the child caught, same name and message.
 */
async function withFileSizeLimit(code: string, kib: number): Promise<void> {
  const wrapped = `${code}
    .then(() => Deno.exit(0), (e) => {
      console.error(JSON.stringify({ name: e.name, message: e.message }));
      Deno.exit(1);
    });`;
  const out = await new Deno.Command("bash", {
    args: [
      "-c",
      `trap '' XFSZ; ulimit -f ${kib}; exec "$0" eval --quiet "$1"`,
      Deno.execPath(),
      wrapped,
    ],
    cwd: ROOT,
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  if (out.code === 0) return;
  const last = new TextDecoder().decode(out.stderr).trim().split("\n").pop();
  const { name, message } = JSON.parse(last!) as Record<string, string>;
  throw Object.assign(new Error(message), { name });
}

interface Case {
  /** The class of defect. */
  kind: string;
  name: string;
  /** Makes the case's files in `dir` and returns what to run. */
  make: (dir: string) => Promise<() => Promise<unknown>>;
  error: string;
  /**
   * Exact message; `DIR` stands for the case's folder, `PID-RAND` for the
   * random part of an atomic write's temporary name.
   */
  message: string;
  /** Skip the case on this platform. */
  ignore?: boolean;
}

const put = async (dir: string, name: string, bytes: Uint8Array) => {
  await Deno.writeFile(join(dir, name), bytes);
  return join(dir, name);
};

const CASES: Case[] = [
  // NIfTI header defects
  {
    kind: "nifti header",
    name: "not NIfTI at all",
    make: async (d) => {
      const p = await put(d, "a.nii", new TextEncoder().encode("hello world!"));
      return () => readNifti(p);
    },
    error: "Error",
    message:
      "Cannot read NIfTI file 'DIR/a.nii' as it is not NIfTI: sizeof_hdr is 1819043176 (expected 348 for NIfTI-1 or 540 for NIfTI-2)",
  },
  {
    kind: "nifti header",
    name: "unsupported datatype (rgb24)",
    make: async (d) => {
      const b = edited(await niftiBytes(d), (v) => v.setInt16(70, 128, true));
      const p = await put(d, "rgb.nii", b);
      return () => readNifti(p);
    },
    error: "Error",
    message:
      "Cannot read NIfTI file 'DIR/rgb.nii' as its datatype 128 (rgb24) is not supported: expected uint8, int8, int16, uint16, int32, uint32, float32 or float64",
  },
  {
    kind: "nifti header",
    name: "a zero dimension",
    make: async (d) => {
      const b = edited(await niftiBytes(d), (v) => v.setInt16(44, 0, true));
      const p = await put(d, "z.nii", b);
      return () => readNifti(p);
    },
    error: "Error",
    message:
      "Cannot read NIfTI file 'DIR/z.nii' as its dims must be >= 1: dim[2] is 0 (dim = [3,4,0,2])",
  },
  {
    kind: "nifti header",
    name: "a singular sform (rank 2)",
    make: async (d) => {
      const b = edited(await niftiBytes(d), (v) => {
        v.setInt16(254, 1, true);
        for (
          const [r, row] of [[1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0]].entries()
        ) {
          row.forEach((x, c) => v.setFloat32(280 + (r * 4 + c) * 4, x, true));
        }
      });
      const p = await put(d, "s.nii", b);
      return () => readNifti(p);
    },
    error: "Error",
    message:
      "Cannot read NIfTI file 'DIR/s.nii' as its affine (from sform) is singular: the rotation-zoom part [[1,0,0],[1,0,0],[0,0,1]] has rank < 3, expected three independent voxel axes",
  },
  {
    kind: "nifti header",
    name: "voxel data cut short",
    make: async (d) => {
      const p = await put(d, "t.nii", (await niftiBytes(d)).slice(0, 360));
      return () => readNifti(p);
    },
    error: "Error",
    message:
      "Cannot read NIfTI file 'DIR/t.nii' as its voxel data is truncated: 360 bytes, expected 400 (header 352 + 1×24 voxels × 2 bytes)",
  },
  {
    kind: "nifti header",
    name: "a 4D file where one volume is expected",
    make: async (d) => {
      const b = edited(await niftiBytes(d), (v) => {
        v.setInt16(40, 4, true);
        v.setInt16(46, 1, true);
        v.setInt16(48, 2, true);
      });
      const p = await put(d, "four.nii", b);
      return () => readNifti(p);
    },
    error: "Error",
    message:
      "Cannot read NIfTI file 'DIR/four.nii' as it has 2 volumes (dim = [4,4,3,1,2]) where one 3D volume is expected: pick one with 'volumeIndex' (deno task predict: --volume-index), or save the volume to use as a 3D NIfTI file of its own",
  },
  {
    kind: "nifti header",
    name: "a folder named like a NIfTI file",
    make: async (d) => {
      await Deno.mkdir(join(d, "dir.nii.gz"));
      return () => readNifti(join(d, "dir.nii.gz"));
    },
    error: "Error",
    message: "Cannot read NIfTI file 'DIR/dir.nii.gz' as it is a directory",
  },
  // gzip defects
  {
    kind: "gzip",
    name: "truncated gzip",
    make: async (d) => {
      const gz = await gzip(await niftiBytes(d));
      const p = await put(d, "cut.nii.gz", gz.slice(0, gz.length - 12));
      return () => readNifti(p);
    },
    error: "Error",
    message:
      "Cannot read NIfTI file 'DIR/cut.nii.gz' as its gzip data is corrupt or truncated: corrupt gzip stream does not have a matching checksum",
  },
  {
    kind: "gzip",
    name: "inflates far past what the header declares",
    make: async (d) => {
      const body = new Uint8Array(400 + 3 * (1 << 20));
      body.set(await niftiBytes(d));
      const p = await put(d, "bomb.nii.gz", await gzip(body));
      return () => readNifti(p);
    },
    error: "Error",
    message:
      "Cannot read NIfTI file 'DIR/bomb.nii.gz' as its gzip data inflates past 1048976 bytes, while its header declares 400 (vox_offset 352 + 1×24 voxels × 2 bytes): stopped inflating (a decompression bomb?)",
  },
  // dataset.json defects
  {
    kind: "dataset.json",
    name: "not JSON",
    make: async (d) => {
      await Deno.writeTextFile(join(d, "dataset.json"), "{labels: oops");
      return () => loadDataset(join(d, "dataset.json"));
    },
    error: "Error",
    message:
      "Cannot load dataset 'DIR/dataset.json' as it is not valid JSON: Expected property name or '}' in JSON at position 1 (line 1 column 2)",
  },
  {
    kind: "dataset.json",
    name: "a training entry without a label",
    make: async (d) => {
      const json = await dataset(d, {
        mutate: (ds) => {
          delete (ds.training as { label?: string }[])[1]!.label;
        },
      });
      return () => loadDataset(json);
    },
    error: "Error",
    message:
      "Cannot load dataset 'DIR/dataset.json' as 'training'[1] (./img1.nii.gz) has no 'label'",
  },
  {
    kind: "dataset.json",
    name: "a missing image file",
    make: async (d) => {
      const json = await dataset(d, {
        mutate: (ds) => {
          (ds.training as { image: string }[])[1]!.image = "./gone.nii.gz";
        },
      });
      return () => prepare(json);
    },
    error: "Error",
    message: "Cannot read NIfTI file 'DIR/gone.nii.gz' as it does not exist",
  },
  {
    kind: "dataset.json",
    name: "a case both trained on and scored",
    make: async (d) => {
      const json = await dataset(d, {
        mutate: (ds) => {
          ds.validation = [(ds.training as unknown[])[0]];
        },
      });
      return () => prepare(json);
    },
    error: "Error",
    message:
      "Cannot train on DIR/dataset.json: 'training'[0] and 'validation'[0] are the same case (DIR/img0.nii.gz); a case that is trained on cannot also be scored",
  },
  // label defects
  {
    kind: "label",
    name: "a value 'labels' does not declare",
    make: async (d) => {
      const lab = new Uint8Array(128);
      lab.fill(1, 10, 30);
      lab.fill(2, 40, 60);
      lab[70] = 7;
      const json = await dataset(d, { label: lab });
      return () => prepare(json);
    },
    error: "Error",
    message:
      "Label map 'DIR/lab1.nii.gz' has values not declared in dataset.json 'labels' (0, 1, 2): 7 (1 voxels)",
  },
  {
    kind: "label",
    name: "a non-integer value",
    make: async (d) => {
      const lab = new Float32Array(128);
      lab.fill(1, 10, 30);
      lab.fill(2, 40, 60);
      lab[70] = 0.5;
      const json = await dataset(d, { label: lab });
      return () => prepare(json);
    },
    error: "Error",
    message:
      "Cannot use label file DIR/lab1.nii.gz: voxel 70 has value 0.5, expected a non-negative integer",
  },
  // CLI misuse
  {
    kind: "cli",
    name: "predict --volume-index that is not a count",
    make: () =>
      Promise.resolve(() =>
        cli("cli/predict.ts", [
          "--model=r",
          "--image=i.nii",
          "--out=o.nii",
          "--volume-index=first",
        ])
      ),
    error: "CliError",
    message:
      'exit 2: error: predict: --volume-index must be an integer >= 0 (0 is the first volume): current value is "first"',
  },
  {
    kind: "cli",
    name: "train --epochs with a negative value",
    make: () => Promise.resolve(() => cli("cli/train.ts", ["--epochs", "-1"])),
    error: "CliError",
    message:
      "exit 2: error: train: the value of --epochs starts with a dash ('-1'): write --epochs=-1 to pass it",
  },
  {
    kind: "cli",
    name: "eval without --gt",
    make: (d) => Promise.resolve(() => cli("cli/eval.ts", ["--pred", d])),
    error: "CliError",
    message: "exit 2: error: eval: --gt dataset.json is required",
  },
  // write faults
  {
    kind: "write",
    name: "a NIfTI written where its folder is a file",
    make: async (d) => {
      await Deno.writeTextFile(join(d, "file"), "x");
      return () =>
        writeNifti(join(d, "file", "out.nii"), {
          data: new Uint8Array(8),
          dims: [2, 2, 2],
          spacing: [1, 1, 1],
          affine: IDENTITY,
        });
    },
    error: "Error",
    message:
      "Cannot write 'DIR/file/out.nii': File exists (os error 17): mkdir 'DIR/file'",
  },
  {
    kind: "write",
    name: "a NIfTI written over a folder",
    make: async (d) => {
      await Deno.mkdir(join(d, "out.nii"));
      return () =>
        writeNifti(join(d, "out.nii"), {
          data: new Uint8Array(8),
          dims: [2, 2, 2],
          spacing: [1, 1, 1],
          affine: IDENTITY,
        });
    },
    error: "Error",
    message:
      "Cannot write 'DIR/out.nii': Is a directory (os error 21): rename 'DIR/out.nii.tmp-PID-RAND' -> 'DIR/out.nii'",
  },
  {
    kind: "write",
    name: "a checkpoint write that fails midway (as on a full disk)",
    make: (d) =>
      Promise.resolve(() =>
        withFileSizeLimit(
          `import { createProjectionHead, saveCheckpoint } from "${ROOT}models/mod.ts";
          // A 512×512 linear layer and more: a 2 MiB tensor file, cut at 256 KiB.
          const head = createProjectionHead({ inFeatures: 512, outFeatures: 512 });
          saveCheckpoint(${JSON.stringify(join(d, "head.safetensors"))}, head)`,
          256,
        )
      ),
    error: "Error",
    message:
      "Cannot write 'DIR/head.safetensors': File too large (os error 27)",
    ignore: Deno.build.os === "windows", // no bash, no ulimit
  },
];

/** Every path under `dir`, relative, sorted. */
async function tree(dir: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(join(dir, rel))) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    out.push(p);
    if (e.isDirectory) out.push(...await tree(dir, p));
  }
  return out.sort();
}

for (const c of CASES) {
  Deno.test({
    name: `bad input (${c.kind}): ${c.name}`,
    ignore: c.ignore ?? false,
  }, async () => {
    const dir = await Deno.makeTempDir();
    try {
      const run = await c.make(dir);
      const before = await tree(dir);
      let caught: unknown;
      try {
        await run();
      } catch (e) {
        caught = e;
      }
      assert.ok(caught instanceof Error, `${c.name}: no error thrown`);
      assert.equal(caught.name, c.error);
      assert.equal(
        caught.message.replaceAll(dir, "DIR")
          .replace(/\.tmp-\d+-[0-9a-f]{8}/, ".tmp-PID-RAND"),
        c.message,
      );
      assert.deepEqual(await tree(dir), before, "files left behind");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
