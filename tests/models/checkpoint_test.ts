import "./_setup.ts";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  combineModels,
  createDeepLab,
  createEncoder,
  createProjectionHead,
  decodeSafetensors,
  encodeSafetensors,
  loadCheckpoint,
  loadInto,
  saveCheckpoint,
} from "../../models/mod.ts";
import { assertAlmostEquals } from "../_utils.ts";
import { sha256Hex } from "../../data/_io.ts";

const TINY = {
  depth: 18,
  inChannels: 2,
  stem: "cifar",
  widthMultiplier: 0.125,
  asppChannels: 8,
} as const;

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "agcl-ckpt-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("saveCheckpoint() writes torchvision names and PyTorch layouts, atomically", async () => {
  await withDir(async (dir) => {
    const net = createDeepLab({ ...TINY, seed: 1 });
    tf.dispose(
      net.apply(tf.ones([2, 8, 8, 2]) as tf.Tensor4D, { training: true }),
    ); // non-trivial BN state
    const path = `${dir}/segment-epoch1.safetensors`;
    await saveCheckpoint(path, net, { config: { stage: "segment" } });
    assert.deepEqual(
      (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort(),
      [
        "segment-epoch1.json",
        "segment-epoch1.safetensors",
      ],
    );
    const bytes = await Deno.readFile(path);
    assert.deepEqual(
      JSON.parse(await Deno.readTextFile(`${dir}/segment-epoch1.json`)),
      {
        format: "agcl.checkpoint",
        version: 1,
        config: { stage: "segment" },
        bytes: bytes.length,
        sha256: await sha256Hex(bytes),
      },
    );
    const { tensors, metadata } = decodeSafetensors(bytes, path);
    assert.equal(metadata.format, "pt");
    assert.deepEqual(
      Object.keys(tensors).sort(),
      [...Object.keys(net.params), ...Object.keys(net.state)].sort(),
    );
    const conv = tensors["backbone.conv1.weight"]!;
    assert.deepEqual([conv.dtype, conv.shape], ["F32", [8, 2, 3, 3]]); // OIHW
    // Element [o, i, y, x] of the file is element [y, x, i, o] of the variable.
    const hwio = await net.params["backbone.conv1.weight"]!
      .array() as number[][][][];
    assert.equal(
      (conv.data as Float32Array)[((5 * 2 + 1) * 3 + 2) * 3 + 0],
      Math.fround(hwio[2]![0]![1]![5]!),
    );
    const count = tensors["backbone.bn1.num_batches_tracked"]!;
    assert.deepEqual([
      count.dtype,
      count.shape,
      Array.from(count.data as BigInt64Array),
    ], ["I64", [], [1n]]);
    net.dispose();
  });
});

Deno.test("loadInto() restores every parameter and statistic, so outputs match", async () => {
  await withDir(async (dir) => {
    const a = createDeepLab({ ...TINY, lowLevelSkip: true, seed: 1 });
    const x = tf.randomNormal(
      [2, 16, 16, 2],
      0,
      1,
      "float32",
      2,
    ) as tf.Tensor4D;
    tf.dispose(a.apply(x, { training: true }));
    await saveCheckpoint(`${dir}/a.safetensors`, a);
    const b = createDeepLab({ ...TINY, lowLevelSkip: true, seed: 2 });
    const before = tf.memory().numTensors;
    const { config } = await loadInto(b, `${dir}/a.safetensors`);
    assert.equal(tf.memory().numTensors, before);
    assert.deepEqual(config, JSON.parse(JSON.stringify(a.config)));
    for (const [k, v] of Object.entries({ ...a.params, ...a.state })) {
      const w = (b.params[k] ?? b.state[k])!;
      assert.deepEqual(await w.data(), await v.data(), k);
    }
    const ya = a.apply(x), yb = b.apply(x);
    assertAlmostEquals(await yb.data(), await ya.data(), 0);
    tf.dispose([x, ya, yb]);
    a.dispose();
    b.dispose();
  });
});

Deno.test("loadCheckpoint() returns tfjs layouts and the config; loadInto() takes a prefix", async () => {
  await withDir(async (dir) => {
    const encoder = createEncoder({ ...TINY, seed: 3 });
    const head = createProjectionHead({
      inFeatures: encoder.featureChannels,
      outFeatures: 4,
    });
    const path = `${dir}/pretrain.safetensors`;
    await saveCheckpoint(path, combineModels({ encoder, "": head }));
    const { tensors, config } = await loadCheckpoint(path);
    assert.deepEqual(tensors["encoder.conv1.weight"]!.shape, [3, 3, 2, 8]);
    assert.deepEqual(tensors["head.0.weight"]!.shape, [64, 64]);
    assert.equal(tensors["encoder.bn1.num_batches_tracked"]!.dtype, "int32");
    assert.deepEqual(
      await tensors["head.2.weight"]!.data(),
      await head.params["head.2.weight"]!.data(),
    );
    assert.deepEqual(Object.keys(config as object), ["encoder", ""]);
    tf.dispose(tensors);
    // Stage 3 starts from the stage-2 encoder alone.
    const fresh = createEncoder({ ...TINY, seed: 4 });
    // Names outside the prefix (the head) are not the model's concern.
    await loadInto(fresh, path, { prefix: "encoder." });
    assert.deepEqual(
      await fresh.params["layer4.1.conv2.weight"]!.data(),
      await encoder.params["layer4.1.conv2.weight"]!.data(),
    );
    // Extra names fail a strict load and are skipped by a lenient one.
    const flat = `${dir}/flat.safetensors`;
    await saveCheckpoint(flat, combineModels({ "": encoder, h: head }));
    await assert.rejects(() => loadInto(fresh, flat), {
      message: /unexpected keys: h\.head\.0\.weight/u,
    });
    await loadInto(fresh, flat, { strict: false });
    [encoder, head, fresh].forEach((m) => m.dispose());
  });
});

