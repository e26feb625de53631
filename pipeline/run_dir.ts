/**
 * The run directory: `config.json`, `log.jsonl`, atomic checkpoints with a
 * `last.json` pointer that only ever names a complete checkpoint.
 *
 * @module
 */
import { dirname, join } from "node:path";

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

/** One line of `log.jsonl`. */
export interface LogEntry {
  /** Stage that logged it. */
  stage: Stage;
  /** Epoch (0-based). */
  epoch: number;
  /** Step within the stage (1-based, counted over all epochs). */
  step: number;
  /** Training loss of the step. */
  loss: number;
  /** Learning rate used at the step. */
  lr: number;
  /** Wall time of the step in milliseconds. */
  ms: number;
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

/**
 * Writes `bytes` to `path` atomically: a temporary file in the same folder,
 * fsync, then rename, so a reader never sees a half-written file.
 *
 * @param path Destination.
 * @param bytes Content (a string is written as UTF-8).
 */
export async function writeFileAtomic(
  path: string,
  bytes: Uint8Array | string,
): Promise<void> {
  const data = typeof bytes === "string"
    ? new TextEncoder().encode(bytes)
    : bytes;
  await Deno.mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  const file = await Deno.open(tmp, {
    write: true,
    create: true,
    truncate: true,
  });
  try {
    let off = 0;
    while (off < data.length) off += await file.write(data.subarray(off));
    await file.sync();
  } finally {
    file.close();
  }
  await Deno.rename(tmp, path);
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

  /** Creates the folders. */
  async init(): Promise<void> {
    await Deno.mkdir(this.checkpointDir, { recursive: true });
    await Deno.mkdir(this.predictionDir, { recursive: true });
  }

  /** Writes a JSON file under the run directory atomically. */
  async writeJson(name: string, value: unknown): Promise<void> {
    await writeFileAtomic(
      join(this.root, name),
      JSON.stringify(value, null, 2) + "\n",
    );
  }

  /** Appends one line to `log.jsonl`. */
  async appendLog(entry: LogEntry): Promise<void> {
    await Deno.writeTextFile(this.logPath, JSON.stringify(entry) + "\n", {
      append: true,
    });
  }

  /** Reads `log.jsonl` (complete lines only). */
  async readLog(): Promise<LogEntry[]> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.logPath);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return [];
      throw e;
    }
    const out: LogEntry[] = [];
    for (const line of text.split("\n")) {
      if (!line.trim()) continue;
      try {
        out.push(JSON.parse(line) as LogEntry);
      } catch {
        // A line cut by a crash: dropped.
      }
    }
    return out;
  }

  /**
   * Rewrites `log.jsonl` keeping only the entries a resumed run will not
   * repeat: earlier stages, and this stage up to `step`.
   */
  async truncateLog(stage: Stage, step: number): Promise<void> {
    const order = stageOrder(stage);
    const keep = (await this.readLog()).filter((e) => {
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
   * Returns the latest complete checkpoint, or `undefined` when there is
   * none. A pointer whose files are missing is ignored.
   */
  async readLast(): Promise<LastPointer | undefined> {
    const p = await readJsonIfValid(join(this.checkpointDir, "last.json"));
    if (typeof p !== "object" || p === null) return undefined;
    const last = p as LastPointer;
    if (
      typeof last.name !== "string" || stageOrder(last.stage) < 0 ||
      typeof last.step !== "number"
    ) return undefined;
    try {
      await Deno.stat(this.checkpointBase(last.name) + ".json");
    } catch {
      return undefined;
    }
    return last;
  }
}
