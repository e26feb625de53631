/**
 * Model checkpoints: a `.safetensors` file with torchvision names and
 * PyTorch layouts (convolutions OIHW, dense weights `[out, in]`,
 * `num_batches_tracked` int64), plus a JSON config beside it. A checkpoint
 * loads one to one into the torchvision model of the same architecture
 * (`load_state_dict(..., strict=True)`), and back.
 */
import * as tf from "@tensorflow/tfjs";
import type { Module } from "./module.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  type SafetensorsEntry,
  type SafetensorsFile,
} from "./safetensors.ts";
import { sha256Hex, writeFileAtomic } from "../data/_io.ts";

/** Metadata key of the SHA-256 (hex) of the tensor data, checked on load. */
const CHECKSUM_KEY = "agcl_data_sha256";

/** The JSON config's path for a checkpoint: `x.safetensors` → `x.json`. */
export function configPath(path: string): string {
  return path.endsWith(".safetensors")
    ? `${path.slice(0, -".safetensors".length)}.json`
    : `${path}.json`;
}

/** tfjs layout → PyTorch layout: HWIO → OIHW, `[in, out]` → `[out, in]`. */
function toTorch(t: tf.Tensor): tf.Tensor {
  if (t.rank === 4) return tf.transpose(t, [3, 2, 0, 1]);
  if (t.rank === 2) return tf.transpose(t, [1, 0]);
  return t;
}

/** PyTorch layout → tfjs layout: OIHW → HWIO, `[out, in]` → `[in, out]`. */
function fromTorch(t: tf.Tensor): tf.Tensor {
  if (t.rank === 4) return tf.transpose(t, [2, 3, 1, 0]);
  if (t.rank === 2) return tf.transpose(t, [1, 0]);
  return t;
}

/** A variable's shape as PyTorch stores it. */
function torchShape(shape: number[]): number[] {
  if (shape.length === 4) return [shape[3]!, shape[2]!, shape[0]!, shape[1]!];
  if (shape.length === 2) return [shape[1]!, shape[0]!];
  return shape;
}

async function toEntry(v: tf.Variable): Promise<SafetensorsEntry> {
  if (v.dtype === "int32") {
    // BN's num_batches_tracked is int64 in PyTorch.
    const values = await v.data() as Int32Array;
    return {
      dtype: "I64",
      shape: v.shape,
      data: BigInt64Array.from(values, (x) => BigInt(x)),
    };
  }
  const t = toTorch(v);
  const data = await t.data() as Float32Array;
  if (t !== v) t.dispose();
  return { dtype: "F32", shape: torchShape(v.shape), data };
}

/** Options of {@linkcode saveCheckpoint}. */
export interface SaveCheckpointOptions {
  /** JSON-serialisable config. @default {model.config} */
  config?: unknown;
}

/**
 * Saves `model`'s parameters and state as `path` (safetensors, PyTorch
 * layouts) and its config as the `.json` beside it (`x.safetensors` →
 * `x.json`), each written atomically (temporary file, fsync, rename). The
 * config is also stored in the safetensors metadata under `config`.
 *
 * @example Save and restore a head
 * ```ts
 * import { createProjectionHead, loadInto, saveCheckpoint } from "@agcl/agcl/models";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const a = createProjectionHead({ inFeatures: 4, outFeatures: 2, seed: 1 });
 * await saveCheckpoint(`${dir}/head.safetensors`, a);
 * const b = createProjectionHead({ inFeatures: 4, outFeatures: 2, seed: 2 });
 * await loadInto(b, `${dir}/head.safetensors`);
 * for (const [name, v] of Object.entries(a.params)) {
 *   assert.deepEqual(await b.params[name]!.data(), await v.data());
 * }
 * a.dispose();
 * b.dispose();
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @param path Destination, normally ending in `.safetensors`.
 * @param model The model (or {@linkcode combineModels} of several).
 * @param options `config`: a JSON-serialisable config; defaults to
 * `model.config`.
 * @throws {Error} If a file cannot be written.
 */
