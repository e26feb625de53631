import assert from "node:assert/strict";
import { type DenoRun, runDeno } from "./_run.ts";
import { join } from "node:path";
import { writeSyntheticRun } from "../report/_synthetic_run.ts";

const CLI = new URL("../../cli/report.ts", import.meta.url).pathname;

function runReport(args: string[]): Promise<DenoRun> {
  return runDeno(["run", "-A", CLI, ...args]);
}

Deno.test("deno task report writes a run's report, and --compare a page of several runs", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const a = join(dir, "a"), b = join(dir, "b");
    await writeSyntheticRun(a, { seed: 1 });
    await writeSyntheticRun(b, { seed: 2, quality: 0.7 });
    const one = await runReport([a]);
    assert.equal(one.code, 0, one.stderr);
    assert.equal(
      one.stdout.trim(),
      `report: ${join(a, "report", "index.html")}`,
    );
    const out = join(dir, "cmp");
    const both = await runReport(["--compare", a, b, "--out", out]);
    assert.equal(both.code, 0, both.stderr);
    assert.equal(both.stdout.trim(), `report: ${join(out, "index.html")}`);
    const html = await Deno.readTextFile(join(out, "index.html"));
    // Each run's name links to its own report.
    assert.ok(html.includes('<a href="../a/report/index.html">a</a>'));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task report refuses a missing run, --compare with one run, and two runs without it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeSyntheticRun(join(dir, "a"));
    const cases: [string[], RegExp][] = [
      [
        [join(dir, "nope")],
        /^error: report: '.*nope' is not a run directory$/m,
      ],
      [
        ["--compare", join(dir, "a")],
        /--compare needs two or more run directories: got 1/,
      ],
      [
        [join(dir, "a"), join(dir, "a")],
        /give one run directory \(or --compare and several\): got 2/,
      ],
      [["--bogus"], /valid flags: --compare, --out, --title, --seed, --help/],
    ];
    for (const [args, msg] of cases) {
      const r = await runReport(args);
      assert.equal(r.code, 2, args.join(" "));
      assert.match(r.stderr, msg);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