Deno.test("loadInto() names missing and unexpected keys, shape and dtype mismatches, and changes nothing", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/e.safetensors`;
    const small = createEncoder({ ...TINY, seed: 5 });
    await saveCheckpoint(path, small);
    const other = createEncoder({ ...TINY, inChannels: 3, seed: 6 });
    const before = await other.params["layer1.0.conv1.weight"]!.data();
    await assert.rejects(() => loadInto(other, path), {
      message:
        `Cannot load checkpoint '${path}' into the model: 'conv1.weight' has shape [8,2,3,3] in the file but the model expects [8,3,3,3]`,
    });
    assert.deepEqual(
      await other.params["layer1.0.conv1.weight"]!.data(),
      before,
    );
    const deeper = createEncoder({ ...TINY, depth: 34 });
    await assert.rejects(() => loadInto(deeper, path), {
      message: /missing keys: layer1\.2\.conv1\.weight, /u,
    });
    const shallow = createDeepLab({ ...TINY });
    await assert.rejects(
      () => loadInto(shallow.encoder, `${dir}/none.safetensors`),
      {
        message: /Cannot read checkpoint '.*none\.safetensors'/u,
      },
    );
    await saveCheckpoint(`${dir}/d.safetensors`, shallow);
    await assert.rejects(
      () => loadInto(small, `${dir}/d.safetensors`, { prefix: "" }),
      {
        message:
          /missing keys: conv1\.weight, .*; unexpected keys: backbone\.conv1\.weight/u,
      },
    );
    [small, other, deeper, shallow].forEach((m) => m.dispose());
  });
});

Deno.test("reading a truncated or malformed checkpoint fails clearly", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/h.safetensors`;
    const head = createProjectionHead({ inFeatures: 4, outFeatures: 2 });
    await saveCheckpoint(path, head);
    const bytes = await Deno.readFile(path);
    await Deno.remove(`${dir}/h.json`);
    const cut = `${dir}/cut.safetensors`;
    await Deno.writeFile(cut, bytes.subarray(0, bytes.length - 3));
    await assert.rejects(() => loadInto(head, cut), {
      message:
        /Cannot read safetensors '.*cut\.safetensors': the file is truncated: 'head\.2\.bias' ends at data byte 120 but only 117 are present/u,
    });
    await Deno.writeFile(cut, bytes.subarray(0, 5));
    await assert.rejects(() => loadCheckpoint(cut), {
      message: /the file is truncated \(5 bytes, no 8-byte header length\)/u,
    });
    await Deno.writeFile(cut, bytes.subarray(0, 40));
    await assert.rejects(() => loadCheckpoint(cut), {
      message: /the header alone needs/u,
    });
    const bad = Uint8Array.from(bytes);
    bad[9] = "!".charCodeAt(0);
    await Deno.writeFile(cut, bad);
    await assert.rejects(() => loadCheckpoint(cut), {
      message: /the header is not valid JSON/u,
    });
    const extra = new Uint8Array(bytes.length + 4);
    extra.set(bytes);
    await Deno.writeFile(cut, extra);
    await assert.rejects(() => loadCheckpoint(cut), {
      message: /4 bytes after the last tensor belong to no tensor/u,
    });
    // Without the .json, the config comes from the metadata.
    assert.deepEqual((await loadInto(head, path)).config, head.config);
    head.dispose();
  });
});

Deno.test("loading a checkpoint refuses same-size corruption and non-finite values, naming the file and tensor", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/h.safetensors`;
    const head = createProjectionHead({ inFeatures: 4, outFeatures: 2 });
    await saveCheckpoint(path, head);
    const bytes = await Deno.readFile(path);
    const bad = Uint8Array.from(bytes);
    bad.fill(0xff, bad.length - 8); // the last two float32 values become NaN
    await Deno.writeFile(path, bad);
    for (
      const load of [() => loadCheckpoint(path), () => loadInto(head, path)]
    ) {
      // The sidecar's SHA-256 of the file, then (without the sidecar) the
      // metadata's SHA-256 of the tensor data.
      for (const what of ["", " of its tensor data"]) {
        if (what) await Deno.rename(`${dir}/h.json`, `${dir}/h.json.off`);
        await assert.rejects(load, {
          name: "Error",
          message: new RegExp(
            `^Cannot read checkpoint '${path}' as (the|its) SHA-256${what} is [0-9a-f]{64}, expected [0-9a-f]{64} \\(the file is corrupt\\)$`,
            "u",
          ),
        });
        if (what) await Deno.rename(`${dir}/h.json.off`, `${dir}/h.json`);
      }
    }
    // A file without the checksum (as PyTorch writes it) still has its
    // non-finite values refused.
    const plain = `${dir}/plain.safetensors`;
    await Deno.writeFile(
      plain,
      encodeSafetensors({
        "fc.weight": {
          dtype: "F32",
          shape: [3],
          data: Float32Array.of(1, Infinity, 2),
        },
      }),
    );
    await assert.rejects(() => loadCheckpoint(plain), {
      name: "Error",
      message: new RegExp(
        `^Cannot read checkpoint '${plain}' as tensor 'fc\\.weight' holds a non-finite value \\(Infinity at index 1\\)$`,
        "u",
      ),
    });
    head.dispose();
  });
});
