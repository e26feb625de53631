import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  applyPatches,
  type KernelWrap,
  patchDepth,
  patchKernel,
  registerMissing,
} from "../../backends/_patches.ts";

// A kernel of a backend name nobody activates: its function returns a tag
// list, so the order of the layers can be read off the result.
const BACKEND = "patches-test";

function tagged(tag: string): KernelWrap {
  return (below) => (args) =>
    [
      ...(below(args) as unknown as string[]),
      tag,
    ] as unknown as tf.TensorInfo;
}

function run(name: string): string[] {
  const k = tf.getKernel(name, BACKEND)!;
  return k.kernelFunc({
    inputs: {},
    backend: {} as tf.KernelBackend,
  }) as unknown as string[];
}

function withBase(name: string, fn: () => void): void {
  const setupFunc = () => {};
  tf.registerKernel({
    kernelName: name,
    backendName: BACKEND,
    kernelFunc: () => ["base"] as unknown as tf.TensorInfo,
    setupFunc,
  });
  try {
    fn();
    assert.equal(tf.getKernel(name, BACKEND)?.setupFunc, setupFunc);
  } finally {
    tf.unregisterKernel(name, BACKEND);
  }
}

Deno.test("patchKernel() stacks wraps and removing one keeps the others, in order", () => {
  withBase("Stacked", () => {
    const undoA = patchKernel(BACKEND, "Stacked", tagged("a"));
    const undoB = patchKernel(BACKEND, "Stacked", tagged("b"));
    const undoC = patchKernel(BACKEND, "Stacked", tagged("c"));
    assert.deepEqual(run("Stacked"), ["base", "a", "b", "c"]);
    assert.equal(patchDepth(BACKEND, "Stacked"), 3);
    undoB();
    assert.deepEqual(run("Stacked"), ["base", "a", "c"]);
    undoB(); // idempotent
    assert.deepEqual(run("Stacked"), ["base", "a", "c"]);
    undoA();
    undoC();
    assert.deepEqual(run("Stacked"), ["base"]);
    assert.equal(patchDepth(BACKEND, "Stacked"), 0);
  });
});

Deno.test("applyPatches() checks every kernel first and undoes exactly its own layers", () => {
  withBase("First", () => {
    withBase("Second", () => {
      assert.throws(
        () =>
          applyPatches(BACKEND, [
            { kernelName: "First", wrap: tagged("x") },
            { kernelName: "Missing", wrap: tagged("x") },
          ]),
        {
          name: "Error",
          message:
            "Cannot patch kernel Missing on patches-test: it is not registered",
        },
      );
      assert.deepEqual(run("First"), ["base"]);
      const undoLower = applyPatches(BACKEND, [
        { kernelName: "First", wrap: tagged("lower") },
        { kernelName: "Second", wrap: tagged("lower") },
      ]);
      const undoUpper = patchKernel(BACKEND, "First", tagged("upper"));
      undoLower();
      assert.deepEqual(run("First"), ["base", "upper"]);
      assert.deepEqual(run("Second"), ["base"]);
      undoUpper();
      assert.deepEqual(run("First"), ["base"]);
    });
  });
});

Deno.test("registerMissing() registers only the kernels a backend lacks", () => {
  withBase("Present", () => {
    const added = registerMissing([
      {
        kernelName: "Present",
        backendName: BACKEND,
        kernelFunc: () => ["ours"] as unknown as tf.TensorInfo,
      },
      {
        kernelName: "Absent",
        backendName: BACKEND,
        kernelFunc: () => ["ours"] as unknown as tf.TensorInfo,
      },
    ]);
    try {
      assert.deepEqual(added, ["Absent"]);
      assert.deepEqual(run("Present"), ["base"]);
      assert.deepEqual(run("Absent"), ["ours"]);
    } finally {
      tf.unregisterKernel("Absent", BACKEND);
    }
  });
});
