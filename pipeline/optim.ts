/**
 * Optimisers with PyTorch semantics and savable state: SGD with momentum and
 * weight decay (stage 2), Adam (stages 1 and 3), and the learning-rate
 * schedules. Their slots are plain named arrays so a checkpoint can hold
 * them and a resumed run continues bit for bit.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { adamUpdate, adamUpdateRouted } from "../backends/_adam.ts";

/** Saved optimiser state: step count and slot values by name. */
export interface OptimizerState {
  /** Updates applied so far. */
  step: number;
  /** Slot arrays, named `<variable>/<slot>`. */
  slots: Record<string, Float32Array>;
}

/** An optimiser over a fixed, named set of variables. */
export interface Optimizer {
  /** Updates applied so far. */
  readonly step: number;
  /**
   * Applies one update.
   *
   * @param grads Gradient per variable name (the keys of `variables`).
   * @param lr Learning rate of this update.
   */
  apply(grads: Record<string, tf.Tensor>, lr: number): void;
  /** Reads the state (slots copied out of tensors). */
  getState(): Promise<OptimizerState>;
  /** Restores a state from {@linkcode Optimizer.getState}. */
  setState(state: OptimizerState): void;
  /** Frees the slots. */
  dispose(): void;
}

/** Options for {@linkcode createSgd}. */
export interface SgdOptions {
  /** Momentum (PyTorch: buf = m·buf + g). @default {0.9} */
  momentum?: number;
  /** L2 weight decay added to the gradient. @default {0} */
  weightDecay?: number;
}

/** Options for {@linkcode createAdam}. */
export interface AdamOptions {
  /** Decay of the first-moment estimate. @default {0.9} */
  beta1?: number;
  /** Decay of the second-moment estimate. @default {0.999} */
  beta2?: number;
  /** Added to the denominator for stability. @default {1e-8} */
  epsilon?: number;
}

function slotVars(
  variables: Record<string, tf.Variable>,
  names: string[],
): Record<string, tf.Variable> {
  const out: Record<string, tf.Variable> = {};
  for (const [k, v] of Object.entries(variables)) {
    for (const s of names) {
      out[`${k}/${s}`] = tf.variable(tf.zerosLike(v), false);
    }
  }
  return out;
}

async function readSlots(
  slots: Record<string, tf.Variable>,
): Promise<Record<string, Float32Array>> {
  const out: Record<string, Float32Array> = {};
  for (const [k, v] of Object.entries(slots)) {
    out[k] = new Float32Array(await v.data() as Float32Array);
  }
  return out;
}

function writeSlots(
  slots: Record<string, tf.Variable>,
  values: Record<string, Float32Array>,
  fn: string,
): void {
  for (const [k, v] of Object.entries(slots)) {
    const data = values[k];
    if (!data || data.length !== v.size) {
      throw new TypeError(
        `Cannot restore ${fn} state as slot '${k}' must have ${v.size} values: current length is ${data?.length}`,
      );
    }
    tf.tidy(() => v.assign(tf.tensor(data, v.shape, "float32")));
  }
}

function checkGrads(
  variables: Record<string, tf.Variable>,
  grads: Record<string, tf.Tensor>,
  fn: string,
): void {
  for (const k of Object.keys(grads)) {
    if (!(k in variables)) {
      throw new TypeError(
        `Cannot apply ${fn} as gradient '${k}' names no variable`,
      );
    }
  }
}

/**
 * SGD with momentum and L2 weight decay, as `torch.optim.SGD`:
 * `g ← grad + wd·w; buf ← m·buf + g; w ← w − lr·buf`.
 *
 * @param variables Variables to update, by name.
 * @param options Momentum and weight decay.
 * @returns The optimiser.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { createSgd } from "@agcl/agcl/pipeline";
 * import assert from "node:assert/strict";
 *
 * const w = tf.variable(tf.scalar(1));
 * const opt = createSgd({ w }, { momentum: 0 });
 * opt.apply({ w: tf.scalar(2) }, 0.1);
 * assert.ok(Math.abs((await w.data())[0]! - 0.8) < 1e-6);
 * ```
 */
