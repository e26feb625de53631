/**
 * Model checkpoints: a `.safetensors` file with torchvision names and
 * PyTorch layouts (convolutions OIHW, dense weights `[out, in]`,
 * `num_batches_tracked` int64), plus a JSON sidecar beside it (the
 * config, the file's size and SHA-256, and for a run's checkpoints the
 * optimiser and stream state). A checkpoint loads one to one into the
 * torchvision model of the same architecture (`load_state_dict(...,
 * strict=True)`), and back. Every weight file the project writes, a run's
 * checkpoints and `model/` included, goes through here.
 */
import * as tf from "@tensorflow/tfjs";
import {
  decodeSafetensors,
  encodeSafetensors,
  type SafetensorsEntry,
} from "./safetensors.ts";
import { permuteLayout, torchShape } from "./_layout.ts";
import { sha256Hex, writeFileAtomic } from "../data/_io.ts";

/** Metadata key of the SHA-256 (hex) of the tensor data, checked on load. */
const CHECKSUM_KEY = "agcl_data_sha256";

/** The `format` of a checkpoint's `.json` sidecar. */
export const CHECKPOINT_FORMAT = "agcl.checkpoint";

/**
 * What a checkpoint's `.json` sidecar holds: one format for every weight
 * file the project writes. A run's checkpoints add their training state
 * (stage, epoch, step, optimiser and stream state) as further fields.
 */
export interface CheckpointSidecar {
  /** Always {@linkcode CHECKPOINT_FORMAT}. */
  format: typeof CHECKPOINT_FORMAT;
  /** Version of the sidecar format (1). */
  version: number;
  /** How to rebuild the model (JSON), or `null`. */
  config: unknown;
  /** Byte length of the `.safetensors` file, checked on load. */
  bytes: number;
  /** SHA-256 of the `.safetensors` file (lower-case hex), checked on load. */
  sha256: string;
  /** Further fields (a run checkpoint's training state). */
  [field: string]: unknown;
}

/** Fields of the sidecar that {@linkcode saveCheckpoint} fills itself. */
const RESERVED = ["format", "version", "config", "bytes", "sha256"];

/** The JSON sidecar's path for a checkpoint: `x.safetensors` → `x.json`. */
export function configPath(path: string): string {
  return path.endsWith(".safetensors")
    ? `${path.slice(0, -".safetensors".length)}.json`
    : `${path}.json`;
}

/** Named variables to save or fill: a {@linkcode Module} or a plain record. */
export interface CheckpointVariables {
  /** Trainable variables by torchvision name. */
  readonly params: Record<string, tf.Variable>;
  /** Non-trainable state (BN running statistics) by torchvision name. */
  readonly state: Record<string, tf.Variable>;
  /** The configuration saved beside the weights. */
  readonly config?: unknown;
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
  const data = await v.data() as Float32Array;
  return {
    dtype: "F32",
    shape: torchShape(v.shape),
    data: permuteLayout(data, v.shape, { toTorch: true }),
  };
}

/** Options of {@linkcode saveCheckpoint}. */
export interface SaveCheckpointOptions {
  /** JSON-serialisable config. @default {model.config} */
  config?: unknown;
  /**
   * Further JSON fields for the sidecar (a run checkpoint's training
   * state); they may not be named `format`, `version`, `config`, `bytes`
   * or `sha256`.
   * @default {{}}
   */
  sidecar?: Record<string, unknown>;
}

/**
 * Saves `model`'s parameters and state as `path` (safetensors, PyTorch
 * layouts, torchvision names) and its sidecar as the `.json` beside it
 * (`x.safetensors` → `x.json`: the config, the file's size and SHA-256, and
 * any `sidecar` fields), each written atomically (temporary file, fsync,
 * rename), the sidecar last. The config is also stored in the safetensors
 * metadata under `config`.
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
 * @param model The model (or {@linkcode combineModels} of several, or a
 *   plain record of variables).
 * @param options `config`: a JSON-serialisable config, defaulting to
 *   `model.config`; `sidecar`: further fields for the `.json`.
 * @returns The sidecar as written.
 * @throws {TypeError} If a `sidecar` field has a reserved name.
 * @throws {Error} If a file cannot be written.
 */
export async function saveCheckpoint(
  path: string,
  model: CheckpointVariables,
  options: SaveCheckpointOptions = {},
): Promise<CheckpointSidecar> {
  const { config, sidecar = {} } = options;
  const clash = Object.keys(sidecar).filter((k) => RESERVED.includes(k));
  if (clash.length > 0) {
    throw new TypeError(
      `Cannot save checkpoint '${path}' as 'sidecar' has reserved field(s) ${
        clash.join(", ")
      }`,
    );
  }
  const entries: Record<string, SafetensorsEntry> = {};
  for (const group of [model.params, model.state]) {
    for (const [name, v] of Object.entries(group)) {
      entries[name] = await toEntry(v);
    }
  }
  const cfg = (config === undefined ? model.config : config) ?? null;
  const json = JSON.stringify(cfg, null, 2);
  const plain = encodeSafetensors(entries, { format: "pt", config: json });
  // The checksum covers the tensor data; it sits in the header it skips.
  const sum = await sha256Hex(plain.subarray(dataStart(plain)));
  const bytes = encodeSafetensors(entries, {
    format: "pt",
    config: json,
    [CHECKSUM_KEY]: sum,
  });
  await writeFileAtomic(path, bytes);
  const written: CheckpointSidecar = {
    format: CHECKPOINT_FORMAT,
    version: 1,
    config: cfg,
    bytes: bytes.length,
    sha256: await sha256Hex(bytes),
    ...sidecar,
  };
  await writeFileAtomic(
    configPath(path),
    `${JSON.stringify(written, null, 2)}\n`,
  );
  return written;
}

