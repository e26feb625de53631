/** Input checks shared by the patch sampler and the batch stream (internal). */
import { positiveInt } from "../_checks.ts";
import type { LabelMap, SamplingCase } from "./patch_sampler.ts";

/**
 * Checks that `c` is a well-formed {@linkcode SamplingCase}.
 *
 * @throws {TypeError} On a wrong array type or length.
 * @throws {RangeError} On bad dims or channels.
 */
export function validateSamplingCase(
  c: SamplingCase,
  where: string,
): void {
  const fn = where;
  if (
    !Array.isArray(c.dims) || c.dims.length !== 3 ||
    !c.dims.every((d) => Number.isInteger(d) && d >= 1)
  ) {
    throw new RangeError(
      `Cannot ${fn} as case '${c.id}' must have 'dims' of 3 positive integers: current value is [${c.dims}]`,
    );
  }
  positiveInt(c.channels, `channels' of case '${c.id}`, fn);
  if (!Number.isInteger(c.domain) || c.domain < 0) {
    throw new RangeError(
      `Cannot ${fn} as case '${c.id}' must have a non-negative integer 'domain': current value is ${c.domain}`,
    );
  }
  const [nx, ny, nz] = c.dims;
  const voxels = nx * ny * nz;
  if (!(c.image instanceof Float32Array)) {
    throw new TypeError(
      `Cannot ${fn} as case '${c.id}' must have a Float32Array 'image': current type is ${
        (c.image as unknown as object | undefined)?.constructor?.name
      }`,
    );
  }
  if (c.image.length !== voxels * c.channels) {
    throw new TypeError(
      `Cannot ${fn} as case '${c.id}' 'image' must have ${
        voxels * c.channels
      } values (dims [${c.dims}] × ${c.channels} channels): current length is ${c.image.length}`,
    );
  }
  const maps: [string, LabelMap | undefined][] = [
    ["attention", c.attention],
    ["label", c.label],
  ];
  for (const [name, map] of maps) {
    if (map === undefined && name === "label") continue;
    if (!(map instanceof Uint8Array || map instanceof Int16Array)) {
      throw new TypeError(
        `Cannot ${fn} as case '${c.id}' must have a Uint8Array or Int16Array '${name}': current type is ${
          (map as unknown as object | undefined)?.constructor?.name
        }`,
      );
    }
    if (map.length !== voxels) {
      throw new TypeError(
        `Cannot ${fn} as case '${c.id}' '${name}' must have ${voxels} values (dims [${c.dims}]): current length is ${map.length}`,
      );
    }
  }
}
