/**
 * The loop every training stage shares: epochs of steps, one log line per
 * step, a progress bar, and an atomic checkpoint at the end of each epoch
 * (variables, optimiser slots, RNG and stream state), so that `--resume`
 * continues from the last complete epoch.
 */
import * as tf from "@tensorflow/tfjs";
import type { Optimizer, OptimizerState } from "./optim.ts";
import { Progress, type ProgressMode } from "./progress.ts";
import {
  type CheckpointMeta,
  type LastPointer,
  readCheckpointFiles,
  type RunDir,
  type Stage,
  writeFileAtomic,
} from "./run_dir.ts";
import { sha256Hex } from "../data/_io.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  type StoredTensor,
} from "./_tensor_store.ts";

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

/** Writes one checkpoint: tensors first, then its `.json`, each atomically. */
export async function saveStageCheckpoint(
  run: RunDir,
  name: string,
  variables: Record<string, tf.Variable>,
  optimizer: OptimizerState | null,
  meta: Omit<CheckpointMeta, "bytes" | "optimizerStep" | "sha256">,
): Promise<void> {
  const tensors: Record<string, StoredTensor> = {};
  for (const [k, v] of Object.entries(variables)) {
    tensors[`var/${k}`] = {
      shape: v.shape,
      data: new Float32Array(await v.data() as Float32Array),
    };
  }
  if (optimizer) {
    for (const [k, d] of Object.entries(optimizer.slots)) {
      tensors[`opt/${k}`] = { shape: [d.length], data: d };
    }
  }
  const bytes = encodeSafetensors(tensors, { stage: meta.stage });
  const base = run.checkpointBase(name);
  await writeFileAtomic(`${base}.safetensors`, bytes);
  const full: CheckpointMeta = {
    ...meta,
    optimizerStep: optimizer?.step ?? 0,
    bytes: bytes.length,
    sha256: await sha256Hex(bytes),
  };
  await writeFileAtomic(`${base}.json`, JSON.stringify(full, null, 2) + "\n");
}

/** A checkpoint read back. */
export interface LoadedCheckpoint {
  /** Its metadata. */
  meta: CheckpointMeta;
  /** Variables by name. */
  variables: Record<string, StoredTensor>;
  /** Optimiser state, when saved. */
  optimizer: OptimizerState | null;
}

/**
 * Reads a checkpoint, checking its size and SHA-256 against its `.json`
 * and that every value is finite.
 *
 * @throws {Error} For a missing, truncated or corrupt checkpoint, naming the
 *   file (and the tensor holding a non-finite value).
 */
export async function loadStageCheckpoint(
  run: RunDir,
  name: string,
): Promise<LoadedCheckpoint> {
  const base = run.checkpointBase(name);
  const { meta, bytes } = await readCheckpointFiles(base);
  const all = decodeSafetensors(bytes, `${base}.safetensors`);
  const variables: Record<string, StoredTensor> = {};
  const slots: Record<string, Float32Array> = {};
  let hasOpt = false;
  for (const [k, t] of Object.entries(all)) {
    const bad = t.data.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) {
      throw new Error(
        `Cannot read checkpoint '${base}.safetensors' as tensor '${k}' holds a non-finite value (${
          t.data[bad]
        } at index ${bad})`,
      );
    }
    if (k.startsWith("var/")) variables[k.slice(4)] = t;
    else if (k.startsWith("opt/")) {
      slots[k.slice(4)] = t.data;
      hasOpt = true;
    }
  }
  return {
    meta,
    variables,
    optimizer: hasOpt || meta.optimizerStep > 0
      ? { step: meta.optimizerStep, slots }
      : null,
  };
}

/**
 * Assigns stored values to variables, checking that every variable is
 * present with its shape.
 *
 * @throws {Error} Naming the first missing or mismatched variable.
 */
export function assignVariables(
  variables: Record<string, tf.Variable>,
  stored: Record<string, StoredTensor>,
  source: string,
): void {
  for (const [k, v] of Object.entries(variables)) {
    const t = stored[k];
    if (!t) {
      throw new Error(`Cannot load ${source}: variable '${k}' is missing`);
    }
    if (
      t.shape.length !== v.shape.length ||
      t.shape.some((d, i) => d !== v.shape[i])
    ) {
      throw new Error(
        `Cannot load ${source}: variable '${k}' has shape [${t.shape}], expected [${v.shape}]`,
      );
    }
    const values = v.dtype === "int32" ? Int32Array.from(t.data) : t.data;
    tf.tidy(() => v.assign(tf.tensor(values, v.shape, v.dtype)));
  }
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
    assignVariables(spec.variables, ck.variables, `checkpoint ${resume.name}`);
    if (spec.optimizer && ck.optimizer) spec.optimizer.setState(ck.optimizer);
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
      bar.tick(1, `loss ${loss.toFixed(4)}`);
    }
    epoch++;
    name = await save(epoch === spec.epochs);
  }
  bar.done(`loss ${lastLoss.toFixed(4)}`);
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
    const ck = await loadStageCheckpoint(ctx.run, done);
    assignVariables(variables, ck.variables, `checkpoint ${done}`);
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
