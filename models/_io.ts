/** Atomic file writes for checkpoints (internal). */

let tempCounter = 0;

/**
 * Writes `bytes` to `path` atomically: a temporary file beside it is
 * written, flushed to disk (fsync) and renamed over `path`, so a reader
 * sees the old file or the new one, never a partial one.
 *
 * @param path Destination.
 * @param bytes Content.
 * @throws {Error} If the file cannot be written (the temporary file is removed).
 */
export async function writeFileAtomic(
  path: string,
  bytes: Uint8Array,
): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}-${++tempCounter}`;
  try {
    const file = await Deno.open(tmp, {
      write: true,
      create: true,
      truncate: true,
    });
    try {
      let written = 0;
      while (written < bytes.length) {
        written += await file.write(bytes.subarray(written));
      }
      await file.sync();
    } finally {
      file.close();
    }
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw new Error(
      `Cannot write '${path}': ${e instanceof Error ? e.message : e}`,
      { cause: e },
    );
  }
}
