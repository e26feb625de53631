/** Where the shared real data lives for the tests (read-only, never copied). */

/**
 * `$AGCL_SHARED_DATA`, else `../shared/data` beside the checkout (or one
 * level up, for worktrees), with a trailing slash; `undefined` when absent,
 * and the tests that need it are then reported as ignored.
 */
export const SHARED: string | undefined = [
  Deno.env.get("AGCL_SHARED_DATA"),
  new URL("../../../shared/data/", import.meta.url).pathname,
  new URL("../../../../shared/data/", import.meta.url).pathname,
].filter((p): p is string => !!p).map((p) => p.endsWith("/") ? p : `${p}/`)
  .find((p) => {
    try {
      return Deno.statSync(`${p}SUMMARY.json`).isFile;
    } catch {
      return false;
    }
  });
