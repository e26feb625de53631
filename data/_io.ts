/** Internal file helpers: gzip through the runtime's native streams, atomic writes. */
import { dirname, join } from "node:path";

/** True when `bytes` start with the gzip magic number. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Compressed bytes fed to the inflater at a time: deflate expands at most
 * ~1032×, so one step overshoots a size limit by at most ~4 MiB.
 */
const FEED = 4096;

/** `bytes` as a pull stream of small chunks, so inflating is paced by reading. */
function feed(bytes: Uint8Array): ReadableStream<Uint8Array> {
  let off = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (off >= bytes.length) return c.close();
      c.enqueue(bytes.slice(off, off + FEED));
      off += FEED;
    },
  }, { highWaterMark: 0 });
}

class OverLimit extends Error {}

/**
 * Inflates one gzip member (the runtime checks its CRC and length),
 * stopping as soon as more than `limit` bytes come out: then it throws
 * {@linkcode OverLimit}, or with `keep` returns the first `limit` bytes.
 */
async function inflateMember(
  bytes: Uint8Array,
  limit: number,
  keep: boolean,
): Promise<Uint8Array[]> {
  const reader = (feed(bytes) as ReadableStream<BufferSource>)
    .pipeThrough(new DecompressionStream("gzip")).getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return parts;
    if (total + value.length > limit) {
      await reader.cancel().catch(() => {});
      if (!keep) throw new OverLimit();
      parts.push(value.subarray(0, limit - total));
      return parts;
    }
    total += value.length;
    parts.push(value);
  }
}

/** Options for {@linkcode gunzip}. */
export interface GunzipOptions {
  /** Most bytes the data may inflate to. @default {Infinity} */
  maxBytes?: number;
  /** Why `maxBytes`, appended to the error when it is exceeded. */
  limitReason?: string;
  /**
   * Return the first `maxBytes` bytes instead of failing when there are
   * more (to read a header). @default {false}
   */
  prefix?: boolean;
}

/**
 * Inflates gzip data with `DecompressionStream` (native zlib), streamed in
 * small steps so that inflating stops once `maxBytes` is exceeded (a
 * decompression bomb costs ~`maxBytes` of memory, not its inflated size).
 * Several concatenated gzip members (as `cat a.gz b.gz` makes, and as
 * gzip and nibabel read) are inflated one after another. The CRC and length
 * of each member are checked by the runtime (not of a member cut short by
 * `prefix`).
 *
 * @throws {Error} Naming `source` when the data is corrupt, truncated, or
 *   inflates past `maxBytes`.
 */
