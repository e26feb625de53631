/** Internal file helpers: gzip through the runtime's native streams, atomic writes. */

/** True when `bytes` start with the gzip magic number. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Inflates a whole gzip buffer with `DecompressionStream` (native zlib).
 * The CRC and length in the trailer are checked by the runtime.
 *
 * @throws {Error} Naming `source` when the stream is corrupt or truncated.
 */
export async function gunzip(
  bytes: Uint8Array,
  source: string,
): Promise<Uint8Array> {
  const ds = new DecompressionStream("gzip");
  const writer = ds.writable.getWriter();
  // Errors surface on the readable side; swallow the writer's copy of them.
  writer.write(bytes as Uint8Array<ArrayBuffer>).then(() => writer.close())
    .catch(() => {});
  try {
    return new Uint8Array(await new Response(ds.readable).arrayBuffer());
  } catch (e) {
    const why = describe(e);
    const hint = /write whole buffer/.test(why)
      ? " (data after the end of the first gzip member: multi-member gzip is not supported)"
      : "";
    throw new Error(
      `Cannot read ${source} as its gzip data is corrupt or truncated: ${why}${hint}`,
    );
  }
}

/**
 * Inflates only the first `minBytes` of a gzip stream (or all of it when it
 * is shorter), for reading headers without inflating whole volumes.
 */
export async function gunzipPrefix(
  stream: ReadableStream<Uint8Array>,
  minBytes: number,
  source: string,
): Promise<Uint8Array> {
  const reader = (stream as ReadableStream<BufferSource>)
    .pipeThrough(new DecompressionStream("gzip"))
    .getReader();
  const out = new Uint8Array(minBytes);
  let n = 0;
  try {
    while (n < minBytes) {
      const { done, value } = await reader.read();
      if (done) break;
      const take = Math.min(value.length, minBytes - n);
      out.set(value.subarray(0, take), n);
      n += take;
    }
  } catch (e) {
    throw new Error(
      `Cannot read ${source} as its gzip data is corrupt or truncated: ${
        describe(e)
      }`,
    );
  } finally {
    await reader.cancel().catch(() => {});
  }
  return out.subarray(0, n);
}

/** Deflates `bytes` into a gzip member with `CompressionStream` (native zlib). */
export async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const cs = new CompressionStream("gzip");
  const writer = cs.writable.getWriter();
  writer.write(bytes as Uint8Array<ArrayBuffer>).then(() => writer.close())
    .catch(() => {});
  return new Uint8Array(await new Response(cs.readable).arrayBuffer());
}

let tmpCounter = 0;

/**
 * Writes `parts` to `path` atomically: a temporary file beside it is
 * written, flushed to disk, then renamed over `path`, so readers never see
 * a half-written file.
 */
export async function writeFileAtomic(
  path: string,
  parts: Uint8Array[],
): Promise<void> {
  const tmp = `${path}.${Deno.pid}-${++tmpCounter}-${Date.now()}.tmp`;
  let file: Deno.FsFile | undefined;
  try {
    file = await Deno.open(tmp, { write: true, create: true, truncate: true });
    for (const part of parts) {
      let off = 0;
      while (off < part.length) off += await file.write(part.subarray(off));
    }
    await file.sync();
    file.close();
    file = undefined;
    await Deno.rename(tmp, path);
  } catch (e) {
    try {
      file?.close();
    } catch { /* already closed */ }
    await Deno.remove(tmp).catch(() => {});
    throw new Error(`Cannot write '${path}': ${describe(e)}`);
  }
}

/** Reads a whole file, turning "not found" into a clear error naming `what`. */
export async function readFileClear(
  path: string,
  what: string,
): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`Cannot read ${what} '${path}' as it does not exist`);
    }
    if (e instanceof Deno.errors.IsADirectory) {
      throw new Error(`Cannot read ${what} '${path}' as it is a directory`);
    }
    throw new Error(`Cannot read ${what} '${path}': ${describe(e)}`);
  }
}
