import "./_setup.ts";
import assert from "node:assert/strict";
import {
  combineModels,
  countParameters,
  createClassificationHead,
  createEncoder,
} from "../../models/mod.ts";

Deno.test("combineModels() prefixes names and keeps the parts' variables", () => {
  const encoder = createEncoder({
    depth: 18,
    inChannels: 2,
    widthMultiplier: 0.125,
  });
  const fc = createClassificationHead({
    inFeatures: encoder.featureChannels,
    nClasses: 3,
  });
  const both = combineModels({ "": encoder, head: fc });
  assert.equal(both.params["conv1.weight"], encoder.params["conv1.weight"]);
  assert.equal(both.params["head.fc.weight"], fc.params["fc.weight"]);
  assert.equal(
    both.state["layer1.0.bn1.running_var"],
    encoder.state["layer1.0.bn1.running_var"],
  );
  assert.equal(
    countParameters(both),
    countParameters(encoder) + countParameters(fc),
  );
  assert.throws(() => combineModels({ a: fc, "": combineModels({ a: fc }) }), {
    name: "RangeError",
    message:
      "Cannot combine models as the name 'a.fc.weight' occurs twice: give the parts distinct prefixes",
  });
  both.dispose();
  assert.ok(
    encoder.params["conv1.weight"]!.isDisposed &&
      fc.params["fc.weight"]!.isDisposed,
  );
});
