import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  availableBackends,
  BACKEND_NAMES,
  ensureBackend,
  getBackend,
  isBackendName,
  selectBackend,
} from "../../backends/mod.ts";
import { AVAILABLE, testOnBackends } from "../_utils.ts";

// Whether this machine has a hardware WebGPU adapter, which "auto" prefers.
const gpuAdapter = await (await getBackend("webgpu")).adapter();
const hardwareGpu = gpuAdapter !== undefined && !gpuAdapter.isFallbackAdapter;

/**
 * Runs `fn` with the wasm backend's kernel `name` unregistered, so that wasm
 * cannot train (every training kernel is registered for it otherwise).
 */
async function withoutWasmKernel(
  name: string,
  fn: () => Promise<void>,
): Promise<void> {
  await selectBackend("wasm", { purpose: "train" });
  await selectBackend("cpu");
  const saved = tf.getKernel(name, "wasm");
  assert.ok(saved, `${name} is registered for wasm`);
  tf.unregisterKernel(name, "wasm");
  try {
    await fn();
  } finally {
    tf.registerKernel(saved);
    await selectBackend("cpu");
  }
}

Deno.test("selectBackend() rejects an unknown name, listing the valid ones", async () => {
  await assert.rejects(
    () => selectBackend("cuda"),
    {
      name: "RangeError",
      message:
        'Unknown backend "cuda": expected one of "auto", "cpu", "wasm", "webgpu"',
    },
  );
});

Deno.test("selectBackend() rejects an unknown purpose", async () => {
  await assert.rejects(
    () => selectBackend("cpu", { purpose: "fly" as "train" }),
    { name: "RangeError", message: /'purpose' must be "train" or "infer"/ },
  );
});

Deno.test("selectBackend('cpu') activates cpu and says it was requested", async () => {
  const r = await selectBackend("cpu", { purpose: "train" });
  assert.deepEqual(r, { name: "cpu", reason: "requested explicitly" });
  assert.equal(tf.getBackend(), "cpu");
});

Deno.test("selectBackend('auto') never picks a software WebGPU adapter", async () => {
  for (const purpose of ["train", "infer"] as const) {
    const r = await selectBackend("auto", { purpose });
    assert.equal(tf.getBackend(), r.name);
    assert.ok(r.reason.length > 0);
    if (!hardwareGpu) assert.notEqual(r.name, "webgpu", r.reason);
    else if (purpose === "infer") assert.equal(r.name, "webgpu", r.reason);
    if (r.name === "webgpu") assert.equal(r.adapter?.isFallbackAdapter, false);
  }
  await selectBackend("cpu");
});

Deno.test("selectBackend('auto', train) picks a backend with every gradient kernel", async () => {
  const r = await selectBackend("auto", { purpose: "train" });
  assert.ok(
    tf.getKernel("Conv2DBackpropFilter", r.name) !== undefined,
    r.reason,
  );
  await selectBackend("cpu");
});

Deno.test("selectBackend('auto', infer) prefers wasm over cpu without a hardware GPU", async () => {
  const r = await selectBackend("auto", { purpose: "infer" });
  assert.equal(r.name, hardwareGpu ? "webgpu" : "wasm", r.reason);
  await selectBackend("cpu");
});

Deno.test("selectBackend() trains on wasm without a warning when it has every training kernel", async () => {
  const warnings: string[] = [];
  const r = await selectBackend("wasm", {
    purpose: "train",
    fallback: true,
    warn: (m) => warnings.push(m),
  });
  assert.equal(r.name, "wasm");
  assert.deepEqual(warnings, []);
  await selectBackend("cpu");
});

Deno.test("selectBackend() with fallback warns and falls back when a backend cannot train", async () => {
  await withoutWasmKernel("UnsortedSegmentSum", async () => {
    const warnings: string[] = [];
    const r = await selectBackend("wasm", {
      purpose: "train",
      fallback: true,
      warn: (m) => warnings.push(m),
    });
    assert.notEqual(r.name, "wasm");
    assert.equal(warnings.length, 1);
    assert.match(
      warnings[0]!,
      /Cannot use backend "wasm" to train: the wasm backend lacks the UnsortedSegmentSum kernel; available: "cpu"/,
    );
    assert.match(r.reason, /^fallback from "wasm"/);
  });
});