export async function saveCheckpoint(
  path: string,
  model: Module,
  options: SaveCheckpointOptions = {},
): Promise<void> {
  const { config } = options;
  const entries: Record<string, SafetensorsEntry> = {};
  for (const group of [model.params, model.state]) {
    for (const [name, v] of Object.entries(group)) {
      entries[name] = await toEntry(v);
    }
  }
  const cfg = config === undefined ? model.config : config;
  const json = JSON.stringify(cfg ?? null, null, 2);
  const plain = encodeSafetensors(entries, { format: "pt", config: json });
  // The checksum covers the tensor data; it sits in the header it skips.
  const sum = await sha256Hex(plain.subarray(dataStart(plain)));
  await writeFileAtomic(
    path,
    encodeSafetensors(entries, {
      format: "pt",
      config: json,
      [CHECKSUM_KEY]: sum,
    }),
  );
  await writeFileAtomic(
    configPath(path),
    new TextEncoder().encode(`${json}\n`),
  );
}

async function readCheckpoint(
  path: string,
): Promise<SafetensorsFile & { config: unknown }> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new Error(
      `Cannot read checkpoint '${path}': ${e instanceof Error ? e.message : e}`,
      { cause: e },
    );
  }
  const file = decodeSafetensors(bytes, path);
  const want = file.metadata[CHECKSUM_KEY];
  if (want !== undefined) {
    const sum = await sha256Hex(bytes.subarray(dataStart(bytes)));
    if (sum !== want) {
      throw new Error(
        `Cannot read checkpoint '${path}' as the SHA-256 of its tensor data is ${sum}, expected ${want} (the file is corrupt)`,
      );
    }
  }
  let config: unknown = null;
  try {
    config = JSON.parse(await Deno.readTextFile(configPath(path)));
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      throw new Error(
        `Cannot read checkpoint config '${configPath(path)}': ${
          e instanceof Error ? e.message : e
        }`,
        {
          cause: e,
        },
      );
    }
    if (file.metadata.config !== undefined) {
      config = JSON.parse(file.metadata.config);
    }
  }
  return { ...file, config };
}

/** Offset of the tensor data in safetensors `bytes` (after the header). */
function dataStart(bytes: Uint8Array): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return 8 + Number(view.getBigUint64(0, true));
}

function toTensor(name: string, e: SafetensorsEntry, path: string): tf.Tensor {
  if (e.dtype === "F32" || e.dtype === "F64") {
    const data = e.data as Float32Array | Float64Array;
    const bad = data.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) {
      throw new Error(
        `Cannot read checkpoint '${path}' as tensor '${name}' holds a non-finite value (${
          data[bad]
        } at index ${bad})`,
      );
    }
    const t = tf.tensor(
      e.data instanceof Float32Array
        ? e.data
        : Float32Array.from(e.data as Float64Array),
      e.shape,
    );
    const out = fromTorch(t);
    if (out !== t) t.dispose();
    return out;
  }
  if (e.dtype === "I64") {
    const big = e.data as BigInt64Array;
    const values = Int32Array.from(big, (x) => {
      if (x > 2147483647n || x < -2147483648n) {
        throw new RangeError(
          `Cannot read checkpoint '${path}' as '${name}' holds ${x}, beyond int32`,
        );
      }
      return Number(x);
    });
    return tf.tensor(values, e.shape, "int32");
  }
  if (e.dtype === "I32") {
    return tf.tensor(e.data as Int32Array, e.shape, "int32");
  }
  throw new TypeError(
    `Cannot read checkpoint '${path}' as '${name}' has dtype ${e.dtype}`,
  );
}

