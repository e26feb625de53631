/**
 * Parity with PyTorch: tests/testdata/models/torch_deeplab.safetensors holds
 * two small DeepLab networks written by PyTorch (torch 1.13, the
 * torchvision-named ResNet/ASPP of bench/torch_ref/agcl_torch.py, by
 * make_torch_fixture.py beside it), with
 * randomised BN statistics, an input and PyTorch's outputs. Loading the
 * weights with loadInto() must reproduce those outputs: names, layouts,
 * PyTorch's padding, dilation, pooling, BN and align-corners upsampling.
 */
import "./_setup.ts";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  createDeepLab,
  decodeSafetensors,
  type DeepLabOptions,
  loadInto,
} from "../../models/mod.ts";
import { assertAlmostEquals } from "../_utils.ts";

const FIXTURE =
  new URL("../testdata/models/torch_deeplab.safetensors", import.meta.url)
    .pathname;
const file = decodeSafetensors(await Deno.readFile(FIXTURE), FIXTURE);

function io(name: string, key: string): tf.Tensor {
  const e = file.tensors[`io.${name}.${key}`]!;
  return tf.tensor(e.data as Float32Array, e.shape);
}

async function scaleOf(t: tf.Tensor): Promise<number> {
  return Math.max(1, (await tf.max(tf.abs(t)).data())[0]!);
}

for (
  const [name, lastBlock] of [["r18", "layer4.1"], ["r50", "layer4.2"]] as const
) {
  Deno.test(`a PyTorch-written ${name} DeepLab loads and reproduces PyTorch's outputs`, async () => {
    const config = JSON.parse(file.metadata[name]!) as DeepLabOptions;
    const net = createDeepLab(config);
    await loadInto(net, FIXTURE, { prefix: `${name}.` }); // strict: every name, both ways
    const x = io(name, "x") as tf.Tensor4D;
    const want = io(name, "eval");
    const got = net.apply(x);
    assert.deepEqual(got.shape, want.shape);
    assertAlmostEquals(
      await got.data(),
      await want.data(),
      1e-4 * await scaleOf(want),
      "eval mode",
    );
    const wantTrain = io(name, "train");
    const gotTrain = net.apply(x, { training: true });
    assertAlmostEquals(
      await gotTrain.data(),
      await wantTrain.data(),
      1e-4 * await scaleOf(wantTrain),
      "training mode",
    );
    const runningVar = net.state[`backbone.${lastBlock}.bn2.running_var`]!;
    assertAlmostEquals(
      await runningVar.data(),
      await io(name, "running_var").data(),
      1e-5,
      "running_var",
    );
    assert.equal(
      (await net.state[`backbone.${lastBlock}.bn2.num_batches_tracked`]!
        .data())[0],
      8,
    );
    tf.dispose([x, want, got, wantTrain, gotTrain]);
    net.dispose();
  });
}
