import assert from "node:assert/strict";
import { basename, join } from "node:path";
import { decode as decodePng, encode as encodePng } from "fast-png";
import {
  decodeJpeg,
  readImage,
  readNifti,
  vocColor,
  writeNifti,
} from "../../data/mod.ts";
import {
  loadTrainedModel,
  predictFile,
  predictImage,
  predictVolume,
  runPipeline,
} from "../../pipeline/mod.ts";
import { parseTrainArgs } from "../../cli/train.ts";
import { exists } from "../../data/_io.ts";
import { assertNoLeakAsync } from "../_utils.ts";
import { H, vocFixture, W } from "./_voc_fixture.ts";

const MICRO =
  new URL("../testdata/micro_config.json", import.meta.url).pathname;

// Two micro runs, trained once for every test below: one on a synthetic VOC
// folder (3 channels), one on the embedded phantom (1 channel).
const VOC = await Deno.makeTempDir();
await vocFixture(VOC);
const VOC_RUN = await Deno.makeTempDir();
const PHANTOM_RUN = await Deno.makeTempDir();
// wasm: the faster CPU backend for these runs. (cpu trains on the
// non-square VOC images too since backends/_resize_grad.ts fixed its
// ResizeBilinearGrad.)
const quiet = { quiet: true, backend: "wasm", print: () => {} };
// Long enough (about 5 s) for the VOC run to find the cat in b1.
const VOC_ARGS = [
  "--set",
  "coarse.epochs=40",
  "--set",
  "segment.epochs=10",
  "--set",
  "segment.lr=0.01",
];
await runPipeline(
  (await parseTrainArgs(["--config", MICRO, "--data", VOC, ...VOC_ARGS]))
    .config,
  { ...quiet, out: VOC_RUN },
);
await runPipeline((await parseTrainArgs(["--config", MICRO])).config, {
  ...quiet,
  out: PHANTOM_RUN,
});
const JPG = join(VOC, "JPEGImages", "b1.jpg");
// What the run itself predicted for b1 (2D NIfTI on the pixel grid).
const RUN_B1: number[] = Array.from(
  (await readNifti(join(VOC_RUN, "predictions", "b1.nii.gz"))).data,
);

globalThis.addEventListener("unload", () => {
  for (const d of [VOC, VOC_RUN, PHANTOM_RUN]) {
    Deno.removeSync(d, { recursive: true });
  }
});

