import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { LIBRARY_VERSION, runEnvironment } from "../../pipeline/environment.ts";

Deno.test("LIBRARY_VERSION is deno.json's version", async () => {
  const manifest = JSON.parse(
    await Deno.readTextFile(new URL("../../deno.json", import.meta.url)),
  );
  assert.equal(LIBRARY_VERSION, manifest.version);
});

Deno.test("runEnvironment() records the backend, the versions and the checkout's commit", async () => {
  const env = await runEnvironment({ name: "cpu", reason: "asked for" });
  assert.equal(env.backend, "cpu");
  assert.equal(env.backendReason, "asked for");
  assert.equal(env.deno, Deno.version.deno);
  assert.equal(env.tfjs, tf.version.tfjs);
  assert.equal(env.library, LIBRARY_VERSION);
  // Tests run in a git checkout (a worktree too), so a commit is found.
  assert.match(env.commit ?? "", /^[0-9a-f]{40}$/);
  assert.equal(typeof env.dirty, "boolean");
});
