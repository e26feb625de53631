import { setWasmAcceleration } from "../../backends/mod.ts";
import { registerParitySuite } from "./_suite.ts";

// The portable path: wasm's own (XNNPACK) kernels plus the ones backends/ adds.
await setWasmAcceleration("xnnpack");
registerParitySuite("xnnpack", false);