/**
 * Reads a checkpoint written by {@linkcode saveCheckpoint} (or by PyTorch's
 * `safetensors.torch.save_file` from a matching model), converting layouts
 * back to tfjs's (HWIO, `[in, out]`, int64 → int32).
 *
 * @param path The `.safetensors` file.
 * @returns The tensors by name (the caller disposes them) and the config
 *   (from the `.json` beside it, else the metadata, else `null`).
 * @throws {Error} If the file is missing, truncated or malformed.
 */
export async function loadCheckpoint(
  path: string,
): Promise<{ tensors: Record<string, tf.Tensor>; config: unknown }> {
  const { tensors, config } = await readCheckpoint(path);
  const out: Record<string, tf.Tensor> = {};
  try {
    for (const [name, e] of Object.entries(tensors)) {
      out[name] = toTensor(name, e, path);
    }
  } catch (e) {
    tf.dispose(out);
    throw e;
  }
  return { tensors: out, config };
}

/** Options for {@linkcode loadInto}. */
export interface LoadIntoOptions {
  /**
   * Read only the file's names starting with this prefix, with it removed
   * (e.g. `"encoder."` to load the encoder of a stage-2 checkpoint).
   * @default {""}
   */
  prefix?: string;
  /**
   * Reject names in the file that the model lacks. Names the model has but
   * the file lacks are always an error.
   * @default {true}
   */
  strict?: boolean;
}

/**
 * Loads a checkpoint into `model`'s variables (parameters and state). Every
 * name, shape and dtype is checked before any variable changes, so a bad
 * file leaves the model as it was.
 *
 * @param model The model to fill.
 * @param path The `.safetensors` file.
 * @param options `prefix` and `strict`.
 * @returns The checkpoint's config.
 * @throws {Error} If the file is unreadable, or names, shapes or dtypes disagree (all listed).
 */
export async function loadInto(
  model: Module,
  path: string,
  options: LoadIntoOptions = {},
): Promise<{ config: unknown }> {
  const { prefix = "", strict = true } = options;
  const { tensors, config } = await readCheckpoint(path);
  const file = new Map<string, SafetensorsEntry>();
  for (const [name, e] of Object.entries(tensors)) {
    if (name.startsWith(prefix)) file.set(name.slice(prefix.length), e);
  }
  const targets: Record<string, tf.Variable> = {
    ...model.params,
    ...model.state,
  };
  const problems: string[] = [];
  const missing = Object.keys(targets).filter((k) => !file.has(k));
  if (missing.length > 0) problems.push(`missing keys: ${missing.join(", ")}`);
  if (strict) {
    const extra = [...file.keys()].filter((k) => !(k in targets));
    if (extra.length > 0) problems.push(`unexpected keys: ${extra.join(", ")}`);
  }
  for (const [name, v] of Object.entries(targets)) {
    const e = file.get(name);
    if (!e) continue;
    const want = torchShape(v.shape);
    if (
      e.shape.length !== want.length || e.shape.some((d, i) => d !== want[i])
    ) {
      problems.push(
        `'${name}' has shape [${e.shape}] in the file but the model expects [${want}]`,
      );
    }
    const ok = v.dtype === "int32"
      ? e.dtype === "I64" || e.dtype === "I32"
      : e.dtype === "F32" || e.dtype === "F64";
    if (!ok) {
      problems.push(
        `'${name}' has dtype ${e.dtype} in the file but the model expects ${
          v.dtype === "int32" ? "I64" : "F32"
        }`,
      );
    }
  }
  if (problems.length > 0) {
    throw new Error(
      `Cannot load checkpoint '${path}' into the model: ${problems.join("; ")}`,
    );
  }
  const values: [tf.Variable, tf.Tensor][] = [];
  try {
    for (const [name, v] of Object.entries(targets)) {
      values.push([v, toTensor(prefix + name, file.get(name)!, path)]);
    }
    for (const [v, t] of values) v.assign(t);
  } finally {
    tf.dispose(values.map(([, t]) => t));
  }
  return { config };
}
