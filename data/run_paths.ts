/**
 * Where a run's `config.json` says its dataset lies: {@linkcode recordedPath}
 * writes a path relative to the run when it lies inside it, else absolute;
 * {@linkcode runDataPath} reads it back from any working directory.
 *
 * @module
 */
import { isAbsolute, relative, resolve } from "node:path";
import { existsSync } from "./_io.ts";

/**
 * How a run records a path in its `config.json`: relative to the run
 * directory when it lies inside it (the embedded phantom under `data/`),
 * so the run can be moved; else absolute. Either way the run reads the
 * same from any working directory (see {@linkcode runDataPath}).
 *
 * @param runDir The run directory.
 * @param path A path, relative to the working directory or absolute.
 * @returns The path to record.
 *
 * @example
 * ```ts
 * import { recordedPath } from "@agcl/agcl/data";
 * import assert from "node:assert/strict";
 *
 * assert.equal(recordedPath("/runs/a", "/runs/a/data/dataset.json"), "data/dataset.json");
 * assert.equal(recordedPath("/runs/a", "/data/dataset.json"), "/data/dataset.json");
 * ```
 */
export function recordedPath(runDir: string, path: string): string {
  const abs = resolve(path);
  const rel = relative(resolve(runDir), abs);
  return rel !== "" && !rel.startsWith("..") && !isAbsolute(rel) ? rel : abs;
}

/**
 * The dataset a run trained on, as a path usable from the working
 * directory: `config.json`'s `dataPath` resolved against the run directory
 * (runs record it absolute, or relative to the run), else its `data`.
 * Earlier versions recorded it relative to the directory training started
 * from: such a path is used as it is when it does not exist relative to
 * the run but does from here.
 *
 * @param runDir The run directory.
 * @param saved The whole `config.json` content.
 * @returns The path, or `undefined` when the file names no dataset.
 *
 * @example
 * ```ts
 * import { runDataPath } from "@agcl/agcl/data";
 * import assert from "node:assert/strict";
 *
 * assert.equal(runDataPath("/runs/a", { dataPath: "data/dataset.json" }), "/runs/a/data/dataset.json");
 * assert.equal(runDataPath("/runs/a", { dataPath: "/d/dataset.json" }), "/d/dataset.json");
 * ```
 */
export function runDataPath(
  runDir: string,
  saved: Record<string, unknown> | undefined,
): string | undefined {
  const p = saved?.dataPath;
  if (typeof p === "string") {
    const inRun = resolve(runDir, p);
    return isAbsolute(p) || existsSync(inRun) || !existsSync(p) ? inRun : p;
  }
  // Runs that recorded no dataPath: `data` as given (the working directory's).
  return typeof saved?.data === "string" ? saved.data : undefined;
}
