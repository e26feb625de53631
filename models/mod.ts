/**
 * Models of AGCL: ResNet-18/34/50/101 encoders, atrous convolution with
 * gradients, the paper's ASPP/DeepLab head, projection and classification
 * heads, and PyTorch-compatible safetensors checkpoints. Every model is a
 * function of named variables (torchvision names, NHWC/HWIO inside,
 * NCHW/OIHW in checkpoints).
 *
 * @example Stage 2 then stage 3 on one encoder
 * ```ts
 * import { createDeepLab, createEncoder, createProjectionHead } from "@agcl/agcl/models";
 * import * as tf from "@tensorflow/tfjs";
 * import assert from "node:assert/strict";
 *
 * const encoder = createEncoder({ depth: 18, inChannels: 2, stem: "cifar", widthMultiplier: 0.125 });
 * const head = createProjectionHead({ inFeatures: encoder.featureChannels, outFeatures: 8 });
 * const net = createDeepLab({ encoder, asppChannels: 8 });
 * const x = tf.zeros([2, 16, 16, 2]) as tf.Tensor4D;
 * const z = head.apply(encoder.apply(x).pooled);
 * const y = net.apply(x, { training: true, freezeEncoder: true });
 * assert.deepEqual(z.shape, [2, 8]); // [batch, outFeatures]
 * assert.deepEqual(y.shape.slice(0, 3), [2, 16, 16]); // full resolution
 * tf.dispose([z, y, x]);
 * head.dispose();
 * net.dispose();
 * ```
 *
 * @module
 */
export * from "./module.ts";
export * from "./atrous.ts";
export * from "./resnet.ts";
export * from "./heads.ts";
export * from "./deeplab.ts";
export * from "./safetensors.ts";
export * from "./checkpoint.ts";
