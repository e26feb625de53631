import assert from "node:assert/strict";
import {
  axisCodes,
  loadDataset,
  type NiftiHeader,
  readNifti,
  readNiftiHeader,
  type Volume,
  writeNifti,
} from "../../data/mod.ts";
import { gzip } from "../../data/_io.ts";
import { assertAlmostEquals } from "../_utils.ts";

const PY = "/usr/bin/python3";
import { SHARED } from "./_shared.ts";

const sharedPresent = SHARED !== undefined;

/** Runs Python with nibabel; fails the test with a clear message if absent. */
async function python(code: string, args: string[] = []): Promise<string> {
  const out = await new Deno.Command(PY, {
    args: ["-c", code, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(out.stderr);
  assert.ok(
    out.success,
    `reference python (${PY} with nibabel, installed by .ci/run) failed: ${err}`,
  );
  return new TextDecoder().decode(out.stdout);
}

const DTYPES = [
  "uint8",
  "int8",
  "int16",
  "uint16",
  "int32",
  "uint32",
  "float32",
  "float64",
] as const;

Deno.test("readNifti matches nibabel for every datatype, both byte orders, scaling, 2D, 4D and NIfTI-2", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // nibabel writes the files and the expected values (float64 little-endian)
    const spec = await python(
      `
import json, sys, numpy as np, nibabel as nib
d = sys.argv[1]; out = {}
rng = np.random.default_rng(0)
aff = np.array([[-1.5, 0.1, 0, 30], [0, 1.2, 0.2, -20], [0, 0, 2.5, 7], [0, 0, 0, 1]])
def save(name, img, data):
    nib.save(img, f"{d}/{name}")
    data.T.astype("<f8").tofile(f"{d}/{name}.expected")
    out[name] = {"dims": [int(s) for s in img.shape[:3]] + [1] * (3 - len(img.shape[:3])),
                 "affine": img.affine.tolist(), "zooms": ([float(z) for z in img.header.get_zooms()[:3]] + [1.0, 1.0])[:3]}
for dt in ${JSON.stringify(DTYPES)}:
    for endian in "<>":
        info = np.iinfo(dt) if dt[0] in "ui" else None
        if info is not None:
            a = rng.integers(info.min, info.max, size=(5, 4, 3), endpoint=True).astype(dt)
        else:
            a = (rng.standard_normal((5, 4, 3)) * 1000).astype(dt)
        h = nib.Nifti1Header(endianness=endian)
        img = nib.Nifti1Image(a, aff, h)
        img.header.set_data_dtype(np.dtype(dt).newbyteorder(endian))
        img.header.set_slope_inter(1, 0)
        save(f"{dt}_{'le' if endian == '<' else 'be'}.nii" + (".gz" if dt == "int16" else ""), img, a.astype("f8"))
# scaled int16, big-endian, qform only (sform_code 0)
a = rng.integers(-300, 300, size=(6, 5, 4)).astype("i2")
h = nib.Nifti1Header(endianness=">")
img = nib.Nifti1Image(a, None, h)
img.set_qform(aff, code=1); img.set_sform(None, code=0)
img.header.set_data_dtype(">i2"); img.header.set_slope_inter(0.5, -10)
save("scaled_qform.nii.gz", img, np.asanyarray(img.dataobj).astype("f8") * 0 + a * 0.5 - 10)
# qform and sform disagree: sform wins
img = nib.Nifti1Image(a, aff); img.set_qform(np.diag([3, 3, 3, 1]), code=1); img.set_sform(aff, code=2)
save("sform_wins.nii", img, a.astype("f8"))
# 2D (dim[0] = 2)
b = rng.integers(0, 255, size=(7, 9)).astype("u1")
img = nib.Nifti1Image(b, np.diag([0.5, 0.7, 1, 1]))
save("flat2d.nii.gz", img, b.astype("f8"))
# 4D: three volumes
c = rng.standard_normal((4, 3, 2, 3)).astype("f4")
img = nib.Nifti1Image(c, aff)
nib.save(img, f"{d}/four_d.nii.gz")
for t in range(3):
    c[..., t].T.astype("<f8").tofile(f"{d}/four_d.nii.gz.{t}.expected")
# an extension pushes vox_offset past 352
img = nib.Nifti1Image(a, aff)
img.header.extensions.append(nib.nifti1.Nifti1Extension("comment", b"AGCL test extension " * 7))
save("with_ext.nii", img, a.astype("f8"))
# NIfTI-2
img = nib.Nifti2Image(a, aff)
save("v2.nii", img, a.astype("f8"))
print(json.dumps(out))
`,
      [dir],
    );
    const expected = JSON.parse(spec) as Record<
      string,
      { dims: number[]; affine: number[][]; zooms: number[] }
    >;
    for (const [name, e] of Object.entries(expected)) {
      const v = await readNifti(`${dir}/${name}`);
      const want = new Float64Array(
        (await Deno.readFile(`${dir}/${name}.expected`)).buffer,
      );
      // nibabel's arrays are in Fortran order on disk: x fastest, like ours
      assert.deepEqual(v.dims, e.dims, name);
      assertAlmostEquals(v.data, want, 1e-9, name);
      assertAlmostEquals(v.affine.flat(), e.affine.flat(), 1e-5, name);
      assertAlmostEquals(v.spacing, e.zooms, 1e-6, name);
      const dt = name.split("_")[0]!;
      if ((DTYPES as readonly string[]).includes(dt)) {
        assert.equal(
          v.data.constructor.name,
          {
            uint8: "Uint8Array",
            int8: "Int8Array",
            int16: "Int16Array",
            uint16: "Uint16Array",
            int32: "Int32Array",
            uint32: "Uint32Array",
            float32: "Float32Array",
            float64: "Float64Array",
          }[dt],
          name,
        );
      }
    }
    // the extension moved the voxels: vox_offset past the 352-byte minimum
    const ext = await readNiftiHeader(`${dir}/with_ext.nii`);
    assert.equal(ext.header.voxOffset, 512);
    const scaled = await readNifti(`${dir}/scaled_qform.nii.gz`);
    assert.ok(scaled.data instanceof Float32Array);
    assert.equal((scaled.header as NiftiHeader).littleEndian, false);
    await assert.rejects(
      () => readNifti(`${dir}/four_d.nii.gz`),
      /has 3 volumes .* where one 3D volume is expected: pick one with 'volumeIndex' \(deno task predict: --volume-index\), or save the volume to use as a 3D NIfTI file of its own$/,
    );
    for (let t = 0; t < 3; t++) {
      const v = await readNifti(`${dir}/four_d.nii.gz`, { volumeIndex: t });
      const want = new Float64Array(
        (await Deno.readFile(`${dir}/four_d.nii.gz.${t}.expected`)).buffer,
      );
      assertAlmostEquals(v.data, want, 0);
    }
    await assert.rejects(
      () => readNifti(`${dir}/four_d.nii.gz`, { volumeIndex: 3 }),
      RangeError,
    );
    const h = await readNiftiHeader(`${dir}/four_d.nii.gz`);
    assert.equal(h.volumes, 3);
    assert.deepEqual(h.dims, [4, 3, 2]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeNifti round trip is bit-identical through readNifti, nibabel and nifti_tool", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const affine = [
      [-0.8, 0, 0, 100.25],
      [0, 0.8, 0, -50.5],
      [0, 0, 2.5, 12],
      [0, 0, 0, 1],
    ];
    const n = 7 * 6 * 5;
    const cases: [string, Volume][] = [
      ["lab.nii.gz", {
        data: Uint8Array.from({ length: n }, (_, i) => (i * 7) % 14),
        dims: [7, 6, 5],
        spacing: [0.8, 0.8, 2.5],
        affine,
      }],
      ["ct.nii", {
        data: Int16Array.from(
          { length: n },
          (_, i) => ((i * 7919) % 4096) - 1024,
        ),
        dims: [7, 6, 5],
        spacing: [0.8, 0.8, 2.5],
        affine,
      }],
      ["prob.nii.gz", {
        data: Float32Array.from({ length: n }, (_, i) => Math.sin(i) / 3),
        dims: [7, 6, 5],
        spacing: [0.8, 0.8, 2.5],
        affine,
      }],
    ];
    for (const [name, vol] of cases) {
      await writeNifti(`${dir}/${name}`, vol);
      const back = await readNifti(`${dir}/${name}`);
      assert.equal(back.data.constructor, vol.data.constructor, name);
      assert.deepEqual(
        new Uint8Array(
          back.data.buffer,
          back.data.byteOffset,
          back.data.byteLength,
        ),
        new Uint8Array(
          vol.data.buffer,
          vol.data.byteOffset,
          vol.data.byteLength,
        ),
        name,
      );
      assertAlmostEquals(back.affine.flat(), affine.flat(), 1e-6, name);
      // a second write from the read volume (header kept) is byte-identical
      await writeNifti(`${dir}/again_${name}`, back);
      const raw1 = await readNifti(`${dir}/again_${name}`);
      assert.deepEqual(raw1.affine, back.affine, name);
    }
    const py = await python(
      `
import json, sys, hashlib, numpy as np, nibabel as nib
d = sys.argv[1]; out = {}
for name in ["lab.nii.gz", "ct.nii", "prob.nii.gz"]:
    img = nib.load(f"{d}/{name}")
    a = np.asanyarray(img.dataobj)
    out[name] = {"dtype": str(a.dtype), "shape": list(a.shape),
                 "sha": hashlib.sha256(np.ascontiguousarray(a.transpose(2, 1, 0)).astype(a.dtype.newbyteorder("<")).tobytes()).hexdigest(),
                 "affine": img.affine.tolist(), "codes": [int(img.header["qform_code"]), int(img.header["sform_code"])],
                 "qform": img.header.get_qform().tolist()}
print(json.dumps(out))
`,
      [dir],
    );
    const ref = JSON.parse(py);
    for (const [name, vol] of cases) {
      const r = ref[name];
      const bytes = new Uint8Array(
        vol.data.buffer,
        vol.data.byteOffset,
        vol.data.byteLength,
      );
      const sha = Array.from(
        new Uint8Array(await crypto.subtle.digest("SHA-256", bytes.slice())),
        (b) => b.toString(16).padStart(2, "0"),
      ).join("");
      assert.equal(r.sha, sha, `${name}: nibabel sees different voxels`);
      assert.deepEqual(r.shape, [7, 6, 5]);
      assert.equal(
        r.dtype,
        { lab: "uint8", ct: "int16", prob: "float32" }[name.split(".")[0]!],
      );
      assertAlmostEquals(r.affine.flat(), affine.flat(), 1e-5, name);
      // qform derived from the affine agrees too
      assertAlmostEquals(r.qform.flat(), affine.flat(), 1e-5, `${name} qform`);
    }
    // a second independent reader: nifti_tool (C niftilib, Debian nifti-bin)
    for (const [name, vol] of cases) {
      const tool = async (args: string[]) => {
        const out = await new Deno.Command("nifti_tool", {
          args: [...args, "-quiet", "-infiles", `${dir}/${name}`],
          stdout: "piped",
          stderr: "piped",
        }).output();
        assert.ok(
          out.success,
          `nifti_tool (Debian nifti-bin, installed by .ci/run) failed: ${
            new TextDecoder().decode(out.stderr)
          }`,
        );
        return new TextDecoder().decode(out.stdout).trim().split(/\s+/)
          .map(Number);
      };
      const hdr = await tool([
        "-disp_hdr",
        "-field",
        "dim",
        "-field",
        "datatype",
      ]);
      assert.deepEqual(hdr.slice(0, 4), [3, 7, 6, 5], name);
      assert.equal(hdr[8], { lab: 2, ct: 4, prob: 16 }[name.split(".")[0]!]);
      const values = await tool([
        "-disp_ci",
        "-1",
        "-1",
        "-1",
        "-1",
        "-1",
        "-1",
        "-1",
      ]);
      assertAlmostEquals(values, vol.data, 1e-6, `${name} via nifti_tool`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeNifti keeps the source header and rejects bad arguments", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = new Int16Array(24).map((_, i) => i - 12);
    const affine = [[0, 0, 2, 1], [0, -3, 0, 2], [1.5, 0, 0, 3], [0, 0, 0, 1]];
    await writeNifti(`${dir}/a.nii`, {
      data,
      dims: [2, 3, 4],
      spacing: [1.5, 3, 2],
      affine,
    });
    const a = await readNifti(`${dir}/a.nii`);
    assert.equal(axisCodes(a.affine), "SPR");
    // labels written with the image's header keep its geometry and codes
    await writeNifti(`${dir}/l.nii.gz`, {
      ...a,
      data: new Uint8Array(24).fill(1),
    });
    const l = await readNifti(`${dir}/l.nii.gz`);
    assert.deepEqual(l.affine, a.affine);
    assert.ok(l.data instanceof Uint8Array);
    const ha = a.header as NiftiHeader, hl = l.header as NiftiHeader;
    assert.deepEqual([hl.qformCode, hl.sformCode], [
      ha.qformCode,
      ha.sformCode,
    ]);
    assert.deepEqual(hl.srow, ha.srow);
    // datatype conversion is checked
    await writeNifti(`${dir}/f.nii`, a, { datatype: "float32" });
    assert.ok((await readNifti(`${dir}/f.nii`)).data instanceof Float32Array);
    await assert.rejects(
      () => writeNifti(`${dir}/u.nii`, a, { datatype: "uint8" }),
      (e: Error) =>
        e instanceof RangeError &&
        /voxel 0 is -12, not an integer/.test(e.message),
    );
    await assert.rejects(
      () => writeNifti(`${dir}/x.img`, a),
      (e: Error) =>
        e instanceof TypeError && /must end in \.nii/.test(e.message),
    );
    await assert.rejects(
      () => writeNifti(`${dir}/y.nii`, { ...a, dims: [2, 3, 5] }),
      (e: Error) =>
        e instanceof TypeError && /does not match dims/.test(e.message),
    );
    // nothing half-written is left behind
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(names, ["a.nii", "f.nii", "l.nii.gz"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A valid little-endian int16 file, 4×3×2, as bytes. */
async function validBytes(dir: string): Promise<Uint8Array> {
  await writeNifti(`${dir}/ok.nii`, {
    data: new Int16Array(24).map((_, i) => i),
    dims: [4, 3, 2],
    spacing: [1, 1, 1],
    affine: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
  });
  return await Deno.readFile(`${dir}/ok.nii`);
}

Deno.test("readNifti gives a clear error naming the file for every bad input", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const ok = await validBytes(dir);
    const put = async (name: string, bytes: Uint8Array) => {
      await Deno.writeFile(`${dir}/${name}`, bytes);
      return `${dir}/${name}`;
    };
    const edit = (f: (v: DataView) => void) => {
      const b = ok.slice();
      f(new DataView(b.buffer));
      return b;
    };
    const cases: [string, Uint8Array | null, RegExp][] = [
      ["missing.nii", null, /missing\.nii' as it does not exist/],
      [
        "text.nii",
        new TextEncoder().encode("hello, I am not an image at all"),
        /text\.nii' as it is not NIfTI: sizeof_hdr is/,
      ],
      [
        "magic.nii",
        edit((v) => v.setUint8(345, "x".charCodeAt(0))),
        /magic\.nii' as it is not NIfTI: bad magic 'nx1'/,
      ],
      [
        "pair.nii",
        edit((v) => v.setUint8(345, "i".charCodeAt(0))),
        /\.hdr\/\.img pair/,
      ],
      [
        "trunc.nii",
        ok.slice(0, 352 + 30),
        /trunc\.nii' as its voxel data is truncated: 382 bytes, expected 400/,
      ],
      [
        "header.nii",
        ok.slice(0, 200),
        /header\.nii' as its header is truncated/,
      ],
      [
        "dtype.nii",
        edit((v) => v.setInt16(70, 128, true)),
        /dtype\.nii' as its datatype 128 \(rgb24\) is not supported/,
      ],
      [
        "int64.nii",
        edit((v) => v.setInt16(70, 1024, true)),
        /datatype 1024 \(int64\) is not supported/,
      ],
      [
        "zero.nii",
        edit((v) => v.setInt16(44, 0, true)),
        /zero\.nii' as its dims must be >= 1: dim\[2\] is 0/,
      ],
      [
        "neg.nii",
        edit((v) => v.setInt16(42, -4, true)),
        /dims must be >= 1: dim\[1\] is -4/,
      ],
      [
        "huge.nii",
        edit((v) => {
          v.setInt16(42, 32000, true);
          v.setInt16(44, 32000, true);
          v.setInt16(46, 32000, true);
        }),
        /huge\.nii' as its grid 32000×32000×32000 .* larger than/,
      ],
      [
        "rank.nii",
        edit((v) => v.setInt16(40, 9, true)),
        /rank\.nii' as dim\[0\] \(the rank\) is 9/,
      ],
      [
        "offset.nii",
        edit((v) => v.setFloat32(108, 0, true)),
        /vox_offset is 0/,
      ],
      [
        "zerosform.nii",
        edit((v) => {
          v.setInt16(254, 1, true); // sform_code 1, srow_x all zero
          for (let c = 0; c < 4; c++) v.setFloat32(280 + c * 4, 0, true);
        }),
        /^Cannot read NIfTI file '.*zerosform\.nii' as its affine \(from sform\) is singular: the rotation-zoom part \[\[0,0,0\],\[0,1,0\],\[0,0,1\]\] has rank < 3, expected three independent voxel axes$/,
      ],
      [
        "rank2.nii",
        edit((v) => {
          v.setInt16(254, 1, true); // sform rows x and y equal: rank 2
          for (
            const [r, row] of [[1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0]]
              .entries()
          ) {
            row.forEach((x, c) => v.setFloat32(280 + (r * 4 + c) * 4, x, true));
          }
        }),
        /rank2\.nii' as its affine \(from sform\) is singular/,
      ],
    ];
    for (const [name, bytes, re] of cases) {
      const path = bytes === null ? `${dir}/${name}` : await put(name, bytes);
      await assert.rejects(
        () => readNifti(path),
        (e: Error) => {
          assert.ok(e instanceof Error, name);
          assert.match(e.message, re, name);
          assert.ok(e.message.includes(name), `${name}: ${e.message}`);
          return true;
        },
      );
    }
    // a directory where a file should be
    await Deno.mkdir(`${dir}/folder.nii.gz`);
    for (const read of [readNifti, readNiftiHeader]) {
      await assert.rejects(() => read(`${dir}/folder.nii.gz`), {
        name: "Error",
        message:
          `Cannot read NIfTI file '${dir}/folder.nii.gz' as it is a directory`,
      });
    }
    // corrupt gzip: flipped bytes, truncated, and garbage after the magic
    await writeNifti(`${dir}/g.nii.gz`, {
      data: new Float32Array(4000).map((_, i) => Math.sin(i)),
      dims: [20, 20, 10],
      spacing: [1, 1, 1],
      affine: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
    });
    const gz = await Deno.readFile(`${dir}/g.nii.gz`);
    const flipped = gz.slice();
    for (let i = 40; i < flipped.length - 10; i += 97) flipped[i]! ^= 0x5a;
    for (
      const [name, bytes] of [
        ["flip.nii.gz", flipped],
        ["cut.nii.gz", gz.slice(0, gz.length >> 1)],
        [
          "junk.nii.gz",
          new Uint8Array([0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7]),
        ],
      ] as const
    ) {
      const path = await put(name, bytes);
      await assert.rejects(
        () => readNifti(path),
        new RegExp(`${name.replace(".", "\\.")}' as its gzip data is corrupt`),
      );
    }
    // NaN/Inf: reported by default, an error on request
    const f = new Float32Array(24).fill(1);
    f[3] = NaN;
    f[5] = Infinity;
    f[7] = -Infinity;
    await writeNifti(`${dir}/nan.nii`, {
      data: f,
      dims: [4, 3, 2],
      spacing: [1, 1, 1],
      affine: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
    });
    const nan = await readNifti(`${dir}/nan.nii`);
    assert.equal(nan.nonFinite, 3);
    assert.ok(Number.isNaN(nan.data[3]));
    await assert.rejects(
      () => readNifti(`${dir}/nan.nii`, { nonFinite: "error" }),
      /nan\.nii' as it has 3 NaN or infinite voxels/,
    );
    // bytes in memory work too, gzip or not
    const fromBytes = await readNifti(ok);
    assert.deepEqual(Array.from(fromBytes.data).slice(0, 4), [0, 1, 2, 3]);
    assert.equal((await readNifti(gz)).data.length, 4000);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readNifti stops a gzip bomb at the size its header declares and reads multi-member gzip", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const ok = await validBytes(dir); // 352-byte header + 48 bytes of voxels
    // Bomb: the header declares 48 bytes of voxels, the data inflates to 64 MiB.
    const bomb = new Uint8Array(64 << 20);
    bomb.set(ok);
    await Deno.writeFile(`${dir}/bomb.nii.gz`, await gzip(bomb));
    await assert.rejects(() => readNifti(`${dir}/bomb.nii.gz`), {
      name: "Error",
      message:
        `Cannot read NIfTI file '${dir}/bomb.nii.gz' as its gzip data inflates past 1048976 bytes, while its header declares 400 (vox_offset 352 + 1×24 voxels × 2 bytes): stopped inflating (a decompression bomb?)`,
    });
    // The voxel cap is checked on the header, before the data is inflated.
    const huge = ok.slice();
    const v = new DataView(huge.buffer);
    for (const at of [42, 44, 46]) v.setInt16(at, 32000, true);
    await Deno.writeFile(`${dir}/huge.nii.gz`, await gzip(huge));
    await assert.rejects(
      () => readNifti(`${dir}/huge.nii.gz`),
      /huge\.nii\.gz' as its grid 32000×32000×32000 \(32768000000000 voxels\) is larger than the 1073741824 voxels one volume may have/,
    );
    // Concatenated gzip members (`cat a.gz b.gz`), as gzip and nibabel read.
    const want = await readNifti(ok);
    for (const cuts of [[100], [352], [200, 360, 399]]) {
      const members: Uint8Array[] = [];
      let from = 0;
      for (const c of [...cuts, ok.length]) {
        members.push(await gzip(ok.slice(from, c)));
        from = c;
      }
      const multi = new Uint8Array(members.reduce((n, m) => n + m.length, 0));
      let at = 0;
      for (const m of members) {
        multi.set(m, at);
        at += m.length;
      }
      await Deno.writeFile(`${dir}/multi.nii.gz`, multi);
      const got = await readNifti(`${dir}/multi.nii.gz`);
      assert.deepEqual(Array.from(got.data), Array.from(want.data), `${cuts}`);
      // Garbage after the last member is still an error.
      await Deno.writeFile(
        `${dir}/tail.nii.gz`,
        new Uint8Array([...multi, 1, 2, 3]),
      );
      await assert.rejects(
        () => readNifti(`${dir}/tail.nii.gz`),
        /tail\.nii\.gz' as its gzip data is corrupt or truncated: data after the end of gzip member at byte \d+ is not another gzip member/,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "readNifti reads the real files in ../shared/data with the dims, spacing, dtype and axcodes of SUMMARY.json",
  ignore: !sharedPresent,
  async fn() {
    const summary = JSON.parse(
      await Deno.readTextFile(`${SHARED!}SUMMARY.json`),
    ) as Record<
      string,
      {
        cases: {
          id: string;
          split: string;
          shape: number[];
          dtype: string;
          spacing: number[];
          axcodes: string;
          domain: string;
        }[];
      }
    >;
    for (const [task, info] of Object.entries(summary)) {
      const ds = await loadDataset(`${SHARED!}${task}/dataset.json`);
      const byId = new Map(
        [...ds.training, ...ds.validation, ...ds.test].map((e) => [e.id, e]),
      );
      // all of a small dataset; a spread of the 400 digits
      const cases = info.cases.filter((c) => c.split === "Tr")
        .filter((_, i, a) => a.length < 20 || i % 40 === 0);
      assert.ok(cases.length > 0, task);
      for (const c of cases) {
        const e = byId.get(c.id);
        assert.ok(e, `${task}/${c.id} listed in dataset.json`);
        assert.equal(e.domain, c.domain);
        const v = await readNifti(e.image);
        const want = [...c.shape, 1, 1].slice(0, 3);
        assert.deepEqual(v.dims, want, `${task}/${c.id}`);
        assertAlmostEquals(v.spacing, [...c.spacing, 1].slice(0, 3), 1e-4);
        assert.equal(
          v.data.constructor.name.replace("Array", "").toLowerCase(),
          c.dtype,
        );
        assert.equal(axisCodes(v.affine), c.axcodes, `${task}/${c.id}`);
        const lab = await readNifti(e.label!);
        assert.deepEqual(lab.dims, v.dims);
      }
    }
  },
});

/** Lower-case hex SHA-256 of `bytes`. */
async function sha256(bytes: Uint8Array | string): Promise<string> {
  const data = typeof bytes === "string"
    ? new TextEncoder().encode(bytes)
    : bytes.slice();
  return Array.from(
    new Uint8Array(await crypto.subtle.digest("SHA-256", data)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}

Deno.test("readNifti and writeNifti header bytes and fields stay as pinned", async () => {
  // A guard for refactors of the header code: the parsed fields of four
  // full headers (NIfTI-1 and -2, both byte orders, every field set) and
  // the bytes writeNifti writes for eight volumes are pinned by SHA-256.
  // The hashes were taken from the code before the header field table.
  const dir = await Deno.makeTempDir();
  try {
    await python(
      `
import sys, numpy as np, nibabel as nib
d = sys.argv[1]
a = np.arange(24, dtype="i2").reshape(2, 3, 4)
aff = np.array([[0, -1.25, 0.1, 30.5], [0.8, 0, 0, -20.25], [0, 0.05, 2.5, 7.125], [0, 0, 0, 1]])
q = np.array([[0, -1.25, 0, 30.5], [0.8, 0, 0, -20.25], [0, 0, -2.5, 7.125], [0, 0, 0, 1]])
for name, cls, endian in [("v1le.nii", nib.Nifti1Image, "<"), ("v1be.nii", nib.Nifti1Image, ">"),
                          ("v2le.nii", nib.Nifti2Image, "<"), ("v2be.nii", nib.Nifti2Image, ">")]:
    hdr = (nib.Nifti1Header if cls is nib.Nifti1Image else nib.Nifti2Header)(endianness=endian)
    img = cls(a, None, hdr)
    img.set_qform(q, code=1); img.set_sform(aff, code=2)
    h = img.header
    h.set_data_dtype(np.dtype("i2").newbyteorder(endian))
    h["descrip"] = b"pinned header"; h["aux_file"] = b"aux.txt"; h["intent_name"] = b"label"
    h["intent_code"] = 1002; h["intent_p1"] = 0.5; h["intent_p2"] = -1.5; h["intent_p3"] = 3
    h["dim_info"] = 57; h["slice_start"] = 1; h["slice_end"] = 2; h["slice_code"] = 1
    h["slice_duration"] = 0.25; h["toffset"] = 1.5; h["cal_min"] = -5; h["cal_max"] = 300
    h.set_xyzt_units("mm", "sec"); h.set_slope_inter(0.5, -10)
    nib.save(img, f"{d}/{name}")
`,
      [dir],
    );
    const parsed: Record<string, unknown> = {};
    for (const name of ["v1le", "v1be", "v2le", "v2be"]) {
      const path = `${dir}/${name}.nii`;
      const info = await readNiftiHeader(path);
      const volume = await readNifti(path);
      assert.deepEqual(volume.header, info.header, name);
      // `assumed` came after the pin; these headers are sound.
      const { assumed, ...pinned } = info;
      assert.deepEqual(assumed, [], name);
      parsed[name] = { ...pinned, data: Array.from(volume.data) };
    }
    assert.equal(
      await sha256(JSON.stringify(parsed)),
      "f5f0524621febcb4dfa766a37a80c9ba9b545aa7c53a4de8e829fa89933d9586",
      JSON.stringify(parsed),
    );

    const source = await readNifti(`${dir}/v1le.nii`);
    const source2 = await readNifti(`${dir}/v2be.nii`);
    const n = 24;
    const rotated = [
      [0, 0, 2, 1],
      [0, -3, 0, 2],
      [1.5, 0, 0, 3],
      [0, 0, 0, 1],
    ];
    const sheared = [
      [1, 0.5, 0, -4],
      [0, 1, 0, 5],
      [0, 0, 2, 6.5],
      [0, 0, 0, 1],
    ];
    const shifted = source.affine.map((r, i) =>
      i === 0 ? [r[0]!, r[1]!, r[2]!, r[3]! + 1] : r.slice()
    );
    const flat: Volume = {
      data: Uint8Array.from({ length: 12 }, (_, i) => i % 5),
      dims: [3, 4, 1],
      spacing: [0.5, 0.7, 1],
      affine: [[0.5, 0, 0, 0], [0, 0.7, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
    };
    await writeNifti(`${dir}/flat.nii`, flat);
    const flatSource = await readNifti(`${dir}/flat.nii`);
    const cases: [string, Volume, { datatype?: "int16" | "float64" }][] = [
      ["plain int16", {
        data: Int16Array.from({ length: n }, (_, i) => i * 37 - 400),
        dims: [2, 3, 4],
        spacing: [1.5, 3, 2],
        affine: rotated,
      }, {}],
      ["sheared float32", {
        data: Float32Array.from({ length: n }, (_, i) => Math.sin(i)),
        dims: [4, 3, 2],
        spacing: [1, 1, 2],
        affine: sheared,
      }, {}],
      ["float32 as int16", {
        data: Float32Array.from({ length: n }, (_, i) => i - 3),
        dims: [4, 3, 2],
        spacing: [1, 1, 2],
        affine: sheared,
      }, { datatype: "int16" }],
      ["source header kept", source, {}],
      ["source labels", { ...source, data: new Uint8Array(n).fill(3) }, {}],
      ["source affine moved", { ...source, affine: shifted }, {
        datatype: "float64",
      }],
      ["NIfTI-2 big-endian source", source2, {}],
      ["2D source", flatSource, {}],
    ];
    const written: Record<string, string> = {};
    for (const [i, [name, volume, options]] of cases.entries()) {
      await writeNifti(`${dir}/w${i}.nii`, volume, options);
      written[name] = await sha256(await Deno.readFile(`${dir}/w${i}.nii`));
    }
    assert.deepEqual(written, {
      "plain int16":
        "ca6cbafc21e64fb6c09ae069b646c6aed17661080758fa114390e236c4ab9b10",
      "sheared float32":
        "d6412570233cc38bdf039b95bba259b2d4805921e9e9d3727345bf3189058978",
      "float32 as int16":
        "de1c44e6de8a72bd9742c0e966ef2b19747534df09283bbc9bd841f740e13269",
      "source header kept":
        "e97672687424b65a3485001cc62b040b6befc3189c3ebc88cb5c36ef7ebfb530",
      "source labels":
        "5b1ebadfd45b9520e652d71ae41df079978b2004c1ea2da251320118f25b3619",
      "source affine moved":
        "4e9eb2f610663634f7fa8af63bfacc4962763b17a25797db4909715e5c1c543b",
      // float32 on disk: the NIfTI-2 source's fields round to the NIfTI-1 file's
      "NIfTI-2 big-endian source":
        "e97672687424b65a3485001cc62b040b6befc3189c3ebc88cb5c36ef7ebfb530",
      "2D source":
        "f4d2b2b5b44422d355c4592231ed9f8d1f37b6d0debc7fe11664273aa45553ec",
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readNifti reads a header string up to its first NUL, as nifti1_io does", async () => {
  // Some writers leave bytes after the terminating NUL of descrip; they are
  // not part of the string (nifti-reader-js, used before, skipped every NUL
  // and kept them: "kept" + "garbage").
  const dir = await Deno.makeTempDir();
  try {
    const bytes = await validBytes(dir);
    const descrip = new Uint8Array(80);
    descrip.set(new TextEncoder().encode("kept\0garbage"));
    bytes.set(descrip, 148); // descrip: char[80] at byte 148 of nifti1.h
    const v = await readNifti(bytes);
    assert.equal((v.header as NiftiHeader).description, "kept");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readNifti assumes 1 mm for a zero pixdim and |pixdim| for a negative one when qform and sform are unset, says so, and agrees with nibabel's zooms", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const ok = await validBytes(dir);
    const make = async (name: string, pixdim: number[], codes = 0) => {
      const b = ok.slice();
      const v = new DataView(b.buffer);
      pixdim.forEach((p, i) => v.setFloat32(80 + 4 * i, p, true));
      v.setInt16(252, codes, true);
      v.setInt16(254, codes, true);
      await Deno.writeFile(`${dir}/${name}`, b);
      return `${dir}/${name}`;
    };
    const zero = await make("zero.nii", [0, 0, 0]);
    const mixed = await make("mixed.nii", [0, -2.5, 3]);
    const sound = await make("sound.nii", [0.5, 0.5, 2]);
    const v = await readNifti(zero);
    assert.deepEqual(v.spacing, [1, 1, 1]);
    assert.deepEqual(v.assumed, [
      "pixdim[1..3] is [0,0,0] and qform_code and sform_code are 0: a voxel size of 1 mm was assumed along x, y, z, so distances in mm (HD95, ASSD) may be meaningless",
    ]);
    const m = await readNifti(mixed);
    assert.deepEqual(m.spacing, [1, 2.5, 3]);
    assert.deepEqual(m.affine.map((r, i) => r[i]), [1, 2.5, 3, 1]);
    assert.deepEqual((await readNiftiHeader(mixed)).assumed, [
      "pixdim[1..3] is [0,-2.5,3] and qform_code and sform_code are 0: a voxel size of 1 mm was assumed along x, so distances in mm (HD95, ASSD) may be meaningless",
      "pixdim[1..3] is [0,-2.5,3] and qform_code and sform_code are 0: the absolute value was used as the voxel size along y",
    ]);
    const s = await readNifti(sound);
    assert.deepEqual(s.spacing, [0.5, 0.5, 2]);
    assert.equal(s.assumed, undefined);
    // nibabel fixes such headers the same way (with its own warning).
    const zooms = JSON.parse(
      await python(
        `import sys, json, nibabel as nib
print(json.dumps([[float(z) for z in nib.load(p).header.get_zooms()] for p in sys.argv[1:]]))`,
        [zero, mixed, sound],
      ),
    );
    assert.deepEqual(zooms, [v.spacing, m.spacing, s.spacing]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
