import assert from "node:assert/strict";
import { formatUsage, parseSets, readConfigFile } from "../../cli/_args.ts";

const ROOT = new URL("../..", import.meta.url);
const COMMANDS = ["train", "predict", "eval", "ablate", "report"] as const;
/** The JSR entry of a command, where it is not its name ("./report" is the report library). */
const ENTRY: Partial<Record<typeof COMMANDS[number], string>> = {
  report: "report-cli",
};

Deno.test("formatUsage() prints both ways to run, the summary, aligned flags and --help", () => {
  assert.equal(
    formatUsage("eval", {
      required: "--pred DIR",
      summary: "Scores predictions.",
      flags: [["--pred DIR", "predictions"], ["--quiet", "no output"]],
      notes: "A note.",
    }),
    [
      "Usage: deno task eval --pred DIR [flags]",
      "   or: deno run -A jsr:@agcl/agcl/eval --pred DIR [flags]",
      "",
      "Scores predictions.",
      "",
      "  --pred DIR   predictions",
      "  --quiet      no output",
      "  --help       print this usage",
      "",
      "A note.",
      "",
    ].join("\n"),
  );
});

Deno.test("deno.json exports every command as ./<command> (report as ./report-cli) and a task, and the file exists", async () => {
  const config = JSON.parse(
    await Deno.readTextFile(new URL("deno.json", ROOT)),
  );
  for (const c of COMMANDS) {
    assert.equal(config.exports[`./${ENTRY[c] ?? c}`], `./cli/${c}.ts`);
    assert.equal(config.tasks[c], `deno run -A cli/${c}.ts`);
    assert.ok((await Deno.stat(new URL(`cli/${c}.ts`, ROOT))).isFile);
  }
});

Deno.test("every command's --help exits 0 with the same usage shape", async () => {
  for (const c of COMMANDS) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL(`cli/${c}.ts`, ROOT).pathname, "--help"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, `${c} --help`);
    const lines = new TextDecoder().decode(out.stdout).split("\n");
    assert.match(
      lines[0]!,
      new RegExp(`^Usage: deno task ${c} .*\\[flags\\]$`),
    );
    assert.match(
      lines[1]!,
      new RegExp(
        `^   or: deno run -A jsr:@agcl/agcl/${ENTRY[c] ?? c} .*\\[flags\\]$`,
      ),
    );
    assert.equal(lines[2], "");
    assert.ok(
      lines.some((l) => /^ {2}--help +print this usage$/.test(l)),
      `${c} lists --help`,
    );
  }
});

Deno.test("importing a command's module runs nothing (main only under import.meta.main)", async () => {
  for (const c of COMMANDS) {
    const url = new URL(`cli/${c}.ts`, ROOT).href;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", `await import(${JSON.stringify(url)}); console.log("ok")`],
      cwd: ROOT.pathname,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    // A command that ran would print its usage error or start training.
    assert.equal(new TextDecoder().decode(out.stdout), "ok\n", c);
  }
});

Deno.test("parseSets() nests dotted fields, reads JSON, number lists and bare strings, later flags winning", () => {
  assert.deepEqual(
    parseSets("train", [
      "pretrain.lr=0.01",
      "intensity.window=-1000,1000",
      "pretrain.method=agcl",
      "segment.head=binary",
      "segment.head=targets",
      "coarse.flip=false",
    ]),
    {
      pretrain: { lr: 0.01, method: "agcl" },
      intensity: { window: [-1000, 1000] },
      segment: { head: "targets" },
      coarse: { flip: false },
    },
  );
  assert.throws(() => parseSets("ablate", ["=3"]), {
    name: "UsageError",
    message: 'ablate: --set expects FIELD=VALUE: current value is "=3"',
  });
});

Deno.test("readConfigFile() names the file it cannot read or parse", async () => {
  await assert.rejects(readConfigFile("/nonexistent.json"), {
    message: /^Cannot read config file \/nonexistent.json: /,
  });
  const f = await Deno.makeTempFile({ suffix: ".json" });
  try {
    await Deno.writeTextFile(f, "{ nope");
    await assert.rejects(readConfigFile(f), {
      message: new RegExp(`^Cannot parse config file ${f} as JSON: `),
    });
    await Deno.writeTextFile(f, '{"seed": 3}');
    assert.deepEqual(await readConfigFile(f), { seed: 3 });
  } finally {
    await Deno.remove(f);
  }
});
