import assert from "node:assert/strict";
import { join } from "node:path";
import { openDnnl } from "../../backends/_dnnl.ts";

const TOOL = new URL("../../tools/dnnl_sweep.ts", import.meta.url).pathname;
const { dnnl } = openDnnl();

Deno.test({
  name:
    "tools/dnnl_sweep.ts checks given convolutions under malloc checks, strided 1×1 gradients kept off oneDNN",
  ignore: dnnl === undefined,
}, async () => {
  const dir = await Deno.makeTempDir();
  try {
    const shapes = join(dir, "shapes.json");
    await Deno.writeTextFile(
      shapes,
      JSON.stringify([
        // The shape whose backward weights crashed oneDNN 2.6.3.
        {
          x: [16, 40, 8],
          filter: [1, 1, 8, 16],
          strides: 2,
          pad: "same",
          dilations: 1,
          batches: [2],
          seen: ["test"],
        },
        {
          x: [9, 11, 3],
          filter: [3, 3, 3, 5],
          strides: 1,
          pad: [[0, 0], [2, 2], [1, 3], [0, 0]],
          dilations: [2, 1],
          batches: [1],
          seen: ["test"],
        },
      ]),
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", TOOL, "--shapes", shapes],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, text + new TextDecoder().decode(out.stderr));
    assert.match(text, /MALLOC_CHECK_=3/);
    assert.match(
      text,
      /2 convolutions, 8 shape×batch checks \(4 passes each\), 0 failures/,
    );
    // Forward and fused forward on oneDNN; both gradients below it.
    assert.match(
      text,
      /^ {2}0 x \[2,16,40,8\] f 1×1 8→16 s 2 .*: 2 oneDNN calls/m,
    );
    assert.match(text, /^ {2}1 x \[4,9,11,3\] f 3×3 3→5 .*: 4 oneDNN calls/m);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
