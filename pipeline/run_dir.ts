/**
 * The run directory: `config.json`, `log.jsonl`, atomic checkpoints with a
 * `last.json` pointer that only ever names a complete checkpoint.
 *
 * @module
 */
import { join } from "node:path";
import type { LogEntry as ReportLogEntry } from "../report/figures.ts";
import {
  readJsonLines,
  removeAtomicTemps,
  writeFileAtomic,
} from "../data/_io.ts";
import {
  CHECKPOINT_FORMAT,
  type CheckpointFile,
  type CheckpointSidecar,
  readCheckpoint,
} from "../models/checkpoint.ts";

export { writeFileAtomic };

/** The stages of a run, in order (cross-fit folds of stage 1 come first). */
export const STAGES: readonly ["coarse", "pretrain", "segment"] = Object
  .freeze(["coarse", "pretrain", "segment"] as const);

/**
 * A stage name: one of {@linkcode STAGES}, or `coarse-fold<k>`, the k-th
 * out-of-fold stage-1 network of cross-fitted attention.
 */
export type Stage = (typeof STAGES)[number] | `coarse-fold${number}`;

/**
 * Position of a stage in a run (folds first, then {@linkcode STAGES}), or
 * -1 for a name that is no stage.
 */
export function stageOrder(stage: unknown): number {
  if (typeof stage !== "string") return -1;
  const fold = /^coarse-fold(\d)$/.exec(stage);
  if (fold) return Number(fold[1]);
  const i = (STAGES as readonly string[]).indexOf(stage);
  return i < 0 ? -1 : 10 + i;
}

/** One line of `log.jsonl` as a run writes it: the report's entry with every field set. */
export interface LogEntry extends Omit<ReportLogEntry, "method"> {
  /** Stage that logged it. */
  stage: Stage;
  /** Learning rate used at the step. */
  lr: number;
  /** Wall time of the step in milliseconds. */
  ms: number;
}

/**
 * A validation line of `log.jsonl`: the Dice of a stage's network on its
 * held-out sample at the end of an epoch (stages 1 and 3; see
 * `pipeline/validation.ts`). Told from step lines by `kind`.
 */
export interface ValidationLogEntry {
  /** Stage that logged it. */
  stage: Stage;
  /** Always `"validation"`. */
  kind: "validation";
  /** The epoch that just ended (0-based, as its steps are logged). */
  epoch: number;
  /** Steps of the stage done (the epoch's last step). */
  step: number;
  /** Mean Dice over the targets whose truth is in the sample, `null` when none is. */
  dice: number | null;
  /** Dice per target name (`null` where the sample has none of its truth). */
  targets: Record<string, number | null>;
  /** What was scored, e.g. `4 slice(s) of 1 case(s)`. */
  sample: string;
  /** Wall time of the validation in milliseconds. */
  ms: number;
}

function isValidation(e: unknown): e is ValidationLogEntry {
  return (e as { kind?: unknown } | null)?.kind === "validation";
}

/** What `checkpoints/last.json` holds. */
export interface LastPointer {
  /** Stage of the latest complete checkpoint. */
  stage: Stage;
  /** Epochs of that stage completed (1-based). */
  epoch: number;
  /** Steps of that stage completed. */
  step: number;
  /** Base name of the checkpoint files, relative to `checkpoints/`. */
  name: string;
  /** Whether the stage is finished. */
  stageDone: boolean;
  /** Final checkpoint of each finished stage (base names). */
  finished: Partial<Record<Stage, string>>;
}

/** Optimiser state as a run checkpoint's sidecar holds it. */
export interface SavedOptimizer {
  /** Updates applied so far. */
  step: number;
  /**
   * Slot arrays by `<variable>/<slot>` name, in PyTorch layouts (as the
   * variables in the `.safetensors`): float32 little-endian, base64.
   */
  slots: Record<string, { shape: number[]; base64: string }>;
  /** SHA-256 of the slots' bytes, in key order, checked on load. */
  sha256: string;
}

