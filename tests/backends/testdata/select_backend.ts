/**
 * What backend selection does in a fresh process, as one JSON line on
 * stdout; `tests/backends/mod_test.ts` runs it with chosen permissions.
 *
 * `select_backend.ts ensure PURPOSE`: two `ensureBackend` calls and the lines
 * they logged. `select_backend.ts NAME PURPOSE`: one `selectBackend` call,
 * its report or its error message.
 */
import {
  ensureBackend,
  type Purpose,
  selectBackend,
} from "../../../backends/mod.ts";

const [mode = "ensure", purpose = "infer"] = Deno.args as [string, Purpose];
if (mode === "ensure") {
  const lines: string[] = [];
  const log = (line: string) => lines.push(line);
  const first = await ensureBackend(purpose, { log });
  const second = await ensureBackend(purpose, { log });
  console.log(JSON.stringify({ first, second: second ?? null, lines }));
} else {
  try {
    const report = await selectBackend(mode, { purpose, warn: () => {} });
    console.log(JSON.stringify({ report }));
  } catch (e) {
    console.log(JSON.stringify({ error: (e as Error).message }));
  }
}