/** A checkpoint read and verified by {@linkcode readCheckpoint}. */
export interface CheckpointFile {
  /** The `.safetensors` file. */
  path: string;
  /** Tensors by name, in PyTorch layouts, as in the file. */
  tensors: Record<string, SafetensorsEntry>;
  /** The safetensors `__metadata__`. */
  metadata: Record<string, string>;
  /** The `.json` sidecar, or `null` when there is none (or a bare config). */
  sidecar: CheckpointSidecar | null;
  /** The config: the sidecar's, else the metadata's, else `null`. */
  config: unknown;
}

/** Options for {@linkcode readCheckpoint}. */
export interface ReadCheckpointOptions {
  /**
   * The sidecar, already read (it is then not read again).
   * @default {read from the `.json` beside `path` when present}
   */
  sidecar?: CheckpointSidecar;
}

function describe(e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return "it does not exist";
  return e instanceof Error ? e.message : String(e);
}

/**
 * Reads a checkpoint and verifies it: the size and SHA-256 its sidecar
 * records, the checksum in its metadata, the safetensors structure, and
 * that every float value is finite. Tensors stay in PyTorch layouts. A
 * sidecar that is a bare JSON config (as checkpoints of earlier versions
 * wrote it) is read as the config.
 *
 * @param path The `.safetensors` file.
 * @param options The sidecar when already read.
 * @returns The tensors, metadata, sidecar and config.
 * @throws {Error} Naming the file that is missing, truncated, corrupt or
 *   holds a non-finite value (and the tensor).
 */
export async function readCheckpoint(
  path: string,
  options: ReadCheckpointOptions = {},
): Promise<CheckpointFile> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new Error(`Cannot read checkpoint '${path}': ${describe(e)}`, {
      cause: e,
    });
  }
  let json: unknown = options.sidecar;
  if (json === undefined) {
    try {
      json = JSON.parse(await Deno.readTextFile(configPath(path)));
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) {
        throw new Error(
          `Cannot read checkpoint config '${configPath(path)}': ${describe(e)}`,
          { cause: e },
        );
      }
    }
  }
  const sidecar = isSidecar(json) ? json : null;
  if (sidecar) {
    if (bytes.length !== sidecar.bytes) {
      throw new Error(
        `Cannot read checkpoint '${path}' as it has ${bytes.length} bytes, expected ${sidecar.bytes}`,
      );
    }
    const sum = await sha256Hex(bytes);
    if (sum !== sidecar.sha256) {
      throw new Error(
        `Cannot read checkpoint '${path}' as its SHA-256 is ${sum}, expected ${sidecar.sha256} (the file is corrupt)`,
      );
    }
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
  for (const [name, e] of Object.entries(file.tensors)) {
    if (e.dtype !== "F32" && e.dtype !== "F64") continue;
    const data = e.data as Float32Array | Float64Array;
    const bad = data.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) {
      throw new Error(
        `Cannot read checkpoint '${path}' as tensor '${name}' holds a non-finite value (${
          data[bad]
        } at index ${bad})`,
      );
    }
  }
  let config: unknown = null;
  if (sidecar) config = sidecar.config;
  else if (json !== undefined) config = json;
  else if (file.metadata.config !== undefined) {
    config = JSON.parse(file.metadata.config);
  }
  return { path, ...file, sidecar, config };
}

function isSidecar(j: unknown): j is CheckpointSidecar {
  if (typeof j !== "object" || j === null) return false;
  const s = j as Record<string, unknown>;
  return s.format === CHECKPOINT_FORMAT && Number.isInteger(s.bytes) &&
    typeof s.sha256 === "string";
}

/** Offset of the tensor data in safetensors `bytes` (after the header). */
function dataStart(bytes: Uint8Array): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return 8 + Number(view.getBigUint64(0, true));
}

function toTensor(name: string, e: SafetensorsEntry, path: string): tf.Tensor {
  if (e.dtype === "F32" || e.dtype === "F64") {
    const data = e.data instanceof Float32Array
      ? e.data
      : Float32Array.from(e.data as Float64Array);
    // The tfjs shape of a PyTorch shape: OIHW → HWIO, [out, in] → [in, out].
    const s = e.shape;
    const shape = s.length === 4
      ? [s[2]!, s[3]!, s[1]!, s[0]!]
      : s.length === 2
      ? [s[1]!, s[0]!]
      : s;
    return tf.tensor(permuteLayout(data, shape, { toTorch: false }), shape);
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
 * @param model The model to fill (or a plain record of variables).
 * @param source The `.safetensors` file, or a checkpoint already read by
 *   {@linkcode readCheckpoint}.
 * @param options `prefix` and `strict`.
 * @returns The checkpoint's config.
 * @throws {Error} If the file is unreadable, or names, shapes or dtypes disagree (all listed).
 */
export async function loadInto(
  model: CheckpointVariables,
  source: string | CheckpointFile,
  options: LoadIntoOptions = {},
): Promise<{ config: unknown }> {
  const { prefix = "", strict = true } = options;
  const { tensors, config, path } = typeof source === "string"
    ? await readCheckpoint(source)
    : source;
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
