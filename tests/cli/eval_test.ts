import assert from "node:assert/strict";
import { type DenoRun, runDeno } from "./_run.ts";
import { basename, join } from "node:path";
import { loadDataset } from "../../data/dataset.ts";
import { readNifti, writeNifti } from "../../data/nifti.ts";
import { makePhantom } from "../../data/phantom.ts";
import { evaluateLabelMaps } from "../../metrics/evaluate.ts";
import { assertAlmostEquals } from "../_utils.ts";

const CLI = new URL("../../cli/eval.ts", import.meta.url).pathname;

function runEval(args: string[]): Promise<DenoRun> {
  return runDeno(["run", "-A", CLI, ...args]);
}

Deno.test("deno task eval matches predictions by file name and writes metrics.json", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const dsPath = await makePhantom({
      dir: join(dir, "data"),
      cases: 4,
      size: [24, 24, 8],
      seed: 2,
    });
    const ds = await loadDataset(dsPath);
    assert.ok(ds.validation.length >= 1);
    const predDir = join(dir, "pred");
    await Deno.mkdir(predDir);
    const expected: Record<string, ReturnType<typeof evaluateLabelMaps>> = {};
    for (const [i, e] of ds.validation.entries()) {
      const truth = await readNifti(e.label!);
      // Prediction: the truth shifted one voxel along x (and, for the first case, liver erased).
      const pred = new Uint8Array(truth.data.length);
      const [nx] = truth.dims;
      for (let v = 0; v < pred.length; v++) {
        const x = v % nx;
        pred[v] = x > 0 ? Number(truth.data[v - 1]) : 0;
        if (i === 0 && pred[v] === 1) pred[v] = 0;
      }
      await writeNifti(join(predDir, `${e.id}.nii.gz`), {
        ...truth,
        data: pred,
      }, { datatype: "uint8" });
      expected[e.image] = evaluateLabelMaps(pred, truth.data, {
        dims: truth.dims,
        spacing: truth.spacing,
        labels: ds.labels,
      });
    }
    await Deno.writeTextFile(join(predDir, "notes.txt"), "not a prediction");
    const out = join(dir, "metrics.json");
    const r = await runEval([
      "--pred",
      predDir,
      "--gt",
      dsPath,
      "--out",
      out,
      "--quiet",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /^target\s+dice\s+dicePresent\s+present\s+fp\s+hd95\s+assd/m,
    );
    const m = JSON.parse(await Deno.readTextFile(out));
    assert.deepEqual(Object.keys(m).sort(), [
      "cases",
      "counts",
      "mean",
      "stats",
      "targets",
    ]);
    assert.equal(m.cases.length, ds.validation.length);
    // Cases are keyed by their case id and keep the image path.
    for (const c of m.cases) {
      assert.equal(c.id, basename(c.image).replace(/\.nii(\.gz)?$/, ""));
    }
    // metrics.csv beside it: one row per case × target, the same numbers.
    const csv = (await Deno.readTextFile(join(dir, "metrics.csv")))
      .trimEnd().split("\n");
    const names = Object.keys(m.targets);
    assert.equal(
      csv[0],
      "case,image,target,present,dice,iou,hd95,assd,hd,reason",
    );
    assert.equal(csv.length, 1 + m.cases.length * names.length);
    const first = csv[1]!.split(",");
    assert.deepEqual(first.slice(0, 3), [
      m.cases[0].id,
      m.cases[0].image,
      names[0],
    ]);
    assert.equal(Number(first[4]), m.cases[0].targets[names[0]!].dice);
    assert.match(r.stdout, /wrote .*metrics\.json and .*metrics\.csv/);
    assert.doesNotMatch(r.stderr, /eval \d/); // --quiet: no progress bar
    // Without --quiet: a progress bar over the cases, on stderr.
    const loud = await runEval([
      "--pred",
      predDir,
      "--gt",
      dsPath,
      "--out",
      out,
    ]);
    assert.equal(loud.code, 0, loud.stderr);
    const n = ds.validation.length;
    assert.match(loud.stderr, new RegExp(`eval ${n}/${n} \\[#+\\] 100% `));
    for (const c of m.cases) {
      const want = expected[c.image]!;
      for (const [name, t] of Object.entries(want.targets)) {
        assertAlmostEquals(
          c.targets[name].dice,
          t.dice,
          1e-12,
          `${c.image} ${name}`,
        );
        assert.equal(c.targets[name].hd95, t.hd95);
        assert.equal(c.targets[name].assd, t.assd);
      }
    }
    assert.ok(
      m.cases[0].targets[ds.labels[1]!].reason,
      "erased target has a null reason",
    );
    assert.ok(!JSON.stringify(m).includes("NaN"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task eval fails clearly on missing or mismatched predictions and bad flags", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const dsPath = await makePhantom({
      dir: join(dir, "data"),
      cases: 4,
      size: [24, 24, 8],
      seed: 3,
    });
    const ds = await loadDataset(dsPath);
    const predDir = join(dir, "pred");
    await Deno.mkdir(predDir);
    let r = await runEval([
      "--pred",
      predDir,
      "--gt",
      dsPath,
      "--out",
      join(dir, "m.json"),
    ]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /^error: Cannot evaluate predictions as no file in .* matches a case of split 'validation'/,
    );
    // A prediction on another grid.
    const e = ds.validation[0]!;
    const truth = await readNifti(e.label!);
    await writeNifti(join(predDir, `${e.id}.nii.gz`), {
      ...truth,
      data: new Uint8Array(truth.data.length / truth.dims[2]),
      dims: [truth.dims[0], truth.dims[1], 1],
    }, { datatype: "uint8" });
    r = await runEval([
      "--pred",
      predDir,
      "--gt",
      dsPath,
      "--split",
      "validation",
      "--out",
      join(dir, "m.json"),
    ]);
    assert.equal(r.code, 1);
    if (ds.validation.length > 1) {
      assert.match(r.stderr, /have no prediction in .*--partial/);
    }
    r = await runEval([
      "--pred",
      predDir,
      "--gt",
      dsPath,
      "--partial",
      "--out",
      join(dir, "m.json"),
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /different grids: dims \[24,24,1\] vs \[24,24,8\]/);
    r = await runEval(["--pred", predDir, "--gt", dsPath, "--split", "nope"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--split must be one of training, validation, test/);
    r = await runEval(["--gt", dsPath]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--pred DIR/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task eval --help prints its usage", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../../cli/eval.ts", import.meta.url).pathname,
      "--help",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0);
  assert.match(
    new TextDecoder().decode(out.stdout),
    /^Usage: deno task eval --pred DIR --gt dataset.json/,
  );
});
