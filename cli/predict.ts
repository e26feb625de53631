/** `deno task predict`: not built yet. */
import { runCli } from "./_args.ts";

await runCli(() => {
  throw new Error("deno task predict is not implemented yet");
});