/**
 * What a run checkpoint's `.json` sidecar holds: the sidecar every
 * checkpoint has (`models/checkpoint.ts`: format, config, size, SHA-256 of
 * the `.safetensors`) plus the training state.
 */
export interface CheckpointMeta extends CheckpointSidecar {
  /** Stage. */
  stage: Stage;
  /** Epochs completed. */
  epoch: number;
  /** Steps completed. */
  step: number;
  /** Stage-specific JSON state (RNG and stream positions). */
  extra: unknown;
  /** The optimiser's state, or `null` for a stage without one. */
  optimizer: SavedOptimizer | null;
  /** Whether this checkpoint ends its stage. */
  stageDone?: boolean;
}

function isMeta(m: unknown): m is CheckpointMeta {
  if (typeof m !== "object" || m === null) return false;
  const c = m as Record<string, unknown>;
  return c.format === CHECKPOINT_FORMAT && stageOrder(c.stage) >= 0 &&
    Number.isInteger(c.epoch) && Number.isInteger(c.step) &&
    Number.isInteger(c.bytes) && typeof c.sha256 === "string";
}

/**
 * Reads a checkpoint's `.json` and `.safetensors` and checks that they agree
 * (size and SHA-256 of the tensor file) and that every value is finite.
 *
 * @param base The checkpoint's path without extension.
 * @returns The metadata and the verified tensor file.
 * @throws {Error} Naming the file that is missing, unreadable, truncated or
 *   corrupt, or written in the training-state format of earlier versions.
 */
export async function readCheckpointFiles(
  base: string,
): Promise<{ meta: CheckpointMeta; file: CheckpointFile }> {
  const jsonPath = `${base}.json`;
  let meta: unknown;
  try {
    meta = JSON.parse(await Deno.readTextFile(jsonPath));
  } catch (e) {
    throw new Error(`Cannot read checkpoint '${jsonPath}': ${describe(e)}`, {
      cause: e,
    });
  }
  if (!isMeta(meta)) {
    const old = typeof meta === "object" && meta !== null &&
      !("format" in meta) && "stage" in meta && "bytes" in meta;
    throw new Error(
      old
        ? `Cannot read checkpoint '${jsonPath}' as it is in the training-state format of earlier versions (var/… names, tfjs layouts, optimiser slots in the tensor file), which this version no longer reads: train the run again in a new directory`
        : `Cannot read checkpoint '${jsonPath}' as it lacks a valid format, stage, epoch, step, bytes or sha256`,
    );
  }
  const file = await readCheckpoint(`${base}.safetensors`, { sidecar: meta });
  return { meta, file };
}

function describe(e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return "it does not exist";
  return e instanceof Error ? e.message : String(e);
}

/** Options for {@linkcode RunDir.readLast}. */
export interface ReadLastOptions {
  /**
   * Receives the warning when `last.json` is damaged or dangling and the
   * newest complete checkpoint is used instead.
   * @default {prints `warning: …` to stderr}
   */
  onWarning?: (message: string) => void;
}

/** Reads a JSON file, or `undefined` when missing or unparsable. */
export async function readJsonIfValid(path: string): Promise<unknown> {
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch {
    return undefined;
  }
}

/** Paths of one run directory and the operations on them. */
export class RunDir {
  /** The run directory. */
  readonly root: string;

  /**
   * Creates the helper for `root` (nothing is written yet).
   *
   * @param root The run directory.
   */
  constructor(root: string) {
    this.root = root;
  }

  /** `RUN/config.json`. */
  get configPath(): string {
    return join(this.root, "config.json");
  }
  /** `RUN/log.jsonl`. */
  get logPath(): string {
    return join(this.root, "log.jsonl");
  }
  /** `RUN/checkpoints/`. */
  get checkpointDir(): string {
    return join(this.root, "checkpoints");
  }
  /** `RUN/predictions/`. */
  get predictionDir(): string {
    return join(this.root, "predictions");
  }
  /** `RUN/metrics.json`. */
  get metricsPath(): string {
    return join(this.root, "metrics.json");
  }
  /** `RUN/embeddings.json`. */
  get embeddingsPath(): string {
    return join(this.root, "embeddings.json");
  }

