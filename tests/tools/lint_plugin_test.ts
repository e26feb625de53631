import assert from "node:assert/strict";
import plugin from "../../tools/lint_plugin.ts";

function lint(path: string, source: string): string[] {
  return Deno.lint.runPlugin(plugin, path, source).map((d) => d.message);
}

Deno.test("exported-function-args flags a third positional argument that is not an options object", () => {
  assert.deepEqual(
    lint(
      "losses/a.ts",
      "export function f(a: number, b: number, c: number) {}",
    ),
    [
      "Exported function 'f' takes 3 positional arguments: at most 2 plus an options object are allowed",
    ],
  );
  assert.equal(
    lint("losses/a.ts", "export function g(a: 1, b: 2, c: FOptions, d: 4) {}")
      .length,
    1,
  );
});

Deno.test("exported-function-args accepts two positional arguments plus options", () => {
  for (
    const src of [
      "export function f(a: number, b: number) {}",
      "export function f(a: number, b: number, options: FOptions = {}) {}",
      "export function f(a: number, b: number, { c }: { c: number }) {}",
      "function f(a: 1, b: 2, c: 3, d: 4) {}", // not exported
      "export declare function f(a: 1, b: 2, c: 3): void;", // no body
    ]
  ) {
    assert.deepEqual(lint("losses/a.ts", src), [], src);
  }
});

Deno.test("exported-function-args exempts internal files and the documented folders", () => {
  const src = "export function f(a: 1, b: 2, c: 3, d: 4) {}";
  for (
    const path of [
      "losses/_validate.ts",
      "/r/tests/a_test.ts",
      "/r/bench/a.ts",
      "/r/pipeline/_budgets.ts",
    ]
  ) {
    assert.deepEqual(lint(path, src), [], path);
  }
});

Deno.test("exported-function-args holds in pipeline/ as in every other public folder", () => {
  assert.equal(
    lint("/r/pipeline/run.ts", "export function f(a: 1, b: 2, c: 3) {}").length,
    1,
  );
});
