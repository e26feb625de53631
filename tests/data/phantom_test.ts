import assert from "node:assert/strict";
import {
  axisCodes,
  loadCase,
  loadDataset,
  makePhantom,
  PHANTOM_LABELS,
  toCanonical,
} from "../../data/mod.ts";

Deno.test("makePhantom writes a deterministic two-domain dataset that loads through the real loaders", async () => {
  const a = await Deno.makeTempDir();
  const b = await Deno.makeTempDir();
  try {
    const ja = await makePhantom({
      dir: a,
      cases: 4,
      seed: 5,
      size: [64, 64, 16],
    });
    const jb = await makePhantom({
      dir: b,
      cases: 4,
      seed: 5,
      size: [64, 64, 16],
    });
    const ds = await loadDataset(ja);
    assert.deepEqual(ds.domains, ["portal-venous", "non-contrast"]);
    assert.equal(ds.training.length, 3);
    assert.equal(ds.validation.length, 1);
    assert.deepEqual(ds.labels, PHANTOM_LABELS);
    for (const e of [...ds.training, ...ds.validation]) {
      const x = await Deno.readFile(e.image);
      const y = await Deno.readFile(e.image.replace(a, b));
      assert.deepEqual(
        x,
        y,
        `${e.id} differs between two runs with the same seed`,
      );
    }
    // reuse: a complete folder is not rewritten
    const before = (await Deno.stat(ds.training[0]!.image)).mtime;
    assert.equal(
      await makePhantom({ dir: a, cases: 4, seed: 5, size: [64, 64, 16] }),
      ja,
    );
    assert.deepEqual((await Deno.stat(ds.training[0]!.image)).mtime, before);
    // a different seed differs
    const c = await Deno.makeTempDir();
    const jc = await makePhantom({
      dir: c,
      cases: 1,
      seed: 6,
      size: [64, 64, 16],
    });
    assert.notDeepEqual(
      await Deno.readFile(`${c}/imagesTr/phantom_000.nii.gz`),
      await Deno.readFile(ds.training[0]!.image),
    );
    await Deno.remove(c, { recursive: true });
    assert.ok(jc.endsWith("dataset.json"));
    assert.ok(jb.endsWith("dataset.json"));
  } finally {
    await Deno.remove(a, { recursive: true });
    await Deno.remove(b, { recursive: true });
  }
});

Deno.test("makePhantom organs are all present with plausible HU in both domains", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const ds = await loadDataset(
      await makePhantom({ dir, cases: 2, seed: 11, size: [96, 96, 24] }),
    );
    const means: Record<string, Record<string, number>> = {};
    for (const e of [...ds.training, ...ds.validation]) {
      const { image, label } = await loadCase(e, ds);
      assert.ok(["LPS", "RAS"].includes(axisCodes(image.affine)));
      const c = toCanonical(image), l = toCanonical(label!);
      const sum = new Float64Array(10),
        n = new Float64Array(10),
        xs = new Float64Array(10);
      for (let i = 0; i < c.data.length; i++) {
        const k = l.data[i]!;
        sum[k]! += c.data[i]!;
        n[k]!++;
        xs[k]! += i % c.dims[0];
      }
      means[e.domain] = {};
      for (let k = 1; k <= 9; k++) {
        assert.ok(
          n[k]! > 20,
          `${e.id}: organ ${PHANTOM_LABELS[k]} has ${n[k]} voxels`,
        );
        means[e.domain]![PHANTOM_LABELS[k]!] = sum[k]! / n[k]!;
      }
      // anatomy: liver and right kidney on the patient's right (+x in RAS), spleen left
      const cx = (k: number) => xs[k]! / n[k]! - (c.dims[0] - 1) / 2;
      assert.ok(
        cx(5) > 0 && cx(2) > 0 && cx(1) < 0 && cx(3) < 0,
        `${e.id} laterality`,
      );
    }
    const pv = means["portal-venous"]!, nc = means["non-contrast"]!;
    assert.ok(pv.aorta! > 150 && pv.aorta! < 260, `aorta ${pv.aorta}`);
    assert.ok(nc.aorta! > 20 && nc.aorta! < 70, `aorta nc ${nc.aorta}`);
    for (const organ of ["liver", "spleen", "kidney_left", "kidney_right"]) {
      assert.ok(
        pv[organ]! > nc[organ]! + 30,
        `${organ} enhanced: ${pv[organ]} vs ${nc[organ]}`,
      );
      assert.ok(nc[organ]! > 10 && nc[organ]! < 80, `${organ} nc ${nc[organ]}`);
    }
    assert.ok(nc.gallbladder! < 40, `gallbladder ${nc.gallbladder}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("makePhantom rejects bad options", async () => {
  await assert.rejects(() => makePhantom({ cases: 0 }), RangeError);
  await assert.rejects(
    () => makePhantom({ size: [4, 64, 64] }),
    /'size' must be 3 integers in \[8, 1024\]/,
  );
});

async function sha256(bytes: ArrayBufferView): Promise<string> {
  const view = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const digest = await crypto.subtle.digest("SHA-256", view.slice());
  return Array.from(
    new Uint8Array(digest),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
}

Deno.test("makePhantom output is byte-identical to the recorded generator (version 1)", async () => {
  // Hashes of the stored voxels (images in HU, labels) of seed 7, recorded
  // before renderCase was split into an anatomy table and a renderer: any
  // change to the phantom must bump GENERATOR_VERSION and these hashes.
  const dir = await Deno.makeTempDir();
  try {
    const ds = await loadDataset(
      await makePhantom({ dir, cases: 3, seed: 7, size: [40, 36, 10] }),
    );
    const got: string[] = [];
    for (const e of [...ds.training, ...ds.validation]) {
      const { image, label } = await loadCase(e, ds);
      got.push(
        `${e.id} ${await sha256(image.data)} ${await sha256(label!.data)}`,
      );
    }
    assert.deepEqual(got, [
      "phantom_000 43e42eb8e9a00c728db238cf6d43685556438e9688b1b5c4dbac556cdc36c27e 518e8c0ca4a3a2c3ee8bcb48d37ed7ffc595c7473dea43115c8289ecae3db902",
      "phantom_001 baa93aff465f76c629fca51ba9b95f0b813a77cfd0382d3c6bf1c6e54f0cce38 a6bad11f9d9b44ec75410585f5464e2a2d7a6218eb18d4c14c556822f0a348ae",
      "phantom_002 4a2a8ff2dcacd22f1a5ffc7ff4183206f5c73e8eff04fb27225951fac09fbb8d 8d6b9397bd30003ecf1866c88d18acad3e9633db9998da00955b5c4f44eda78f",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
