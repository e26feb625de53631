/**
 * tfjs ⇄ PyTorch layouts of flat float32 arrays: convolution weights are
 * HWIO here and OIHW in PyTorch, dense weights `[in, out]` here and
 * `[out, in]` in PyTorch; every other rank is the same in both. Pure
 * permutations, so a round trip is exact.
 */

/** A tfjs shape as PyTorch stores it: HWIO → OIHW, `[in, out]` → `[out, in]`. */
export function torchShape(shape: readonly number[]): number[] {
  if (shape.length === 4) return [shape[3]!, shape[2]!, shape[0]!, shape[1]!];
  if (shape.length === 2) return [shape[1]!, shape[0]!];
  return [...shape];
}

/**
 * Permutes `data` of tfjs shape `shape` into PyTorch order (or back with
 * `toTorch: false`, `shape` still the tfjs shape). Other ranks are copied.
 */
export function permuteLayout<T extends Float32Array | Float64Array>(
  data: T,
  shape: readonly number[],
  options: { toTorch: boolean },
): T {
  const out = data.slice() as T;
  if (shape.length === 4) {
    const [h, w, i, o] = shape as [number, number, number, number];
    // tfjs index ((y·w + x)·i + c)·o + k; PyTorch ((k·i + c)·h + y)·w + x.
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        for (let c = 0; c < i; c++) {
          for (let k = 0; k < o; k++) {
            const tf = ((y * w + x) * i + c) * o + k;
            const pt = ((k * i + c) * h + y) * w + x;
            if (options.toTorch) out[pt] = data[tf]!;
            else out[tf] = data[pt]!;
          }
        }
      }
    }
  } else if (shape.length === 2) {
    const [i, o] = shape as [number, number];
    for (let c = 0; c < i; c++) {
      for (let k = 0; k < o; k++) {
        if (options.toTorch) out[k * i + c] = data[c * o + k]!;
        else out[c * o + k] = data[k * i + c]!;
      }
    }
  }
  return out;
}
