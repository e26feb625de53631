/**
 * tfjs-backend-wasm's threaded SIMD build (XNNPACK on a pthreadpool of
 * workers sharing one `WebAssembly.Memory`) in Deno: the bare-machine fast
 * path, for when no native library (oneDNN, BLAS) runs the convolutions.
 *
 * Upstream switches the build off under Node-like runtimes
 * (`WASM_HAS_MULTITHREAD_SUPPORT` is false whenever `IS_NODE`), and its Node
 * path fails in Deno three ways, each worked around here for the length of
 * the backend's initialisation only:
 *
 * - the pthread worker is a `blob:` URL, which `node:worker_threads` refuses
 *   (`ERR_WORKER_PATH`): its code goes to a `.cjs` file instead, which also
 *   loads the build's own emscripten script from Deno's npm cache (the
 *   `mainScriptUrlOrBlob` the main thread posts is a Blob);
 * - the worker assigns `location` on its global, a getter-only accessor in
 *   Deno, so the worker dies at start: that assignment is dropped;
 * - the C++ side caps the pool at `emscripten_num_logical_cores() / 2`
 *   (`os.cpus()` under Node), assuming two hyper-threads per core: 1 on a
 *   2-core machine. `os.cpus()` reports twice the threads wanted meanwhile.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import os from "node:os";

/** The pool size the build pre-spawns, and the most threads it uses. */
const MAX_THREADS = 8;

/** The parts of tfjs-backend-wasm's exports used here. */
interface WasmPackage {
  setThreadsCount(n: number): void;
  getThreadsCount(): number;
}

/** Whether `read` and `write` are granted; never prompts. */
function canReadAndWrite(): boolean {
  try {
    return Deno.permissions.querySync({ name: "read" }).state === "granted" &&
      Deno.permissions.querySync({ name: "write" }).state === "granted";
  } catch {
    return false;
  }
}

/**
 * The pthread worker's code with the two Deno fixes; throws when the
 * package's worker is not the shape these fixes expect.
 */
async function workerSource(): Promise<string> {
  const { wasmWorkerContents } = await import(
    "@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js"
  ) as { wasmWorkerContents: string };
  const script = new URL(
    import.meta.resolve(
      "@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js",
    ),
  );
  if (script.protocol !== "file:") {
    throw new Error(`the build's script is not a file (${script.href})`);
  }
  // Literal "\n" inside its strings must stay escapes (upstream does the same
  // before making its Blob).
  const escaped = wasmWorkerContents.replace(/\n/g, "\\n");
  const noLocation = escaped.replace("location:{href:__filename},", "");
  const loader =
    /if\(typeof e\.data\.urlOrBlob=="string"\)\{importScripts\(e\.data\.urlOrBlob\)\}else\{[^}]*\}/;
  const src = noLocation.replace(
    loader,
    `importScripts(${JSON.stringify(script.pathname)});`,
  );
  if (noLocation === escaped || src === noLocation) {
    throw new Error("its pthread worker code is not the one expected");
  }
  return src;
}

/** What {@linkcode initThreaded} did. */
export interface ThreadedInit {
  /** Threads XNNPACK runs on (the calling thread included), when it worked. */
  threads?: number;
  /** Why the threaded build was not used, when it was not. */
  reason?: string;
}

/**
 * Initialises the wasm backend on the threaded SIMD build with `threads`
 * threads (at most 8, the pool the build spawns). Activates it with
 * `tf.setBackend("wasm")`; when that fails, the backend is not active and
 * `reason` says why, so the caller can initialise the single-threaded build.
 *
 * @param threads The pool size wanted, ≥ 2.
 * @returns The threads in use, or why the build was not used.
 */
export async function initThreaded(threads: number): Promise<ThreadedInit> {
  if (typeof SharedArrayBuffer !== "function") {
    return { reason: "no SharedArrayBuffer in this runtime" };
  }
  if (!canReadAndWrite()) {
    return {
      reason: "its worker file needs --allow-read and --allow-write (or -A)",
    };
  }
  let src: string;
  try {
    src = await workerSource();
  } catch (e) {
    return { reason: e instanceof Error ? e.message : String(e) };
  }
  const n = Math.min(Math.max(2, Math.floor(threads)), MAX_THREADS);
  const pkg = await import(
    "@tensorflow/tfjs-backend-wasm"
  ) as unknown as WasmPackage;
  const dir = await Deno.makeTempDir({ prefix: "agcl-wasm-threads-" });
  const workerPath = `${dir}/tfjs-backend-wasm-threaded-simd.worker.cjs`;
  await Deno.writeTextFile(workerPath, src);

  const createObjectURL = URL.createObjectURL;
  const Worker = globalThis.Worker;
  const cpus = os.cpus;
  URL.createObjectURL = function (obj: Blob): string {
    return obj instanceof Blob && obj.type === "application/javascript"
      ? workerPath
      : createObjectURL(obj);
  };
  const cpu: os.CpuInfo = {
    model: "",
    speed: 0,
    times: { user: 0, nice: 0, sys: 0, idle: 0, irq: 0 },
  };
  os.cpus = function (): os.CpuInfo[] {
    return Array.from({ length: 2 * n }, () => cpu);
  };
  tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", true);
  pkg.setThreadsCount(n);
  try {
    const ok = await tf.setBackend("wasm");
    if (!ok) {
      return { reason: "its initialisation failed (see the warning above)" };
    }
    // A running pthread holds a reference on its worker (emscripten refs it
    // under Node, and XNNPACK's pool threads never end), which would keep
    // the process alive after its last line: let go of them.
    const { wasm } = tf.backend() as unknown as {
      wasm: { PThread?: { runningWorkers: { unref?(): void }[] } };
    };
    for (const w of wasm.PThread?.runningWorkers ?? []) w.unref?.();
    return { threads: pkg.getThreadsCount() };
  } finally {
    URL.createObjectURL = createObjectURL;
    // emscripten's Node path replaces the global Worker with node's.
    globalThis.Worker = Worker;
    os.cpus = cpus;
    // Every worker of the pool has read its file by now.
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Switches the single-threaded build back on for the next initialisation. */
export function disableThreads(): void {
  tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", false);
}
