/**
 * One place where this library layers its kernels over a backend's own.
 * Each patching module exports a table of {@linkcode KernelPatch} records
 * (like tfjs's `kernelConfigs`); {@linkcode patchKernel} records, per kernel,
 * the backend's own config and the stack of wraps above it, so removing one
 * layer rebuilds exactly the others over the original.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** Builds a kernel from the one below it (the backend's own or an earlier patch). */
export type KernelWrap = (below: tf.KernelFunc) => tf.KernelFunc;

/** One entry of a patch table: the kernel it wraps and how. */
export interface KernelPatch {
  /** The tfjs kernel name, e.g. `"Conv2D"`. */
  readonly kernelName: string;
  /** Builds the patched kernel from the one below it. */
  readonly wrap: KernelWrap;
}

interface Stack {
  /** The backend's own config, kept with its setup and dispose functions. */
  readonly base: tf.KernelConfig;
  /** The wraps applied over `base`, bottom first. */
  readonly layers: KernelWrap[];
}

const stacks = new Map<string, Stack>();

function key(backend: string, name: string): string {
  return `${backend}/${name}`;
}

function reregister(stack: Stack): void {
  let kernelFunc = stack.base.kernelFunc;
  for (const wrap of stack.layers) kernelFunc = wrap(kernelFunc);
  const { kernelName, backendName } = stack.base;
  tf.unregisterKernel(kernelName, backendName);
  // Keeps the base's setupFunc (wasm binds its C++ kernel there).
  tf.registerKernel({ ...stack.base, kernelFunc });
}

/**
 * Wraps the kernel `name` of `backend` with `wrap`, above any earlier
 * patches of it.
 *
 * @returns A function that removes this layer alone (idempotent).
 * @throws {Error} When the backend has no kernel `name` to wrap.
 */
export function patchKernel(
  backend: string,
  name: string,
  wrap: KernelWrap,
): () => void {
  const k = key(backend, name);
  let stack = stacks.get(k);
  if (!stack) {
    const base = tf.getKernel(name, backend);
    if (!base) {
      throw new Error(
        `Cannot patch kernel ${name} on ${backend}: it is not registered`,
      );
    }
    stack = { base, layers: [] };
    stacks.set(k, stack);
  }
  const layers = stack.layers;
  layers.push(wrap);
  reregister(stack);
  let removed = false;
  return () => {
    if (removed) return;
    removed = true;
    layers.splice(layers.lastIndexOf(wrap), 1);
    reregister(stack);
    if (layers.length === 0) stacks.delete(k);
  };
}

/**
 * Applies every patch of `table` to `backend`, after checking that each
 * kernel exists (so a missing one leaves nothing half-applied).
 *
 * @returns A function that removes exactly these layers (idempotent).
 * @throws {Error} Naming the first kernel the backend lacks.
 */
export function applyPatches(
  backend: string,
  table: readonly KernelPatch[],
): () => void {
  for (const { kernelName } of table) {
    if (!tf.getKernel(kernelName, backend)) {
      throw new Error(
        `Cannot patch kernel ${kernelName} on ${backend}: it is not registered`,
      );
    }
  }
  const undo = table.map((p) => patchKernel(backend, p.kernelName, p.wrap));
  return () => {
    for (const u of [...undo].reverse()) u();
  };
}

/** How many patches are layered over `backend`'s own kernel `name`. */
export function patchDepth(backend: string, name: string): number {
  return stacks.get(key(backend, name))?.layers.length ?? 0;
}

/**
 * Registers each config of `configs` whose kernel the backend lacks
 * (kernels already present are left alone).
 *
 * @returns The names registered.
 */
export function registerMissing(
  configs: readonly tf.KernelConfig[],
): string[] {
  const added: string[] = [];
  for (const c of configs) {
    if (tf.getKernel(c.kernelName, c.backendName)) continue;
    tf.registerKernel(c);
    added.push(c.kernelName);
  }
  return added;
}