  /**
   * Creates the folders and removes the temporary files that interrupted
   * atomic writes of an earlier process left in the run directory.
   *
   * @returns The stale temporary files removed.
   */
  async init(): Promise<string[]> {
    await Deno.mkdir(this.checkpointDir, { recursive: true });
    await Deno.mkdir(this.predictionDir, { recursive: true });
    return await removeAtomicTemps(this.root, 2);
  }

  /** Writes a JSON file under the run directory atomically. */
  async writeJson(name: string, value: unknown): Promise<void> {
    await writeFileAtomic(
      join(this.root, name),
      JSON.stringify(value, null, 2) + "\n",
    );
  }

  /** Appends one line (a step or a validation) to `log.jsonl`. */
  async appendLog(entry: LogEntry | ValidationLogEntry): Promise<void> {
    await Deno.writeTextFile(this.logPath, JSON.stringify(entry) + "\n", {
      append: true,
    });
  }

  /**
   * Reads the step lines of `log.jsonl` (validation lines are left to
   * {@linkcode RunDir.readValidation}): a last line cut by a crash is
   * dropped.
   *
   * @throws {Error} Naming the file and the line when a line before the
   *   last is not JSON (corruption, not a cut write).
   */
  async readLog(): Promise<LogEntry[]> {
    return (await readJsonLines(this.logPath)).filter((e) =>
      !isValidation(e)
    ) as LogEntry[];
  }

  /** Reads the validation lines of `log.jsonl`, as {@linkcode RunDir.readLog} reads. */
  async readValidation(): Promise<ValidationLogEntry[]> {
    return (await readJsonLines(this.logPath)).filter(isValidation);
  }

  /**
   * Rewrites `log.jsonl` keeping only the entries a resumed run will not
   * repeat: earlier stages, and this stage up to `step`.
   */
  async truncateLog(stage: Stage, step: number): Promise<void> {
    const order = stageOrder(stage);
    const all = await readJsonLines(this.logPath) as {
      stage: Stage;
      step: number;
    }[];
    const keep = all.filter((e) => {
      const o = stageOrder(e.stage);
      return o < order || (o === order && e.step <= step);
    });
    await writeFileAtomic(
      this.logPath,
      keep.map((e) => JSON.stringify(e) + "\n").join(""),
    );
  }

  /** Path of a checkpoint's files without extension. */
  checkpointBase(name: string): string {
    return join(this.checkpointDir, name);
  }

  /**
   * Points `last.json` at a checkpoint whose files are already complete on
   * disk. Call only after they were written atomically.
   */
  async setLast(pointer: LastPointer): Promise<void> {
    await writeFileAtomic(
      join(this.checkpointDir, "last.json"),
      JSON.stringify(pointer, null, 2) + "\n",
    );
  }

