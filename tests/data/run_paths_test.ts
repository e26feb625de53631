import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { recordedPath, runDataPath } from "../../data/run_paths.ts";

Deno.test("recordedPath() keeps paths inside the run relative to it and makes others absolute", () => {
  assert.equal(
    recordedPath("/runs/a", "/runs/a/data/p/dataset.json"),
    "data/p/dataset.json",
  );
  assert.equal(recordedPath("/runs/a", "/runs/ab/x.json"), "/runs/ab/x.json");
  assert.equal(recordedPath("/runs/a", "/runs/a"), "/runs/a");
  assert.equal(recordedPath("/runs/a", "d.json"), join(Deno.cwd(), "d.json"));
  assert.equal(
    recordedPath("rel/run", "rel/run/data/dataset.json"),
    "data/dataset.json",
  );
});

Deno.test("runDataPath() reads a run's dataset from any working directory, and older runs' cwd-relative paths", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(dir, "data"));
    await Deno.writeTextFile(join(dir, "data", "dataset.json"), "{}");
    assert.equal(
      runDataPath(dir, { dataPath: "data/dataset.json" }),
      join(dir, "data", "dataset.json"),
    );
    assert.equal(runDataPath(dir, { dataPath: "/d.json" }), "/d.json");
    assert.equal(runDataPath(dir, { data: "x.json" }), "x.json");
    assert.equal(runDataPath(dir, {}), undefined);
    // An older run recorded the path from the directory training started in.
    const old = relative(Deno.cwd(), join(dir, "data", "dataset.json"));
    assert.equal(runDataPath("elsewhere", { dataPath: old }), old);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
