/**
 * What every model in `models/` shares: named parameters and state, a
 * parameter count, and a way to join models under one name space for
 * checkpoints.
 */
import type * as tf from "@tensorflow/tfjs";

/** Options for a model's `apply`. */
export interface ApplyOptions {
  /**
   * Training mode: batch normalisation uses the batch's statistics and
   * updates the running statistics in `state`. Eval mode uses the running
   * statistics and changes nothing.
   * @default {false}
   */
  training?: boolean;
}

/**
 * A model as a function of named variables: `params` (trained by the
 * optimiser) and `state` (batch-norm running statistics, updated in
 * training mode). Names follow torchvision (`layer1.0.conv1.weight`), so a
 * checkpoint maps one to one onto a PyTorch model.
 */
export interface Module {
  /** Trainable variables by torchvision name, in creation order. */
  readonly params: Record<string, tf.Variable>;
  /** Non-trainable state (BN `running_mean`, `running_var`, `num_batches_tracked`). */
  readonly state: Record<string, tf.Variable>;
  /** The configuration the model was built from (saved beside checkpoints). */
  readonly config: Readonly<Record<string, unknown>>;
  /** `Object.values(params)`: what an optimiser should update. */
  trainableVariables(): tf.Variable[];
  /** Frees every variable the model owns (safe to call twice). */
  dispose(): void;
}

/**
 * Returns the number of trainable scalars of `model` (its `params`; BN
 * running statistics are state and are not counted), as torchvision's
 * `sum(p.numel() for p in model.parameters())`.
 *
 * @example Count a projection head's parameters
 * ```ts
 * import { countParameters, createProjectionHead } from "@agcl/agcl/models";
 * import assert from "node:assert/strict";
 *
 * const head = createProjectionHead({ inFeatures: 8, hidden: 8, outFeatures: 4 });
 * assert.equal(countParameters(head), 8 * 8 + 8 + 8 * 4 + 4);
 * head.dispose();
 * ```
 *
 * @param model Any model of this module.
 * @returns The number of trainable scalars.
 */
export function countParameters(model: Pick<Module, "params">): number {
  let n = 0;
  for (const v of Object.values(model.params)) n += v.size;
  return n;
}

/**
 * Joins models under prefixes into one {@linkcode Module} whose names are
 * `<prefix>.<name>` (an empty prefix keeps the names as they are), for
 * saving an encoder and its head in one checkpoint. The parts keep
 * ownership: disposing the joined model disposes them all.
 *
 * @example Encoder and projection head in one name space
 * ```ts
 * import { combineModels, createEncoder, createProjectionHead } from "@agcl/agcl/models";
 * import assert from "node:assert/strict";
 *
 * const encoder = createEncoder({ depth: 18, inChannels: 2, widthMultiplier: 0.125 });
 * const head = createProjectionHead({ inFeatures: encoder.featureChannels });
 * const both = combineModels({ encoder, "": head }); // SupContrast's SupConResNet names
 * assert.ok("encoder.conv1.weight" in both.params && "head.0.weight" in both.params);
 * both.dispose();
 * ```
 *
 * @param parts Models by prefix.
 * @returns The joined model (its `apply` is not defined: apply the parts).
 * @throws {RangeError} If two parts produce the same name.
 */
export function combineModels(parts: Record<string, Module>): Module {
  const params: Record<string, tf.Variable> = {};
  const state: Record<string, tf.Variable> = {};
  const config: Record<string, unknown> = {};
  for (const [prefix, m] of Object.entries(parts)) {
    const key = (n: string) => prefix === "" ? n : `${prefix}.${n}`;
    for (const [target, source] of [[params, m.params], [state, m.state]]) {
      for (const [n, v] of Object.entries(source!)) {
        const k = key(n);
        if (k in params || k in state) {
          throw new RangeError(
            `Cannot combine models as the name '${k}' occurs twice: give the parts distinct prefixes`,
          );
        }
        target![k] = v;
      }
    }
    config[prefix] = m.config;
  }
  return {
    params,
    state,
    config,
    trainableVariables: () => Object.values(params),
    dispose() {
      for (const m of Object.values(parts)) m.dispose();
    },
  };
}
