/**
 * `deno doc --lint` over the package's entry points, accepting one class of
 * error: `private-type-ref` to a type that TensorFlow.js declares (`Tensor`,
 * `Variable`, `Rank`, …) and this package does not. A tfjs library must name
 * tfjs types in its signatures, and re-exporting them only moves the errors
 * into tfjs's own declaration files. Every other doc-lint error fails.
 */
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const config = JSON.parse(await Deno.readTextFile(join(root, "deno.json")));
const entries = Object.values(config.exports as Record<string, string>);

async function run(args: string[]): Promise<{ ok: boolean; text: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: root,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return {
    ok: out.success,
    text: dec.decode(out.stdout) + dec.decode(out.stderr),
  };
}

/** Type names declared in the installed @tensorflow packages' .d.ts files. */
async function tfjsTypeNames(): Promise<Set<string>> {
  const info = JSON.parse(
    (await run(["info", "--json"])).text.replace(/^[^{]*/, ""),
  );
  const base = join(
    info.npmCache as string,
    "registry.npmjs.org",
    "@tensorflow",
  );
  const names = new Set<string>();
  const decl =
    /\b(?:class|interface|type|namespace|enum)\s+([A-Za-z_$][\w$]*)/g;
  async function walk(dir: string): Promise<void> {
    for await (const e of Deno.readDir(dir)) {
      const p = join(dir, e.name);
      if (e.isDirectory) await walk(p);
      else if (e.name.endsWith(".d.ts")) {
        for (const m of (await Deno.readTextFile(p)).matchAll(decl)) {
          names.add(m[1]!);
        }
      }
    }
  }
  await walk(base);
  return names;
}

/** Type names declared anywhere in this package's own sources. */
async function ownTypeNames(): Promise<Set<string>> {
  const names = new Set<string>();
  const decl = /\b(?:class|interface|type|enum)\s+([A-Za-z_$][\w$]*)/g;
  async function walk(dir: string): Promise<void> {
    for await (const e of Deno.readDir(dir)) {
      if (
        e.name.startsWith(".") || e.name === "node_modules" ||
        e.name === "tests"
      ) continue;
      const p = join(dir, e.name);
      if (e.isDirectory) await walk(p);
      else if (e.name.endsWith(".ts")) {
        for (const m of (await Deno.readTextFile(p)).matchAll(decl)) {
          names.add(m[1]!);
        }
      }
    }
  }
  await walk(root);
  return names;
}

const { ok, text } = await run(["doc", "--lint", ...entries]);
const blocks = text.split(/\n(?=error\[)/).filter((b) =>
  b.startsWith("error[")
);
const [tfNames, ownNames] = await Promise.all([
  tfjsTypeNames(),
  ownTypeNames(),
]);
const kept = blocks.filter((b) => {
  const m = /^error\[private-type-ref\]: .* references private type '([\w$]+)'/
    .exec(b);
  return !(m && tfNames.has(m[1]!) && !ownNames.has(m[1]!));
});
for (const b of kept) console.error(b.trimEnd() + "\n");
console.log(
  `doc lint: ${kept.length} error(s); ${
    blocks.length - kept.length
  } accepted reference(s) to TensorFlow.js types`,
);
if (kept.length > 0 || (!ok && blocks.length === 0)) {
  if (blocks.length === 0) console.error(text);
  Deno.exit(1);
}
