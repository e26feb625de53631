/**
 * The project's own lint rules, run by `deno lint` (`deno.json`
 * `lint.plugins`).
 *
 * `agcl/exported-function-args`: an exported function takes at most two
 * positional arguments plus an options object (CONTRIBUTING, "Types and
 * docs"). A third parameter is allowed only when its type is an object: a
 * type whose name ends in `Options`, or an object type literal. Scope: the
 * public modules only; files whose name starts with `_` (internal, never
 * re-exported), and the `tests/`, `bench/`, `tools/` and `examples/`
 * folders are exempt, as are class methods and overload signatures.
 *
 * @module
 */

const EXEMPT_FOLDERS = [
  "tests/",
  "bench/",
  "tools/",
  "examples/",
];

function exempt(filename: string): boolean {
  const path = filename.replaceAll("\\", "/");
  const base = path.slice(path.lastIndexOf("/") + 1);
  if (base.startsWith("_")) return true;
  return EXEMPT_FOLDERS.some((f) => path.includes(`/${f}`));
}

type Param = Deno.lint.FunctionDeclaration["params"][number];

/** Whether a parameter's declared type is an options object. */
function isOptionsParam(param: Param): boolean {
  const target = param.type === "AssignmentPattern" ? param.left : param;
  if (target.type !== "Identifier" && target.type !== "ObjectPattern") {
    return false;
  }
  const annotation = target.typeAnnotation?.typeAnnotation;
  if (!annotation) return false;
  if (annotation.type === "TSTypeLiteral") return true;
  if (annotation.type === "TSTypeReference") {
    const name = annotation.typeName;
    return name.type === "Identifier" && name.name.endsWith("Options");
  }
  return false;
}

function check(
  context: Deno.lint.RuleContext,
  fn: Deno.lint.FunctionDeclaration,
): void {
  const params = fn.params;
  const name = fn.id?.name ?? "default";
  if (params.length <= 2) return;
  if (params.length === 3 && isOptionsParam(params[2]!)) return;
  context.report({
    node: fn.id ?? fn,
    message:
      `Exported function '${name}' takes ${params.length} positional arguments: at most 2 plus an options object are allowed`,
    hint:
      "Move the arguments after the second into an options object (an interface named <Function>Options)",
  });
}

const plugin: Deno.lint.Plugin = {
  name: "agcl",
  rules: {
    "exported-function-args": {
      create(context) {
        if (exempt(context.filename)) return {};
        return {
          ExportNamedDeclaration(node) {
            const d = node.declaration;
            if (d?.type === "FunctionDeclaration" && d.body) check(context, d);
          },
          ExportDefaultDeclaration(node) {
            const d = node.declaration;
            if (d.type === "FunctionDeclaration" && d.body) check(context, d);
          },
        };
      },
    },
  },
};

export default plugin;
