/**
 * The loop every training stage shares: epochs of steps, one log line per
 * step, a progress bar, and an atomic checkpoint at the end of each epoch
 * (variables, optimiser slots, RNG and stream state), so that `--resume`
 * continues from the last complete epoch.
 */
import type * as tf from "@tensorflow/tfjs";
import type { Optimizer, OptimizerState } from "./optim.ts";
import { Progress, type ProgressMode } from "./progress.ts";
import {
  type CheckpointMeta,
  type LastPointer,
  readCheckpointFiles,
  type RunDir,
  type SavedOptimizer,
  type Stage,
} from "./run_dir.ts";
import { sha256Hex } from "../data/_io.ts";
import {
  type CheckpointFile,
  loadInto,
  saveCheckpoint,
} from "../models/checkpoint.ts";
import { permuteLayout, torchShape } from "../models/_layout.ts";
import type { StageValidation } from "./validation.ts";

/** A training stage for {@linkcode runStage}. */
export interface StageSpec {
  /** Stage name. */
  stage: Stage;
  /** Epochs. */
  epochs: number;
  /** Steps per epoch. */
  stepsPerEpoch: number;
  /** Every variable saved in the checkpoint (parameters and BN statistics). */
  variables: Record<string, tf.Variable>;
  /** The optimiser, or `null` for a stage without training. */
  optimizer: Optimizer | null;
  /** JSON state saved with each checkpoint. */
  getExtra(): unknown;
  /** Restores {@linkcode StageSpec.getExtra}'s value. */
  setExtra(extra: unknown): void;
  /** Runs one step (0-based over the stage) and returns the loss and lr. */
  step(epoch: number, step: number): Promise<{ loss: number; lr: number }>;
  /**
   * Scores the network on a held-out sample at the end of each epoch; the
   * result goes into `log.jsonl` as a validation line. Absent: no check.
   */
  validate?: () => Promise<StageValidation>;
}

/** Shared state of a run's stages. */
export interface StageContext {
  /** The run directory. */
  run: RunDir;
  /** Progress display. */
  progress: ProgressMode;
  /** Final checkpoint of each finished stage. */
  finished: Partial<Record<Stage, string>>;
  /** The checkpoint a resumed run continues from. */
  last?: LastPointer;
}

/** Base64 of bytes (chunked: `String.fromCharCode` takes few arguments). */
function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

function fromBase64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/** The variable a slot named `<variable>/<slot>` belongs to. */
function slotOwner(
  slot: string,
  variables: Record<string, tf.Variable>,
  source: string,
): tf.Variable {
  const v = variables[slot.slice(0, slot.lastIndexOf("/"))];
  if (!v) {
    throw new Error(
      `Cannot use optimiser slot '${slot}' of ${source} as it names no variable of the stage`,
    );
  }
  return v;
}

