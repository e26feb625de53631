/**
 * {@linkcode runEnvironment}: what a run ran on (backend, Deno, TensorFlow.js
 * and library versions, the library's git commit when it runs from a
 * checkout), recorded in `metrics.json` under `environment` and shown by
 * the report.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";

/** The library's version (`deno.json`'s `version`; a test keeps them equal). */
export const LIBRARY_VERSION: string = "0.1.0";

/** What {@linkcode runEnvironment} records. */
export interface RunEnvironment {
  /** The backend that ran. */
  backend: string;
  /** Why it was chosen. */
  backendReason: string;
  /** `Deno.version.deno`. */
  deno: string;
  /** `Deno.version.v8`. */
  v8: string;
  /** `@tensorflow/tfjs` version. */
  tfjs: string;
  /** This library's version. */
  library: string;
  /** `Deno.build.os` and `arch`, e.g. `linux x86_64`. */
  platform: string;
  /** Logical CPUs (`navigator.hardwareConcurrency`). */
  cpus: number;
  /** The library checkout's git commit, `null` outside a git checkout (JSR) or without `--allow-run`. */
  commit: string | null;
  /** Whether the checkout had uncommitted changes to tracked files (with `commit`). */
  dirty?: boolean;
}

/** Runs git in `dir`; its trimmed stdout, or `null` on any failure. */
async function git(dir: string, args: string[]): Promise<string | null> {
  try {
    const out = await new Deno.Command("git", {
      args: ["-C", dir, ...args],
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : null;
  } catch {
    return null; // no git, or no --allow-run
  }
}

/**
 * Describes the environment of a run.
 *
 * @param backend The backend that ran and why (`selectBackend`'s answer).
 * @returns The record; `commit` is `null` when the library is not a git
 *   checkout (imported from JSR) or git cannot be run.
 *
 * @example
 * ```ts
 * import { runEnvironment } from "@agcl/agcl/pipeline";
 * import assert from "node:assert/strict";
 *
 * const env = await runEnvironment({ name: "cpu", reason: "asked for" });
 * assert.equal(env.deno, Deno.version.deno);
 * ```
 */
export async function runEnvironment(
  backend: { name: string; reason: string },
): Promise<RunEnvironment> {
  const env: RunEnvironment = {
    backend: backend.name,
    backendReason: backend.reason,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    tfjs: tf.version.tfjs,
    library: LIBRARY_VERSION,
    platform: `${Deno.build.os} ${Deno.build.arch}`,
    cpus: navigator.hardwareConcurrency,
    commit: null,
  };
  if (!import.meta.url.startsWith("file:")) return env;
  const dir = dirname(fileURLToPath(import.meta.url));
  const commit = await git(dir, ["rev-parse", "HEAD"]);
  if (commit && /^[0-9a-f]{40}$/.test(commit)) {
    env.commit = commit;
    const status = await git(dir, [
      "status",
      "--porcelain",
      "--untracked-files=no",
    ]);
    if (status !== null) env.dirty = status.length > 0;
  }
  return env;
}