async function tempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Files left in `dir` (no temporary files of atomic writes). */
async function listing(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

Deno.test("predictFile() JPEG → indexed VOC-palette PNG, the input's size, the run's own prediction", async () => {
  await tempDir(async (dir) => {
    const out = join(dir, "labels.png");
    const r = await predictFile(VOC_RUN, JPG, { out });
    assert.equal(r.format, "png");
    assert.deepEqual(r.dims, [W, H, 1]);
    const png = decodePng(await Deno.readFile(out));
    assert.deepEqual([png.width, png.height, png.channels, png.depth], [
      W,
      H,
      1,
      8,
    ]);
    assert.ok(png.palette, "an indexed PNG");
    assert.deepEqual(png.palette![8], vocColor(8)); // cat
    assert.deepEqual(png.palette![12], vocColor(12)); // dog
    const ids = Array.from(png.data);
    // Only background and the run's targets (cat 8, dog 12).
    assert.ok(
      ids.every((v) => v === 0 || v === 8 || v === 12),
      `${new Set(ids)}`,
    );
    assert.ok(ids.includes(8), "the micro run finds the cat");
    // Same decoder, mapping, attention and fusion as the run's evaluation.
    assert.deepEqual(ids, RUN_B1);
    assert.deepEqual(await listing(dir), ["labels.png"]);
  });
});

Deno.test("predictFile() PNG input (RGB, RGBA) gives the JPEG's labels; greyscale labels on request", async () => {
  await tempDir(async (dir) => {
    const rgb = decodeJpeg(await Deno.readFile(JPG));
    const rgba = new Uint8Array(W * H * 4);
    for (let i = 0; i < W * H; i++) {
      rgba.set([...rgb.data.subarray(3 * i, 3 * i + 3), 128], 4 * i);
    }
    await Deno.writeFile(
      join(dir, "rgb.png"),
      encodePng({ width: W, height: H, data: rgb.data, channels: 3, depth: 8 }),
    );
    await Deno.writeFile(
      join(dir, "rgba.png"),
      encodePng({ width: W, height: H, data: rgba, channels: 4, depth: 8 }),
    );
    for (const name of ["rgb.png", "rgba.png"]) {
      const out = join(dir, `${name}.labels.png`);
      await predictFile(VOC_RUN, join(dir, name), { out, palette: "grey" });
      const png = decodePng(await Deno.readFile(out));
      assert.equal(png.palette, undefined);
      assert.deepEqual([png.width, png.height, png.channels], [W, H, 1]);
      assert.deepEqual(Array.from(png.data), RUN_B1, name);
    }
  });
});

Deno.test("predictFile() image → 2D NIfTI, and a 4D 8-bit NIfTI (one volume per channel) → NIfTI", async () => {
  await tempDir(async (dir) => {
    const a = await predictFile(VOC_RUN, JPG, { out: join(dir, "b1.nii.gz") });
    const v = await readNifti(join(dir, "b1.nii.gz"));
    assert.deepEqual(v.dims, [W, H, 1]);
    assert.deepEqual(Array.from(v.data), RUN_B1);
    assert.deepEqual(Array.from(a.labels), RUN_B1);
    // [W, H, 1, 3] uint8: written as [W, H, 3], then dim[0] = 4, dim[3] = 1,
    // dim[4] = 3 (same bytes, x fastest, then y, then the channel).
    const rgb = decodeJpeg(await Deno.readFile(JPG));
    const planar = new Uint8Array(W * H * 3);
    for (let i = 0; i < W * H; i++) {
      for (let k = 0; k < 3; k++) planar[k * W * H + i] = rgb.data[3 * i + k]!;
    }
    const four = join(dir, "rgb4d.nii");
    await writeNifti(four, {
      data: planar,
      dims: [W, H, 3],
      spacing: [1, 1, 1],
      affine: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
    });
    const bytes = await Deno.readFile(four);
    const dv = new DataView(bytes.buffer);
    dv.setInt16(40, 4, true);
    dv.setInt16(46, 1, true);
    dv.setInt16(48, 3, true);
    await Deno.writeFile(four, bytes);
    const out = join(dir, "rgb4d_labels.nii.gz");
    await predictFile(VOC_RUN, four, { out });
    const w = await readNifti(out);
    assert.deepEqual(w.dims, [W, H, 1]);
    assert.deepEqual(Array.from(w.data), RUN_B1);
  });
});

Deno.test("predictFile() single-channel run: NIfTI out byte-identical to the run's own prediction", async () => {
  const metrics = JSON.parse(
    await Deno.readTextFile(join(PHANTOM_RUN, "metrics.json")),
  );
  const image: string = metrics.cases[0].image;
  const id = basename(image).replace(/\.nii(\.gz)?$/, "");
  await tempDir(async (dir) => {
    const out = join(dir, `${id}.nii.gz`);
    await predictFile(PHANTOM_RUN, image, { out });
    assert.deepEqual(
      await Deno.readFile(out),
      await Deno.readFile(join(PHANTOM_RUN, "predictions", `${id}.nii.gz`)),
    );
  });
});

Deno.test("loadTrainedModel() reads a run's model/ folder on its own, and names the missing model/config.json of a run without one", async () => {
  const metrics = JSON.parse(
    await Deno.readTextFile(join(PHANTOM_RUN, "metrics.json")),
  );
  const image: string = metrics.cases[0].image;
  const id = basename(image).replace(/\.nii(\.gz)?$/, "");
  await tempDir(async (dir) => {
    const model = join(dir, "model");
    await Deno.mkdir(model);
    for (const name of await listing(join(PHANTOM_RUN, "model"))) {
      await Deno.copyFile(join(PHANTOM_RUN, "model", name), join(model, name));
    }
    assert.deepEqual(await listing(model), [
      "coarse.json",
      "coarse.safetensors",
      "config.json",
      "encoder.json",
      "encoder.safetensors",
      "segment.json",
      "segment.safetensors",
    ]);
    const out = join(dir, `${id}.nii.gz`);
    await predictFile(model, image, { out });
    assert.deepEqual(
      await Deno.readFile(out),
      await Deno.readFile(join(PHANTOM_RUN, "predictions", `${id}.nii.gz`)),
    );
    // A run directory of an earlier version (or one stopped before stage 3
    // finished) has no model/.
    await Deno.remove(model, { recursive: true });
    await assert.rejects(() => loadTrainedModel(dir), {
      name: "Error",
      message: `Cannot load a model from ${dir} as ${
        join(dir, "model", "config.json")
      } does not exist: a run writes model/ when stage 3 finishes (finish it with --resume); runs of versions before model/ existed must be trained again`,
    });
  });
});

Deno.test("loadTrainedModel() reads a model/ whose config.json predates the budget, pretrain.flip, segment.schedule and coarse.tta fields", async () => {
  await tempDir(async (dir) => {
    for (const name of await listing(join(PHANTOM_RUN, "model"))) {
      await Deno.copyFile(join(PHANTOM_RUN, "model", name), join(dir, name));
    }
    const path = join(dir, "config.json");
    const c = JSON.parse(await Deno.readTextFile(path));
    assert.ok(c.pipeline.budget);
    delete c.pipeline.budget;
    delete c.pipeline.pretrain.flip;
    delete c.pipeline.segment.schedule;
    // The phantom's labels name sides: its run resolved no test-time flip.
    assert.equal(c.coarseTta, false);
    delete c.coarseTta;
    delete c.pipeline.coarse.tta;
    await Deno.writeTextFile(path, JSON.stringify(c));
    const m = await loadTrainedModel(dir);
    try {
      assert.deepEqual(m.config.budget, { minutes: null, fill: false });
      assert.equal(m.config.pretrain.flip, "horizontal");
      assert.equal(m.config.segment.schedule, "constant");
      assert.equal(m.config.coarse.tta, "none");
      assert.equal(m.coarseTta, false);
    } finally {
      m.dispose();
    }
  });
});

Deno.test("a run's model/ state dicts read with numpy alone carry agcl_torch's state_dict names, shapes and dtypes", async () => {
  const check = new URL(
    "../../bench/torch_ref/check_model_dir.py",
    import.meta.url,
  ).pathname;
  for (const [run, nets] of [[PHANTOM_RUN, 3], [VOC_RUN, 3]] as const) {
    const out = await new Deno.Command("/usr/bin/python3", {
      args: [check, join(run, "model")],
    }).output();
    const err = new TextDecoder().decode(out.stderr);
    assert.ok(out.success, err);
    const got = JSON.parse(new TextDecoder().decode(out.stdout));
    assert.equal(Object.keys(got.nets).length, nets);
    // ResNet-18: 20 convolutions and BNs (5 tensors each) → 120 tensors.
    assert.equal(got.nets.encoder, 120);
  }
});

Deno.test("predictFile() single-channel run: 'volumeIndex' picks a volume of a 4D NIfTI, and what the reader assumed is warned", async () => {
  const metrics = JSON.parse(
    await Deno.readTextFile(join(PHANTOM_RUN, "metrics.json")),
  );
  const image: string = metrics.cases[0].image;
  const id = basename(image).replace(/\.nii(\.gz)?$/, "");
  const want = Array.from(
    (await readNifti(join(PHANTOM_RUN, "predictions", `${id}.nii.gz`))).data,
  );
  const v = await readNifti(image);
  const [nx, ny, nz] = v.dims;
  await tempDir(async (dir) => {
    // [nx, ny, nz, 2]: an empty volume, then the image (written as
    // [nx, ny, 2 nz], then dim[0] = 4, dim[3] = nz, dim[4] = 2).
    const data = new Float32Array(2 * v.data.length);
    data.set(v.data, v.data.length);
    const four = join(dir, "four.nii");
    await writeNifti(four, {
      data,
      dims: [nx, ny, 2 * nz],
      spacing: v.spacing,
      affine: v.affine,
    });
    const bytes = await Deno.readFile(four);
    const dv = new DataView(bytes.buffer);
    dv.setInt16(40, 4, true);
    dv.setInt16(46, nz, true);
    dv.setInt16(48, 2, true);
    await Deno.writeFile(four, bytes);
    const out = join(dir, "o.nii.gz");
    await assert.rejects(() => predictFile(PHANTOM_RUN, four, { out }), {
      name: "Error",
      message:
        `Cannot read NIfTI file '${four}' as it has 2 volumes (dim = [4,${nx},${ny},${nz},2]) where one 3D volume is expected: pick one with 'volumeIndex' (deno task predict: --volume-index), or save the volume to use as a 3D NIfTI file of its own`,
    });
    await assert.rejects(
      () => predictFile(PHANTOM_RUN, four, { out, volumeIndex: 2 }),
      {
        name: "RangeError",
        message:
          `Cannot read NIfTI file '${four}' as 'volumeIndex' must be an integer in [0, 1]: current value is 2`,
      },
    );
    await assert.rejects(
      () => predictFile(VOC_RUN, four, { out, volumeIndex: 0 }),
      {
        name: "TypeError",
        message: new RegExp(
          `^Cannot predict NIfTI file '${four}' with run .* and 'volumeIndex' 0 as it was trained on 3-channel images, which read every volume as a channel$`,
        ),
      },
    );
    assert.deepEqual(await listing(dir), ["four.nii"]);
    const r = await predictFile(PHANTOM_RUN, four, { out, volumeIndex: 1 });
    assert.deepEqual(Array.from(r.labels), want);
    // pixdim 0 without qform or sform: 1 mm assumed, and said.
    dv.setInt16(40, 3, true);
    dv.setInt16(48, 1, true);
    for (let i = 1; i <= 3; i++) dv.setFloat32(76 + 4 * i, 0, true);
    dv.setInt16(252, 0, true);
    dv.setInt16(254, 0, true);
    const flat = join(dir, "flat.nii");
    const n = 4 * v.data.length; // bytes of one float32 volume
    const flatBytes = new Uint8Array(352 + n);
    flatBytes.set(bytes.subarray(0, 352));
    flatBytes.set(bytes.subarray(352 + n), 352); // the image, not the empty one
    await Deno.writeFile(flat, flatBytes);
    const warnings: string[] = [];
    await predictFile(PHANTOM_RUN, flat, {
      out: join(dir, "flat_labels.nii"),
      onWarning: (m) => warnings.push(m),
    });
    assert.deepEqual(warnings, [
      `${flat}: pixdim[1..3] is [0,0,0] and qform_code and sform_code are 0: a voxel size of 1 mm was assumed along x, y, z, so distances in mm (HD95, ASSD) may be meaningless`,
    ]);
  });
});

Deno.test("predictFile() in a process that chose no backend selects auto itself and says so once", async () => {
  const metrics = JSON.parse(
    await Deno.readTextFile(join(PHANTOM_RUN, "metrics.json")),
  );
  const image: string = metrics.cases[0].image;
  const id = basename(image).replace(/\.nii(\.gz)?$/, "");
  const predict = new URL("../../pipeline/predict.ts", import.meta.url).href;
  await tempDir(async (dir) => {
    const out = join(dir, `${id}.nii.gz`);
    const code = `import { predictFile } from ${JSON.stringify(predict)};
await predictFile(${JSON.stringify(PHANTOM_RUN)}, ${
      JSON.stringify(image)
    }, { out: ${JSON.stringify(out)} });`;
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["eval", code],
      cwd: new URL("../..", import.meta.url).pathname,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(r.stderr);
    assert.equal(r.code, 0, stderr);
    const said = stderr.split("\n").filter((l) => l.startsWith("agcl: "));
    assert.equal(said.length, 1, stderr);
    assert.match(
      said[0]!,
      /^agcl: no backend was chosen, so "auto" selected (wasm|webgpu) \(.*\); call selectBackend\(\) to choose$/,
    );
    // The run trained on wasm: the same backend predicts the same bytes.
    if (said[0]!.includes("selected wasm")) {
      assert.deepEqual(
        await Deno.readFile(out),
        await Deno.readFile(join(PHANTOM_RUN, "predictions", `${id}.nii.gz`)),
      );
    }
  });
});

Deno.test("predictFile() clear errors, and no output file, for bad inputs", async () => {
  await tempDir(async (dir) => {
    const out = join(dir, "o.png");
    const grey = join(dir, "grey.png");
    await Deno.writeFile(
      grey,
      encodePng({
        width: W,
        height: H,
        data: new Uint8Array(W * H).fill(90),
        channels: 1,
        depth: 8,
      }),
    );
    await assert.rejects(() => predictFile(VOC_RUN, grey, { out }), {
      name: "TypeError",
      message:
        /grey\.png' with run .* trained on 3-channel images and the file has 1 channel/,
    });
    await assert.rejects(
      () => predictFile(VOC_RUN, join(dir, "x.bmp"), { out }),
      {
        name: "TypeError",
        message:
          /'.*x\.bmp' as its extension is not one of .nii, .nii.gz, .jpg/,
      },
    );
    await assert.rejects(
      () => predictFile(VOC_RUN, JPG, { out: join(dir, "o.jpg") }),
      {
        name: "TypeError",
        message: /o\.jpg' as its extension is not one of .nii, .nii.gz, .png/,
      },
    );
    await assert.rejects(
      () => predictFile(VOC_RUN, join(dir, "missing.jpg"), { out }),
      { name: "Error", message: /image '.*missing\.jpg' as it does not exist/ },
    );
    const junk = join(dir, "junk.jpg");
    await Deno.writeFile(junk, new Uint8Array([0xff, 0xd8, 0xff, 1, 2, 3]));
    await assert.rejects(() => predictFile(VOC_RUN, junk, { out }), {
      name: "Error",
      message: /Cannot decode image '.*junk\.jpg' as a JPEG/,
    });
    const text = join(dir, "text.png");
    await Deno.writeTextFile(text, "not an image");
    await assert.rejects(() => predictFile(VOC_RUN, text, { out }), {
      message: /image '.*text\.png': expected a JPEG or PNG file/,
    });
    // A 3D NIfTI for a 3-channel run; NIfTI → PNG; a JPEG for a 1-channel run.
    const plain = join(dir, "plain.nii.gz");
    await writeNifti(plain, {
      data: new Uint8Array(W * H),
      dims: [W, H, 1],
      spacing: [1, 1, 1],
      affine: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
    });
    await assert.rejects(
      () => predictFile(VOC_RUN, plain, { out: join(dir, "o.nii.gz") }),
      {
        name: "TypeError",
        message: /expected a 4D NIfTI with 3 volumes .* found 1 volume/,
      },
    );
    await assert.rejects(() => predictFile(VOC_RUN, plain, { out }), {
      name: "TypeError",
      message: /to PNG '.*o\.png': write .nii or .nii.gz/,
    });
    await assert.rejects(() => predictFile(PHANTOM_RUN, JPG, { out }), {
      name: "TypeError",
      message: /trained on single-channel volumes: give a NIfTI volume/,
    });
    assert.deepEqual(await listing(dir), [
      "grey.png",
      "junk.jpg",
      "plain.nii.gz",
      "text.png",
    ]);
    assert.equal(await exists(out), false);
  });
});

Deno.test("predictImage() and predictVolume() check channels against the run's", async () => {
  const model = await loadTrainedModel(VOC_RUN);
  try {
    assert.equal(model.channels, 3);
    await assert.rejects(
      () =>
        predictImage(model, {
          width: 2,
          height: 2,
          channels: 1,
          data: new Uint8Array(4),
        }),
      { name: "TypeError", message: /3-channel images and the image has 1/ },
    );
    const v = await readNifti(join(VOC_RUN, "predictions", "b1.nii.gz"));
    await assert.rejects(() => predictVolume(model, v), {
      name: "TypeError",
      message: /3-channel images and was given 1 volume/,
    });
    await assert.rejects(
      () =>
        predictVolume(model, [v, v, {
          ...v,
          data: new Float32Array(W * H).fill(0.5),
        }]),
      {
        name: "RangeError",
        message:
          /channel 2 of '.*b1\.nii\.gz': voxel 0 is 0\.5, expected 8-bit/,
      },
    );
  } finally {
    model.dispose();
  }
  const mono = await loadTrainedModel(PHANTOM_RUN);
  try {
    assert.equal(mono.channels, 1);
    const rgb = await readImage(JPG);
    await assert.rejects(() => predictImage(mono, rgb), {
      name: "TypeError",
      message: /trained on single-channel volumes/,
    });
  } finally {
    mono.dispose();
  }
});

Deno.test("predictImage() and predictVolume() do not leak tensors", async () => {
  const model = await loadTrainedModel(VOC_RUN);
  try {
    const image = await readImage(JPG);
    let labels: number[] = [];
    await assertNoLeakAsync(async () => {
      labels = Array.from((await predictImage(model, image)).data);
      return [];
    });
    assert.deepEqual(labels, RUN_B1);
    const planes = [0, 1, 2].map((k) => ({
      data: Uint8Array.from(
        { length: W * H },
        (_, i) => image.data[3 * i + k]!,
      ),
      dims: [W, H, 1] as [number, number, number],
      spacing: [1, 1, 1] as [number, number, number],
      affine: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
    }));
    await assertNoLeakAsync(async () => {
      labels = Array.from(await predictVolume(model, planes));
      return [];
    });
    assert.deepEqual(labels, RUN_B1);
  } finally {
    model.dispose();
  }
});

Deno.test("the inference entry point (./inference, pipeline/predict.ts) loads neither the report stack nor the training stages", async () => {
  const root = new URL("../..", import.meta.url);
  const config = JSON.parse(
    await Deno.readTextFile(new URL("deno.json", root)),
  );
  assert.equal(config.exports["./inference"], "./pipeline/predict.ts");
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "pipeline/predict.ts"],
    cwd: root.pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  // The modules loaded at run time, walking code imports from the root:
  // `import type` edges are erased (pipeline/run_dir.ts takes its log entry
  // type from report/figures.ts), so they load nothing.
  type Dep = { specifier: string; code?: { specifier: string } };
  type Mod = { specifier: string; dependencies?: Dep[] };
  const info: {
    roots: string[];
    modules: Mod[];
    redirects: Record<string, string>;
  } = JSON.parse(new TextDecoder().decode(out.stdout));
  const bySpecifier = new Map(info.modules.map((m) => [m.specifier, m]));
  const loaded: Mod[] = [];
  const seen = new Set<string>();
  const queue = [...info.roots];
  while (queue.length > 0) {
    const s = queue.shift()!;
    const m = bySpecifier.get(info.redirects[s] ?? s);
    if (!m || seen.has(m.specifier)) continue;
    seen.add(m.specifier);
    loaded.push({
      specifier: m.specifier,
      dependencies: (m.dependencies ?? []).filter((d) => d.code),
    });
    for (const d of m.dependencies ?? []) {
      if (d.code) queue.push(d.code.specifier);
    }
  }
  // Those modules and every specifier they import (npm packages included).
  const modules = JSON.stringify(loaded);
  const found = (re: RegExp) => [...new Set(modules.match(re) ?? [])];
  assert.ok(found(/npm:\/?@tensorflow\/tfjs\b/g).length > 0);
  const heavy = [
    ...found(/npm:\/?(vega|vega-lite|umap-js|@resvg\/resvg-js)\b/g),
    ...found(/\/report\/[a-z_]+\.ts|\/pipeline\/(run|stage[123])\.ts/g),
  ];
  assert.deepEqual(heavy, []);
});
