/**
 * Checks of option values shared by the augmentations: a `[low, high]`
 * interval and a number in `[0, hi]`, each throwing a `RangeError` that
 * names the action, the option and the value.
 *
 * @module
 */

/** Bounds of {@linkcode checkInterval}. */
export interface IntervalBounds {
  /** What the caller does, for the message: `"augment"`, `"augment slices"`. */
  action: string;
  /** Least value of `low`. */
  lo: number;
  /** Greatest value of `high`; absent: any finite number. */
  hi?: number;
  /** `low` must be strictly greater than `lo`. @default {false} */
  openLow?: boolean;
}

/**
 * Returns `v` as `[low, high]` when it is a pair of numbers with
 * `lo <= low <= high <= hi` (`lo < low` when `openLow`; `high` finite when
 * `hi` is absent).
 *
 * @throws {RangeError} Otherwise, naming `name` and the value.
 */
export function checkInterval(
  v: unknown,
  name: string,
  bounds: IntervalBounds,
): [number, number] {
  const { action, lo, hi, openLow = false } = bounds;
  if (
    Array.isArray(v) && v.length === 2 && (openLow ? v[0] > lo : v[0] >= lo) &&
    v[0] <= v[1] && (hi === undefined ? Number.isFinite(v[1]) : v[1] <= hi)
  ) {
    return [v[0], v[1]];
  }
  const low = `${lo} ${openLow ? "<" : "<="} low <= high`;
  throw new RangeError(
    `Cannot ${action} as '${name}' must be [low, high] with ${low}${
      hi === undefined ? "" : ` <= ${hi}`
    }: current value is ${Array.isArray(v) ? `[${v}]` : JSON.stringify(v)}`,
  );
}

/**
 * Returns `v` when `0 <= v <= hi`.
 *
 * @throws {RangeError} Otherwise, naming `action`, `name` and the value.
 */
export function checkUpTo(
  v: number,
  name: string,
  bounds: { action: string; hi: number },
): number {
  if (!(v >= 0 && v <= bounds.hi)) {
    throw new RangeError(
      `Cannot ${bounds.action} as '${name}' must be in [0, ${bounds.hi}]: current value is ${v}`,
    );
  }
  return v;
}
