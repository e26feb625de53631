/**
 * Shared start-up of the model tests: cpu is the default backend. The wasm
 * backend opens a system BLAS through FFI the first time it is activated;
 * doing that here, outside any test, keeps Deno's resource sanitizer from
 * counting the library against whichever wasm test happens to run first.
 */
import { selectBackend } from "../../backends/mod.ts";
import { AVAILABLE } from "../_utils.ts";

if (AVAILABLE.includes("wasm")) {
  await selectBackend("wasm", { purpose: "infer" });
}
await selectBackend("cpu", { purpose: "train" });