/** The optimiser's slots in PyTorch layouts (as the variables), for the sidecar. */
async function saveOptimizer(
  state: OptimizerState,
  variables: Record<string, tf.Variable>,
): Promise<SavedOptimizer> {
  const slots: SavedOptimizer["slots"] = {};
  const parts: Uint8Array[] = [];
  for (const [k, d] of Object.entries(state.slots)) {
    const v = slotOwner(k, variables, "the optimiser");
    const t = permuteLayout(d, v.shape, { toTorch: true });
    const bytes = new Uint8Array(t.buffer, t.byteOffset, t.byteLength);
    slots[k] = { shape: torchShape(v.shape), base64: toBase64(bytes) };
    parts.push(bytes);
  }
  return { step: state.step, slots, sha256: await sha256Hex(concat(parts)) };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Reads the sidecar's optimiser state back into tfjs layouts, verified. */
async function loadOptimizer(
  saved: SavedOptimizer,
  variables: Record<string, tf.Variable>,
  source: string,
): Promise<OptimizerState> {
  const slots: Record<string, Float32Array> = {};
  const parts: Uint8Array[] = [];
  for (const [k, { shape, base64 }] of Object.entries(saved.slots)) {
    const v = slotOwner(k, variables, source);
    const want = torchShape(v.shape);
    const bytes = fromBase64(base64);
    if (
      shape.length !== want.length || shape.some((d, i) => d !== want[i]) ||
      bytes.length !== v.size * 4
    ) {
      throw new Error(
        `Cannot read ${source} as optimiser slot '${k}' has shape [${shape}] and ${bytes.length} bytes, expected [${want}] and ${
          v.size * 4
        }`,
      );
    }
    parts.push(bytes);
    const data = new Float32Array(bytes.buffer, 0, v.size);
    slots[k] = permuteLayout(data, v.shape, { toTorch: false });
  }
  const sum = await sha256Hex(concat(parts));
  if (sum !== saved.sha256) {
    throw new Error(
      `Cannot read ${source} as the SHA-256 of its optimiser slots is ${sum}, expected ${saved.sha256} (the file is corrupt)`,
    );
  }
  return { step: saved.step, slots };
}

/**
 * Writes one checkpoint through `models/checkpoint.ts`: the variables as
 * a PyTorch state dict (`<base>.safetensors`, torchvision names, PyTorch
 * layouts), then the sidecar (`<base>.json`) with the training state
 * (stage, epoch, step, stream state, optimiser), each atomically.
 */
export async function saveStageCheckpoint(
  run: RunDir,
  name: string,
  variables: Record<string, tf.Variable>,
  optimizer: OptimizerState | null,
  meta: Pick<
    CheckpointMeta,
    "stage" | "epoch" | "step" | "extra" | "stageDone"
  >,
): Promise<void> {
  await saveCheckpoint(
    `${run.checkpointBase(name)}.safetensors`,
    { params: variables, state: {} },
    {
      config: null,
      sidecar: {
        ...meta,
        optimizer: optimizer ? await saveOptimizer(optimizer, variables) : null,
      },
    },
  );
}

/** A checkpoint read back. */
export interface LoadedCheckpoint {
  /** Its metadata (the sidecar). */
  meta: CheckpointMeta;
  /** The verified tensor file (PyTorch layouts). */
  file: CheckpointFile;
}

/**
 * Reads a checkpoint, checking its size and SHA-256 against its `.json`
 * and that every value is finite.
 *
 * @throws {Error} For a missing, truncated or corrupt checkpoint, naming the
 *   file (and the tensor holding a non-finite value), or one in the format
 *   of earlier versions.
 */
export async function loadStageCheckpoint(
  run: RunDir,
  name: string,
): Promise<LoadedCheckpoint> {
  return await readCheckpointFiles(run.checkpointBase(name));
}

/**
 * Assigns a checkpoint's values to the stage's variables (every variable
 * present with its shape and dtype, and nothing else) and returns the
 * optimiser state its sidecar holds.
 *
 * @throws {Error} Naming the checkpoint and the mismatched names.
 */
export async function restoreCheckpoint(
  variables: Record<string, tf.Variable>,
  ck: LoadedCheckpoint,
): Promise<OptimizerState | null> {
  await loadInto({ params: variables, state: {} }, ck.file);
  const saved = ck.meta.optimizer;
  return saved
    ? await loadOptimizer(saved, variables, `checkpoint '${ck.file.path}'`)
    : null;
}

/**
 * Runs (or resumes) one stage and returns the name of its final checkpoint.
 *
 * @param ctx Run directory, progress mode, finished stages.
 * @param spec The stage.
 * @param resume The checkpoint to continue from (same stage, unfinished).
 */
export async function runStage(
  ctx: StageContext,
  spec: StageSpec,
  resume?: LastPointer,
): Promise<string> {
  const { run } = ctx;
  const total = spec.epochs * spec.stepsPerEpoch;
  let epoch = 0;
  let step = 0;
  if (resume && resume.stage === spec.stage) {
    const ck = await loadStageCheckpoint(run, resume.name);
    const opt = await restoreCheckpoint(spec.variables, ck);
    if (spec.optimizer && opt) spec.optimizer.setState(opt);
    spec.setExtra(ck.meta.extra);
    epoch = ck.meta.epoch;
    step = ck.meta.step;
    await run.truncateLog(spec.stage, step);
  }
  const bar = new Progress(`${spec.stage}`, total, { mode: ctx.progress });
  bar.reset(step);
  const save = async (done: boolean) => {
    const name = `${spec.stage}-epoch${epoch}`;
    await saveStageCheckpoint(
      run,
      name,
      spec.variables,
      spec.optimizer ? await spec.optimizer.getState() : null,
      {
        stage: spec.stage,
        epoch,
        step,
        extra: spec.getExtra(),
        stageDone: done,
      },
    );
    const finished = done
      ? { ...ctx.finished, [spec.stage]: name }
      : { ...ctx.finished };
    await run.setLast({
      stage: spec.stage,
      epoch,
      step,
      name,
      stageDone: done,
      finished,
    });
    return name;
  };
  if (total === 0) {
    bar.done();
    const name = await save(true);
    ctx.finished[spec.stage] = name;
    return name;
  }
  // A resumed stage whose last epoch was already saved runs no epoch.
  let name = resume && resume.stage === spec.stage ? resume.name : "";
  let lastLoss = NaN;
  let val = "";
  for (; epoch < spec.epochs;) {
    for (
      let i = step - epoch * spec.stepsPerEpoch;
      i < spec.stepsPerEpoch;
      i++
    ) {
      const t0 = performance.now();
      const { loss, lr } = await spec.step(epoch, step);
      const ms = Math.round(performance.now() - t0);
      step++;
      lastLoss = loss;
      await run.appendLog({ stage: spec.stage, epoch, step, loss, lr, ms });
      bar.tick(1, `loss ${loss.toFixed(4)}${val}`);
    }
    if (spec.validate) {
      const t0 = performance.now();
      const v = await spec.validate();
      const ms = Math.round(performance.now() - t0);
      await run.appendLog({
        stage: spec.stage,
        kind: "validation",
        epoch,
        step,
        ...v,
        ms,
      });
      val = v.dice === null ? "" : `, val Dice ${v.dice.toFixed(3)}`;
    }
    epoch++;
    name = await save(epoch === spec.epochs);
  }
  bar.done(`loss ${lastLoss.toFixed(4)}${val}`);
  ctx.finished[spec.stage] = name;
  return name;
}

/**
 * Brings a stage's variables to their trained values: from the stage's
 * final checkpoint when it finished earlier, else by training it with the
 * spec `build` returns (continuing from `ctx.last` when that points into
 * this stage, unfinished). The spec's optimiser is disposed afterwards.
 *
 * @param ctx Run directory, progress mode, finished stages, resume point.
 * @param stage The stage.
 * @param variables Every variable the stage's checkpoint holds, by name.
 * @param build Makes the training spec (called only when training).
 * @returns Whether the stage was restored (`true`) or trained.
 */
export async function trainOrRestore(
  ctx: StageContext,
  stage: Stage,
  variables: Record<string, tf.Variable>,
  build: () => StageSpec,
): Promise<boolean> {
  const done = ctx.finished[stage];
  if (done) {
    await loadInto(
      { params: variables, state: {} },
      (await loadStageCheckpoint(ctx.run, done)).file,
    );
    return true;
  }
  const spec = build();
  const last = ctx.last;
  try {
    await runStage(
      ctx,
      spec,
      last && last.stage === stage && !last.stageDone ? last : undefined,
    );
  } finally {
    spec.optimizer?.dispose();
  }
  return false;
}