Deno.test("selectBackend() without fallback throws naming the available backends", async () => {
  await withoutWasmKernel("UnsortedSegmentSum", async () => {
    await assert.rejects(() => selectBackend("wasm", { purpose: "train" }), {
      message:
        /Cannot use backend "wasm" to train: the wasm backend lacks the UnsortedSegmentSum kernel; available: "cpu"/,
    });
  });
});

Deno.test("availableBackends() lists known names, cpu always", async () => {
  const names = await availableBackends();
  assert.ok(names.includes("cpu"));
  assert.ok(names.every(isBackendName));
  assert.deepEqual(names, BACKEND_NAMES.filter((n) => names.includes(n)));
  assert.deepEqual(names, [...AVAILABLE]);
});

testOnBackends(
  "matMul agrees with a hand-computed product",
  async (backend) => {
    const a = tf.tensor2d([[1, 2], [3, 4]]);
    const b = tf.tensor2d([[5, 6], [7, 8]]);
    const c = tf.matMul(a, b);
    assert.equal(tf.getBackend(), backend);
    assert.deepEqual(Array.from(await c.data()), [19, 22, 43, 50]);
    tf.dispose([a, b, c]);
  },
);

const SELECT = new URL("./testdata/select_backend.ts", import.meta.url)
  .pathname;

/** Runs testdata/select_backend.ts in a fresh process with `flags`. */
async function selectIn(
  flags: string[],
  args: string[],
  env: Record<string, string> = {},
): Promise<Record<string, unknown>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, SELECT, ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return JSON.parse(text.split("\n").at(-1)!);
}

Deno.test("ensureBackend() selects auto once when no backend was chosen, and says which and why once", async () => {
  const r = await selectIn(["-A"], ["ensure", "infer"]);
  const first = r.first as { name: string; reason: string };
  // The fastest backend that can infer: never tfjs' plain cpu default here.
  assert.equal(first.name, hardwareGpu ? "webgpu" : "wasm");
  assert.equal(r.second, null);
  const lines = r.lines as string[];
  assert.equal(lines.length, 1);
  assert.equal(
    lines[0],
    `agcl: no backend was chosen, so "auto" selected ${first.name} (${first.reason}); call selectBackend() to choose`,
  );
});

Deno.test("ensureBackend() leaves a backend chosen by selectBackend() alone", async () => {
  await selectBackend("cpu", { purpose: "infer" });
  const lines: string[] = [];
  const r = await ensureBackend("infer", { log: (l) => lines.push(l) });
  assert.equal(r, undefined);
  assert.equal(tf.getBackend(), "cpu");
  assert.deepEqual(lines, []);
});

Deno.test("selectBackend() without --allow-read falls back from wasm, naming the permission", async () => {
  const flags = ["--allow-env"];
  const auto = await selectIn(flags, ["auto", "infer"]);
  const report = auto.report as { name: string; reason: string };
  if (!hardwareGpu) assert.equal(report.name, "cpu");
  assert.match(
    report.reason,
    /Cannot activate backend "wasm": its WebAssembly module needs read permission: run with --allow-read \(or -A\)/,
  );
  const wasm = await selectIn(flags, ["wasm", "infer"]);
  assert.match(
    wasm.error as string,
    /^Cannot use backend "wasm" to infer: .*needs read permission: run with --allow-read/,
  );
});

Deno.test("selectBackend() hints at --allow-ffi when wasm trains without BLAS, and only then", async () => {
  const noFfi = ["--allow-read", "--allow-env"];
  const train = (await selectIn(noFfi, ["wasm", "train"])).report as {
    acceleration: string;
    hint?: string;
  };
  assert.equal(train.acceleration, "xnnpack");
  assert.match(train.hint ?? "", /about 5× faster .*: run with --allow-ffi/);
  const infer = (await selectIn(noFfi, ["wasm", "infer"])).report as object;
  assert.equal("hint" in infer, false);
  // Switched off on purpose: no hint.
  const off = (await selectIn(noFfi, ["wasm", "train"], { AGCL_BLAS: "off" }))
    .report as object;
  assert.equal("hint" in off, false);
});
