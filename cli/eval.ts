/** `deno task eval`: not built yet. */
import { runCli } from "./_args.ts";

await runCli(() => {
  throw new Error("deno task eval is not implemented yet");
});
