/** Internal grid helpers: bounding boxes and crops (x fastest). */

/** Bounding box [lo, hi] per axis (inclusive), or null when empty. */
export function boundingBox(
  mask: ArrayLike<number>,
  dims: readonly number[],
): number[] | null {
  const nx = dims[0]!, ny = dims[1]!, nz = dims[2] ?? 1;
  let x0 = nx, x1 = -1, y0 = ny, y1 = -1, z0 = nz, z1 = -1;
  let i = 0;
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++, i++) {
        if (mask[i] === 0) continue;
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
        if (z < z0) z0 = z;
        if (z > z1) z1 = z;
      }
    }
  }
  return x1 < 0 ? null : [x0, x1, y0, y1, z0, z1];
}

/**
 * Copies the inclusive box `[x0,x1,y0,y1,z0,z1]` out of a grid as a binary
 * mask: 1 where the value equals `value` (or is non-zero without one).
 */
export function cropBox(
  data: ArrayLike<number>,
  dims: readonly number[],
  box: readonly number[],
  value?: number,
): { data: Uint8Array; dims: [number, number, number] } {
  const nx = dims[0]!, ny = dims[1]!;
  const [x0, x1, y0, y1, z0, z1] = box as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const cx = x1 - x0 + 1, cy = y1 - y0 + 1, cz = z1 - z0 + 1;
  const out = new Uint8Array(cx * cy * cz);
  let k = 0;
  for (let z = z0; z <= z1; z++) {
    for (let y = y0; y <= y1; y++) {
      const row = (z * ny + y) * nx;
      if (value === undefined) {
        for (let x = x0; x <= x1; x++) out[k++] = data[row + x]! !== 0 ? 1 : 0;
      } else {
        for (let x = x0; x <= x1; x++) {
          out[k++] = data[row + x]! === value ? 1 : 0;
        }
      }
    }
  }
  return { data: out, dims: [cx, cy, cz] };
}
