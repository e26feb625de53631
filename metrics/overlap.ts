/**
 * Overlap metrics on label maps: Dice, IoU, and the confusion-matrix mIoU of
 * PASCAL VOC with its 255 "ignore" label.
 *
 * @module
 */

/** Options for {@linkcode diceScore} and {@linkcode iouScore}. */
export interface OverlapOptions {
  /** Label value that is foreground; without it, every non-zero value is. */
  label?: number;
}

function counts(
  fn: string,
  pred: ArrayLike<number>,
  truth: ArrayLike<number>,
  label: number | undefined,
): [number, number, number] {
  if (pred.length !== truth.length) {
    throw new TypeError(
      `Cannot compute ${fn} as 'pred' has ${pred.length} voxels and 'truth' has ${truth.length}`,
    );
  }
  let np = 0, nt = 0, both = 0;
  for (let i = 0; i < pred.length; i++) {
    const a = label === undefined ? pred[i] !== 0 : pred[i] === label;
    const b = label === undefined ? truth[i] !== 0 : truth[i] === label;
    if (a) np++;
    if (b) nt++;
    if (a && b) both++;
  }
  return [np, nt, both];
}

/**
 * Dice coefficient 2|P∩T| / (|P| + |T|): 1 when both masks are empty, 0 when
 * only one is (the empty-mask policy of DESIGN.md).
 *
 * @param pred Predicted label map.
 * @param truth True label map, same length.
 * @param options Which label is foreground.
 * @returns Dice in [0, 1].
 * @throws {TypeError} When the lengths differ.
 *
 * @example
 * ```ts
 * import { diceScore } from "@agcl/agcl/metrics";
 * import assert from "node:assert/strict";
 * assert.equal(diceScore([1, 1, 0, 0], [1, 0, 0, 0]), 0.6666666666666666);
 * ```
 */
export function diceScore(
  pred: ArrayLike<number>,
  truth: ArrayLike<number>,
  options: OverlapOptions = {},
): number {
  const [np, nt, both] = counts("diceScore", pred, truth, options.label);
  return np + nt === 0 ? 1 : (2 * both) / (np + nt);
}

/**
 * Intersection over union |P∩T| / |P∪T|: 1 when both masks are empty.
 *
 * @param pred Predicted label map.
 * @param truth True label map, same length.
 * @param options Which label is foreground.
 * @returns IoU in [0, 1].
 * @throws {TypeError} When the lengths differ.
 *
 * @example
 * ```ts
 * import { iouScore } from "@agcl/agcl/metrics";
 * import assert from "node:assert/strict";
 * assert.equal(iouScore([1, 1, 0, 0], [1, 0, 0, 0]), 0.5);
 * ```
 */
export function iouScore(
  pred: ArrayLike<number>,
  truth: ArrayLike<number>,
  options: OverlapOptions = {},
): number {
  const [np, nt, both] = counts("iouScore", pred, truth, options.label);
  const union = np + nt - both;
  return union === 0 ? 1 : both / union;
}

/** Options for {@linkcode confusionMatrix} and {@linkcode meanIoU}. */
export interface ConfusionOptions {
  /** Number of classes (labels 0 … numClasses − 1). */
  numClasses: number;
  /** Truth value whose pixels are left out. @default {255} */
  ignoreIndex?: number;
  /** Matrix to accumulate into (e.g. over a whole data set). */
  into?: Float64Array;
}

/**
 * Confusion matrix `[numClasses, numClasses]` (row = truth, column =
 * prediction), row-major, skipping pixels whose truth is `ignoreIndex`.
 *
 * @param pred Predicted labels.
 * @param truth True labels, same length.
 * @param options Class count, ignore label, matrix to accumulate into.
 * @returns The (accumulated) matrix.
 * @throws {TypeError} When the lengths differ or `into` has the wrong size.
 * @throws {RangeError} When a label outside [0, numClasses) is found (other than the ignore label in truth).
 *
 * @example
 * ```ts
 * import { confusionMatrix } from "@agcl/agcl/metrics";
 * import assert from "node:assert/strict";
 * const m = confusionMatrix([0, 1, 1], [0, 1, 255], { numClasses: 2 });
 * assert.deepEqual(Array.from(m), [1, 0, 0, 1]);
 * ```
 */