export function createSgd(
  variables: Record<string, tf.Variable>,
  options: SgdOptions = {},
): Optimizer {
  const { momentum = 0.9, weightDecay = 0 } = options;
  const slots = momentum > 0 ? slotVars(variables, ["momentum"]) : {};
  let step = 0;
  return {
    get step() {
      return step;
    },
    apply(grads, lr) {
      checkGrads(variables, grads, "SGD");
      tf.tidy(() => {
        for (const [k, g0] of Object.entries(grads)) {
          const w = variables[k]!;
          const g = weightDecay > 0 ? g0.add(w.mul(weightDecay)) : g0;
          if (momentum > 0) {
            const buf = slots[`${k}/momentum`]!;
            // PyTorch initialises the buffer with the first gradient.
            const next = step === 0 ? g : buf.mul(momentum).add(g);
            buf.assign(next);
            w.assign(w.sub(next.mul(lr)));
          } else {
            w.assign(w.sub(g.mul(lr)));
          }
        }
      });
      step++;
    },
    async getState() {
      return { step, slots: await readSlots(slots) };
    },
    setState(state) {
      writeSlots(slots, state.slots, "SGD");
      step = state.step;
    },
    dispose() {
      tf.dispose(Object.values(slots));
    },
  };
}

/**
 * Adam, as `torch.optim.Adam` (bias-corrected moments).
 *
 * @param variables Variables to update, by name.
 * @param options Betas and epsilon.
 * @returns The optimiser.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { createAdam } from "@agcl/agcl/pipeline";
 * import assert from "node:assert/strict";
 *
 * const w = tf.variable(tf.scalar(1));
 * const opt = createAdam({ w });
 * opt.apply({ w: tf.scalar(5) }, 0.1); // first step moves by lr·sign(g)
 * assert.ok(Math.abs((await w.data())[0]! - 0.9) < 1e-4);
 * ```
 */
export function createAdam(
  variables: Record<string, tf.Variable>,
  options: AdamOptions = {},
): Optimizer {
  const { beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8 } = options;
  const slots = slotVars(variables, ["m", "v"]);
  let step = 0;
  return {
    get step() {
      return step;
    },
    apply(grads, lr) {
      checkGrads(variables, grads, "Adam");
      const t = step + 1;
      const c1 = 1 - beta1 ** t;
      const c2 = 1 - beta2 ** t;
      tf.tidy(() => {
        for (const [k, g] of Object.entries(grads)) {
          const w = variables[k]!;
          const m = slots[`${k}/m`]!;
          const v = slots[`${k}/v`]!;
          if (adamUpdateRouted(w)) {
            // One kernel, the same float32 arithmetic as the ops below.
            const [w1, m1, v1] = adamUpdate({ w, m, v, g }, {
              lr,
              beta1,
              beta2,
              epsilon,
              c1,
              c2,
            });
            m.assign(m1);
            v.assign(v1);
            w.assign(w1);
            continue;
          }
          const m1 = m.mul(beta1).add(g.mul(1 - beta1));
          const v1 = v.mul(beta2).add(g.square().mul(1 - beta2));
          m.assign(m1);
          v.assign(v1);
          const update = m1.div(c1).div(v1.div(c2).sqrt().add(epsilon));
          w.assign(w.sub(update.mul(lr)));
        }
      });
      step = t;
    },
    async getState() {
      return { step, slots: await readSlots(slots) };
    },
    setState(state) {
      writeSlots(slots, state.slots, "Adam");
      step = state.step;
    },
    dispose() {
      tf.dispose(Object.values(slots));
    },
  };
}

/** Options for {@linkcode scheduledLr}. */
export interface ScheduledLrOptions {
  /** `"constant"`, or cosine decay to 0 over `total` steps. */
  schedule: "constant" | "cosine";
  /** Base learning rate. */
  lr: number;
  /** Steps in the stage. */
  total: number;
}

/**
 * Learning rate at `step` (0-based) of `total`: constant, or cosine decay
 * from `lr` to 0 (`lr·(1 + cos(π·step/total))/2`).
 *
 * @param step Step index.
 * @param options Schedule, base learning rate and steps in the stage.
 * @returns The learning rate.
 *
 * @example Halfway through a cosine schedule
 * ```ts
 * import { scheduledLr } from "@agcl/agcl/pipeline";
 * import assert from "node:assert/strict";
 *
 * assert.equal(scheduledLr(0, { schedule: "cosine", lr: 0.1, total: 10 }), 0.1);
 * assert.ok(Math.abs(scheduledLr(5, { schedule: "cosine", lr: 0.1, total: 10 }) - 0.05) < 1e-12);
 * ```
 */
export function scheduledLr(
  step: number,
  options: ScheduledLrOptions,
): number {
  const { schedule, lr, total } = options;
  if (schedule === "constant" || total <= 0) return lr;
  return lr * 0.5 * (1 + Math.cos(Math.PI * Math.min(step, total) / total));
}
