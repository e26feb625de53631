import assert from "node:assert/strict";
import { join } from "node:path";
import { exists, existsSync } from "../../data/_io.ts";

Deno.test("exists() and existsSync() say yes for files and folders, no for a missing path, and throw any other stat failure", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "a.txt");
    await Deno.writeTextFile(file, "x");
    for (
      const [path, want] of [[file, true], [dir, true], [
        join(dir, "missing"),
        false,
      ]] as const
    ) {
      assert.equal(await exists(path), want, path);
      assert.equal(existsSync(path), want, path);
    }
    // A path through a file is not "missing": stat fails with ENOTDIR.
    const through = join(file, "child");
    await assert.rejects(() => exists(through), (e: Error) => {
      assert.ok(!(e instanceof Deno.errors.NotFound));
      assert.match(e.message, /child/);
      return true;
    });
    assert.throws(() => existsSync(through), (e: Error) => {
      assert.ok(!(e instanceof Deno.errors.NotFound));
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
