/**
 * The paper's losses as pure tensor functions: NT-Xent (SSCL, Eq. 2),
 * supervised and modal-target contrastive (Eq. 3), and soft Dice (Eq. 1).
 * Each runs inside `tf.tidy`, validates its input, and never returns NaN.
 *
 * @example Modal-target loss on two samples
 * ```ts
 * import assert from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { modalTargetLoss } from "@agcl/agcl/losses";
 *
 * const f = tf.tensor3d([[[1, 0], [0.9, 0.1]], [[0, 1], [0.1, 0.9]]]); // [2, 2, 2]
 * const loss = modalTargetLoss(f, { domain: [0, 0], target: [1, 2] });
 * const [value] = await loss.data();
 * assert.ok(Number.isFinite(value) && value! > 0);
 * tf.dispose([f, loss]);
 * ```
 *
 * @module
 */
export * from "./sup_con.ts";
export * from "./nt_xent.ts";
export * from "./modal_target.ts";
export * from "./dice.ts";