  /**
   * Returns the latest complete checkpoint, or `undefined` when the run has
   * none yet (no `last.json` and no checkpoint files).
   *
   * `last.json` names the checkpoint; its files are verified (size and
   * SHA-256). When the pointer is cut, unparsable, or names files that are
   * missing or corrupt, the checkpoints are scanned and the newest complete
   * one is used, with a warning naming both; work is never discarded
   * silently.
   *
   * @param options Where the fallback warning goes.
   * @throws {Error} Naming `last.json` when it is damaged (or missing beside
   *   checkpoint files) and no complete checkpoint can be found.
   */
  async readLast(
    options: ReadLastOptions = {},
  ): Promise<LastPointer | undefined> {
    const onWarning = options.onWarning ??
      ((m: string) => console.error(`warning: ${m}`));
    const lastPath = join(this.checkpointDir, "last.json");
    let text: string | undefined;
    try {
      text = await Deno.readTextFile(lastPath);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    let problem = "is missing";
    if (text !== undefined) {
      const checked = await this.#checkPointer(text);
      if (typeof checked !== "string") return checked;
      problem = checked;
    }
    const { pointer, found } = await this.#scanCheckpoints();
    if (pointer) {
      onWarning(
        `${lastPath} ${problem}; resuming from checkpoint '${pointer.name}' (${pointer.stage}, step ${pointer.step}), the newest complete one found in ${this.checkpointDir}`,
      );
      return pointer;
    }
    if (text === undefined && found === 0) return undefined;
    throw new Error(
      `Cannot resume the run in ${this.root} as ${lastPath} ${problem}, and none of the ${found} checkpoint(s) in ${this.checkpointDir} is complete; move the run directory aside to start over`,
    );
  }

  /** The pointer in `text` when its checkpoint is complete, else the problem. */
  async #checkPointer(text: string): Promise<LastPointer | string> {
    let p: unknown;
    try {
      p = JSON.parse(text);
    } catch (e) {
      return `is not valid JSON (${describe(e)})`;
    }
    const last = p as LastPointer;
    if (
      typeof p !== "object" || p === null ||
      typeof last.name !== "string" || stageOrder(last.stage) < 0 ||
      typeof last.step !== "number" || typeof last.finished !== "object" ||
      last.finished === null
    ) {
      return "lacks a valid stage, step, name or finished";
    }
    try {
      await readCheckpointFiles(this.checkpointBase(last.name));
      return last;
    } catch (e) {
      return `names checkpoint '${last.name}', which cannot be used: ${
        describe(e)
      }`;
    }
  }

  /**
   * Scans `checkpoints/` and rebuilds the pointer to the newest complete
   * checkpoint and the final checkpoint of each stage finished before it.
   */
  async #scanCheckpoints(): Promise<
    { pointer: LastPointer | undefined; found: number }
  > {
    const metas: { name: string; meta: CheckpointMeta }[] = [];
    let found = 0;
    for await (const e of Deno.readDir(this.checkpointDir)) {
      if (!e.isFile || !e.name.endsWith(".json") || e.name === "last.json") {
        continue;
      }
      found++;
      const name = e.name.slice(0, -".json".length);
      const meta = await readJsonIfValid(join(this.checkpointDir, e.name));
      if (isMeta(meta)) metas.push({ name, meta });
    }
    // Newest first: later stage, then more steps.
    const order = (m: CheckpointMeta) => stageOrder(m.stage);
    metas.sort((a, b) =>
      order(b.meta) - order(a.meta) || b.meta.step - a.meta.step
    );
    const complete = async (name: string) => {
      try {
        await readCheckpointFiles(this.checkpointBase(name));
        return true;
      } catch {
        return false;
      }
    };
    candidates: for (const { name, meta } of metas) {
      if (!await complete(name)) continue;
      const finished: Partial<Record<Stage, string>> = {};
      if (meta.stageDone) finished[meta.stage] = name;
      // Every earlier stage that has checkpoints needs its final one intact;
      // older checkpoints lack stageDone, and then the newest is the final.
      const earlier = [...new Set(metas.map((c) => c.meta.stage))]
        .filter((st) => stageOrder(st) < order(meta));
      for (const stage of earlier) {
        const own = metas.filter((c) => c.meta.stage === stage);
        if (own.length === 0) continue; // skipped (coarse masks given)
        const final = own.find((c) => c.meta.stageDone) ?? own[0]!;
        if (!await complete(final.name)) continue candidates;
        finished[stage] = final.name;
      }
      return {
        pointer: {
          stage: meta.stage,
          epoch: meta.epoch,
          step: meta.step,
          name,
          stageDone: meta.stageDone ?? false,
          finished,
        },
        found,
      };
    }
    return { pointer: undefined, found };
  }
}
