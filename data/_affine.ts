/**
 * 4×4 voxel → world affines, row-major `number[][]`: the arithmetic that
 * NIfTI reading and writing ({@link ./nifti.ts}), reorientation
 * ({@link ./orient.ts}) and dataset checks ({@link ./dataset.ts}) share.
 *
 * @module
 */

/** Length of column `j` of the rotation-zoom part: the voxel size along voxel axis `j`. */
export function columnNorm(affine: number[][], j: number): number {
  return Math.hypot(affine[0]![j]!, affine[1]![j]!, affine[2]![j]!);
}

/** Determinant of the top-left 3×3 block of `m`. */
export function det3(m: number[][]): number {
  const [a, b, c] = m as [number[], number[], number[]];
  return a[0]! * (b[1]! * c[2]! - b[2]! * c[1]!) -
    a[1]! * (b[0]! * c[2]! - b[2]! * c[0]!) +
    a[2]! * (b[0]! * c[1]! - b[1]! * c[0]!);
}

/** The matrix product `a · b` of two 4×4 matrices. */
export function matmul4(a: number[][], b: number[][]): number[][] {
  return a.map((row) =>
    [0, 1, 2, 3].map((c) => row.reduce((s, v, k) => s + v * b[k]![c]!, 0))
  );
}

/**
 * Whether two affines agree within a relative `tolerance` in every entry of
 * their top three rows (`|x − y| ≤ tolerance · max(1, |x|, |y|)`); the
 * bottom row of a voxel → world affine carries nothing.
 *
 * Callers choose the tolerance: 1e-6 when deciding whether a header's own
 * qform/sform still describe an affine (float32 fields, read back), 1e-4
 * when checking that an image and its label map share a grid (files from
 * different writers round differently).
 */
export function affinesAgree(
  a: number[][],
  b: number[][],
  tolerance: number,
): boolean {
  for (let r = 0; r < 3; r++) {
    for (let c = 0; c < 4; c++) {
      const x = a[r]![c]!, y = b[r]![c]!;
      if (
        Math.abs(x - y) > tolerance * Math.max(1, Math.abs(x), Math.abs(y))
      ) {
        return false;
      }
    }
  }
  return true;
}

/** A NIfTI qform: rotation quaternion, handedness, voxel sizes and offset. */
export interface Qform {
  /** `quatern_b`, `quatern_c`, `quatern_d` (`a` follows from unit length). */
  quatern: [number, number, number];
  /** `pixdim[0]`: −1 when the third voxel axis is flipped (left-handed grid), else 1. */
  qfac: number;
  /** Voxel sizes `[dx, dy, dz]`, all > 0. */
  zooms: number[];
  /** `qoffset_x`, `qoffset_y`, `qoffset_z`. */
  offset: [number, number, number];
}

/** The affine of a qform (nifti1_io's `quatern_to_mat44`). */
export function qformToAffine(q: Qform): number[][] {
  let [b, c, d] = q.quatern;
  let a = 1 - (b * b + c * c + d * d);
  if (a < 1e-7) {
    // special case: a 180° rotation; renormalise (b, c, d)
    a = 1 / Math.sqrt(b * b + c * c + d * d);
    b *= a;
    c *= a;
    d *= a;
    a = 0;
  } else {
    a = Math.sqrt(a);
  }
  const [dx, dy] = q.zooms as [number, number, number];
  const dz = q.zooms[2]! * (q.qfac < 0 ? -1 : 1);
  const [ox, oy, oz] = q.offset;
  return [
    [
      (a * a + b * b - c * c - d * d) * dx,
      2 * (b * c - a * d) * dy,
      2 * (b * d + a * c) * dz,
      ox,
    ],
    [
      2 * (b * c + a * d) * dx,
      (a * a + c * c - b * b - d * d) * dy,
      2 * (c * d - a * b) * dz,
      oy,
    ],
    [
      2 * (b * d - a * c) * dx,
      2 * (c * d + a * b) * dy,
      (a * a + d * d - c * c - b * b) * dz,
      oz,
    ],
    [0, 0, 0, 1],
  ];
}

/**
 * The qform of an affine with orthogonal columns (nifti1_io's
 * `mat44_to_quatern`), or `null` when a column is zero or the columns are
 * sheared (a qform cannot express it; the sform alone must).
 */
export function affineToQform(affine: number[][]): Qform | null {
  const zooms = [0, 1, 2].map((j) => columnNorm(affine, j));
  if (zooms.some((z) => !(z > 0))) return null;
  const R = [0, 1, 2].map((i) =>
    [0, 1, 2].map((j) => affine[i]![j]! / zooms[j]!)
  );
  for (let i = 0; i < 3; i++) {
    for (let j = i + 1; j < 3; j++) {
      const dot = R[0]![i]! * R[0]![j]! + R[1]![i]! * R[1]![j]! +
        R[2]![i]! * R[2]![j]!;
      if (Math.abs(dot) > 1e-5) return null; // sheared: no qform
    }
  }
  let qfac = 1;
  if (det3(R) < 0) {
    qfac = -1;
    for (let i = 0; i < 3; i++) R[i]![2] = -R[i]![2]!;
  }
  const r = (i: number, j: number) => R[i - 1]![j - 1]!;
  let a = r(1, 1) + r(2, 2) + r(3, 3) + 1;
  let b: number, c: number, d: number;
  if (a > 0.5) {
    a = 0.5 * Math.sqrt(a);
    b = 0.25 * (r(3, 2) - r(2, 3)) / a;
    c = 0.25 * (r(1, 3) - r(3, 1)) / a;
    d = 0.25 * (r(2, 1) - r(1, 2)) / a;
  } else {
    const xd = 1 + r(1, 1) - (r(2, 2) + r(3, 3));
    const yd = 1 + r(2, 2) - (r(1, 1) + r(3, 3));
    const zd = 1 + r(3, 3) - (r(1, 1) + r(2, 2));
    if (xd > 1) {
      b = 0.5 * Math.sqrt(xd);
      c = 0.25 * (r(1, 2) + r(2, 1)) / b;
      d = 0.25 * (r(1, 3) + r(3, 1)) / b;
      a = 0.25 * (r(3, 2) - r(2, 3)) / b;
    } else if (yd > 1) {
      c = 0.5 * Math.sqrt(yd);
      b = 0.25 * (r(1, 2) + r(2, 1)) / c;
      d = 0.25 * (r(2, 3) + r(3, 2)) / c;
      a = 0.25 * (r(1, 3) - r(3, 1)) / c;
    } else {
      d = 0.5 * Math.sqrt(zd);
      b = 0.25 * (r(1, 3) + r(3, 1)) / d;
      c = 0.25 * (r(2, 3) + r(3, 2)) / d;
      a = 0.25 * (r(2, 1) - r(1, 2)) / d;
    }
    if (a < 0) {
      b = -b;
      c = -c;
      d = -d;
    }
  }
  return {
    quatern: [b, c, d],
    qfac,
    zooms,
    offset: [affine[0]![3]!, affine[1]![3]!, affine[2]![3]!],
  };
}