export function confusionMatrix(
  pred: ArrayLike<number>,
  truth: ArrayLike<number>,
  options: ConfusionOptions,
): Float64Array {
  const { numClasses, ignoreIndex = 255 } = options;
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw new RangeError(
      `Cannot compute confusionMatrix as 'numClasses' must be a positive integer: current value is ${numClasses}`,
    );
  }
  if (pred.length !== truth.length) {
    throw new TypeError(
      `Cannot compute confusionMatrix as 'pred' has ${pred.length} pixels and 'truth' has ${truth.length}`,
    );
  }
  const m = options.into ?? new Float64Array(numClasses * numClasses);
  if (m.length !== numClasses * numClasses) {
    throw new TypeError(
      `Cannot compute confusionMatrix as 'into' must have ${
        numClasses * numClasses
      } entries: current length is ${m.length}`,
    );
  }
  for (let i = 0; i < pred.length; i++) {
    const t = truth[i]!;
    if (t === ignoreIndex) continue;
    const p = pred[i]!;
    if (
      !(t >= 0 && t < numClasses && Number.isInteger(t)) ||
      !(p >= 0 && p < numClasses && Number.isInteger(p))
    ) {
      throw new RangeError(
        `Cannot compute confusionMatrix as labels must be integers in [0, ${numClasses}) or ${ignoreIndex}: found truth ${t}, prediction ${p} at index ${i}`,
      );
    }
    m[t * numClasses + p]!++;
  }
  return m;
}

/** Result of {@linkcode meanIoU}. */
export interface MeanIoUResult {
  /** Mean of the per-class IoUs that are defined. */
  miou: number;
  /** IoU per class; `null` when the class is absent from both truth and prediction. */
  perClass: (number | null)[];
  /** How many classes were left out of the mean (absent everywhere). */
  absent: number;
}

/**
 * Mean IoU from a confusion matrix (VOC protocol): per class
 * TP / (TP + FP + FN); classes absent from truth and prediction are left out
 * of the mean and counted in `absent`.
 *
 * @param matrix Row-major `[numClasses, numClasses]`, row = truth.
 * @returns mIoU, per-class IoU, count of absent classes.
 * @throws {TypeError} When the matrix is not square.
 *
 * @example
 * ```ts
 * import { meanIoUFromConfusion } from "@agcl/agcl/metrics";
 * import assert from "node:assert/strict";
 * assert.equal(meanIoUFromConfusion(new Float64Array([2, 1, 0, 1])).miou, 0.5833333333333333);
 * ```
 */
export function meanIoUFromConfusion(matrix: ArrayLike<number>): MeanIoUResult {
  const n = Math.round(Math.sqrt(matrix.length));
  if (n * n !== matrix.length || n === 0) {
    throw new TypeError(
      `Cannot compute meanIoUFromConfusion as the matrix must be square: found ${matrix.length} entries`,
    );
  }
  const perClass: (number | null)[] = [];
  let sum = 0, defined = 0;
  for (let c = 0; c < n; c++) {
    let row = 0, col = 0;
    for (let k = 0; k < n; k++) {
      row += matrix[c * n + k]!;
      col += matrix[k * n + c]!;
    }
    const tp = matrix[c * n + c]!;
    const union = row + col - tp;
    if (union === 0) {
      perClass.push(null);
      continue;
    }
    perClass.push(tp / union);
    sum += tp / union;
    defined++;
  }
  return {
    miou: defined === 0 ? 0 : sum / defined,
    perClass,
    absent: n - defined,
  };
}

/**
 * Mean IoU of one label map pair, ignoring truth pixels labelled
 * `ignoreIndex` (255 in PASCAL VOC). For a data set, accumulate
 * {@linkcode confusionMatrix} with `into` and call
 * {@linkcode meanIoUFromConfusion} once.
 *
 * @param pred Predicted labels.
 * @param truth True labels, same length.
 * @param options Class count and ignore label.
 * @returns mIoU, per-class IoU, count of absent classes.
 * @throws {TypeError} When the lengths differ.
 * @throws {RangeError} When a label is out of range.
 *
 * @example
 * ```ts
 * import { meanIoU } from "@agcl/agcl/metrics";
 * import assert from "node:assert/strict";
 * assert.equal(meanIoU([0, 1, 0], [0, 1, 255], { numClasses: 2 }).miou, 1);
 * ```
 */
export function meanIoU(
  pred: ArrayLike<number>,
  truth: ArrayLike<number>,
  options: ConfusionOptions,
): MeanIoUResult {
  return meanIoUFromConfusion(confusionMatrix(pred, truth, options));
}
