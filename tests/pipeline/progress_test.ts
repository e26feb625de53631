import assert from "node:assert/strict";
import { formatDuration, Progress } from "../../pipeline/mod.ts";

Deno.test("formatDuration() formats m:ss and h:mm:ss", () => {
  assert.equal(formatDuration(5), "0:05");
  assert.equal(formatDuration(125), "2:05");
  assert.equal(formatDuration(3725), "1:02:05");
  assert.equal(formatDuration(NaN), "--:--");
});

Deno.test("Progress plain mode prints ETA lines at most every interval, and the end", () => {
  let t = 0;
  const lines: string[] = [];
  const bar = new Progress("stage", 4, {
    mode: "plain",
    write: (s) => lines.push(s),
    now: () => t,
    plainIntervalMs: 1000,
  });
  t = 500;
  bar.tick(1, "loss 1.0"); // first line: 1 done in 0.5 s → eta 1.5 s
  t = 900;
  bar.tick(); // within the interval: silent
  t = 2000;
  bar.tick();
  bar.tick();
  bar.done();
  assert.equal(lines.length, 3);
  assert.match(
    lines[0]!,
    /^stage 1\/4 \[######-+\] {2}25% 0:01 eta 0:02 loss 1.0\n$/,
  );
  assert.match(lines[2]!, /^stage 4\/4 \[#+\] 100% 0:02 eta 0:00/);
});

Deno.test("Progress quiet mode writes nothing; tty mode redraws in place", () => {
  const out: string[] = [];
  const q = new Progress("q", 2, { mode: "quiet", write: (s) => out.push(s) });
  q.tick();
  q.done();
  assert.equal(out.length, 0);
  const bar = new Progress("t", 1, {
    mode: "tty",
    write: (s) => out.push(s),
    now: () => 0,
  });
  bar.done();
  assert.ok(out[0]!.startsWith("\r\x1b[2K"));
  assert.ok(out[0]!.endsWith("\n"));
});
