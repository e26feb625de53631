/**
 * Argument checks shared across folders (internal, never re-exported).
 *
 * @module
 */

/**
 * Throws a RangeError unless `value` is a positive integer, worded
 * "Cannot <action> as '<arg>' must be a positive integer: current value is <value>".
 */
export function positiveInt(value: number, arg: string, action: string): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(
      `Cannot ${action} as '${arg}' must be a positive integer: current value is ${value}`,
    );
  }
}