export async function gunzip(
  bytes: Uint8Array,
  source: string,
  options: GunzipOptions = {},
): Promise<Uint8Array> {
  const { maxBytes = Infinity, limitReason, prefix = false } = options;
  const parts: Uint8Array[] = [];
  let total = 0;
  let start = 0;
  const member = async (end: number) => {
    const got = await inflateMember(
      bytes.subarray(start, end),
      maxBytes - total,
      prefix,
    );
    for (const p of got) total += p.length;
    parts.push(...got);
    start = end;
  };
  try {
    while (start < bytes.length && total < maxBytes) {
      try {
        await member(bytes.length);
        break;
      } catch (e) {
        if (e instanceof OverLimit || !/write whole buffer/.test(describe(e))) {
          throw e;
        }
      }
      // Data follows the member: find where the next member starts by
      // trying each gzip magic (1f 8b 08) as the boundary; the member's
      // own CRC and length reject a wrong guess.
      let found = false;
      for (let p = start + 18; p + 3 <= bytes.length && !found; p++) {
        if (bytes[p] !== 0x1f || bytes[p + 1] !== 0x8b || bytes[p + 2] !== 8) {
          continue;
        }
        try {
          await member(p);
          found = true;
        } catch (e) {
          if (e instanceof OverLimit) throw e;
        }
      }
      if (!found) {
        throw new Error(
          `data after the end of gzip member at byte ${start} is not another gzip member`,
        );
      }
    }
  } catch (e) {
    if (e instanceof OverLimit) {
      throw new Error(
        `Cannot read ${source} as its gzip data inflates past ${maxBytes} bytes${
          limitReason ? `, ${limitReason}` : ""
        }: stopped inflating (a decompression bomb?)`,
      );
    }
    throw new Error(
      `Cannot read ${source} as its gzip data is corrupt or truncated: ${
        describe(e)
      }`,
    );
  }
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
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

/** Marks a temporary file of {@linkcode writeFileAtomic}: `<target>.tmp-<pid>-<random>`. */
const TEMP_SUFFIX = /\.tmp-\d+-[0-9a-f]{8}$/;

/** True when `name` is a temporary file left by {@linkcode writeFileAtomic}. */
export function isAtomicTemp(name: string): boolean {
  return TEMP_SUFFIX.test(name);
}

/**
 * Writes `content` to `path` atomically: a temporary file beside it is
 * written, flushed to disk (fsync), renamed over `path`, and the folder is
 * flushed too where the platform allows, so a reader sees the old file or
 * the new one, never a partial one, even after a power cut. The folder is
 * created when missing.
 *
 * @param path Destination.
 * @param content Bytes, a string (written as UTF-8), or parts written in order.
 * @throws {Error} `Cannot write '<path>': <reason>` when any step fails; the
 *   temporary file is removed first, so a full disk is not kept full.
 */
export async function writeFileAtomic(
  path: string,
  content: Uint8Array | string | readonly Uint8Array[],
): Promise<void> {
  const parts = typeof content === "string"
    ? [new TextEncoder().encode(content)]
    : content instanceof Uint8Array
    ? [content]
    : content;
  const rand = crypto.getRandomValues(new Uint32Array(1))[0]!
    .toString(16).padStart(8, "0");
  const tmp = `${path}.tmp-${Deno.pid}-${rand}`;
  let file: Deno.FsFile | undefined;
  try {
    await Deno.mkdir(dirname(path), { recursive: true });
    file = await Deno.open(tmp, { write: true, createNew: true });
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
    throw new Error(`Cannot write '${path}': ${describe(e)}`, { cause: e });
  }
  await syncDir(dirname(path));
}

/** Flushes a folder's entries (the rename) to disk; a no-op where unsupported. */
async function syncDir(dir: string): Promise<void> {
  let d: Deno.FsFile | undefined;
  try {
    d = await Deno.open(dir, { read: true });
    await d.sync();
  } catch {
    // Windows cannot open folders as files; the rename itself has happened.
  } finally {
    d?.close();
  }
}

/**
 * Removes the temporary files {@linkcode writeFileAtomic} left in `dir` and
 * its subfolders (`depth` levels) when a process died mid-write.
 *
 * @returns The paths removed.
 */
export async function removeAtomicTemps(
  dir: string,
  depth = 1,
): Promise<string[]> {
  const removed: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return removed;
    throw e;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isFile && isAtomicTemp(e.name)) {
      await Deno.remove(p);
      removed.push(p);
    } else if (e.isDirectory && depth > 0) {
      removed.push(...await removeAtomicTemps(p, depth - 1));
    }
  }
  return removed;
}

/** SHA-256 of `bytes` as lower-case hex. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    bytes as Uint8Array<ArrayBuffer>,
  );
  return Array.from(
    new Uint8Array(digest),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
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

/**
 * Reads a JSON-lines file (`log.jsonl`): one value per non-blank line, or
 * `[]` when the file does not exist. A last line that is not JSON is the
 * trace of a write cut by a crash and is dropped; any earlier line that is
 * not JSON is corruption, and throws.
 *
 * @param path The file.
 * @returns The parsed lines, in order.
 * @throws {Error} `Cannot read '<path>' as line <n> is not JSON: …` for a
 *   bad line before the last, or when the file cannot be read.
 */
export async function readJsonLines(path: string): Promise<unknown[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw new Error(
      `Cannot read '${path}': ${e instanceof Error ? e.message : e}`,
    );
  }
  const lines = text.split("\n");
  const last = lines.findLastIndex((l) => l.trim() !== "");
  const out: unknown[] = [];
  for (let i = 0; i <= last; i++) {
    const line = lines[i]!;
    if (line.trim() === "") continue;
    try {
      out.push(JSON.parse(line));
    } catch (e) {
      if (i === last) break;
      throw new Error(
        `Cannot read '${path}' as line ${i + 1} is not JSON: ${
          e instanceof Error ? e.message : e
        }`,
      );
    }
  }
  return out;
}

/**
 * Whether `path` exists (any kind of entry). Only "not found" means no;
 * any other failure to stat it (permissions, I/O) is thrown.
 */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** {@linkcode exists}, synchronously. */
export function existsSync(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}
