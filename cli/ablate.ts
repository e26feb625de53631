/** `deno task ablate`: not built yet. */
import { runCli } from "./_args.ts";

await runCli(() => {
  throw new Error("deno task ablate is not implemented yet");
});
