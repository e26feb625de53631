import assert from "node:assert/strict";
import { join } from "node:path";

const TOOL = new URL("../../tools/report_screenshot.ts", import.meta.url)
  .pathname;

Deno.test("tools/report_screenshot.ts renders a synthetic report in Chromium, or skips cleanly without it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const png = join(dir, "shot.png");
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", TOOL, "--out", png],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    if (text.startsWith("skipped:")) {
      assert.match(text, /no Chromium .* apt-get install chromium/);
      return;
    }
    assert.match(text, /^screenshot: .*shot\.png \(\d+ of 3000 rows drawn\)$/m);
    assert.ok((await Deno.stat(png)).size > 50_000);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
