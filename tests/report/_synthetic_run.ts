/** Writes a small synthetic run directory (the CONTRACTS.md layout) for report tests. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Resvg } from "@resvg/resvg-js";
import { evaluateLabelMaps, summarizeMetrics } from "../../metrics/evaluate.ts";
import { Prng } from "../../random/prng.ts";

/** Labels of the synthetic run. */
export const LABELS: Record<number, string> = {
  0: "background",
  1: "liver",
  2: "spleen",
  3: "kidney",
};

/** Creates `dir` with config.json, log.jsonl, metrics.json, embeddings.json and, optionally, a temperature sweep. */
export async function writeSyntheticRun(
  dir: string,
  options: { seed?: number; quality?: number; sweep?: boolean } = {},
): Promise<void> {
  const { seed = 1, quality = 0.9, sweep = false } = options;
  const prng = new Prng(seed);
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(
    join(dir, "config.json"),
    JSON.stringify({
      labels: LABELS,
      domains: ["CE", "NC"],
      data: "synthetic",
      seed,
      pretrain: { method: quality > 0.8 ? "agcl" : "none" },
    }),
  );
  const log: string[] = [];
  for (
    const [stage, epochs, start] of [["coarse", 2, 1.2], ["pretrain", 3, 5], [
      "segment",
      2,
      0.9,
    ]] as const
  ) {
    for (let e = 0; e < epochs; e++) {
      for (let s = 0; s < 30; s++) {
        const t = (e * 30 + s) / (epochs * 30);
        log.push(JSON.stringify({
          stage,
          epoch: e,
          step: e * 30 + s,
          loss: start * Math.exp(-2 * t) + 0.05 * prng.next(),
          lr: 1e-3,
          ms: 10,
        }));
      }
      if (stage !== "pretrain") {
        // The validation line stages 1 and 3 log after each epoch.
        log.push(JSON.stringify({
          stage,
          kind: "validation",
          epoch: e,
          step: e * 30 + 29,
          dice: 0.5 + 0.2 * e,
          targets: { liver: 0.6 + 0.2 * e, spleen: 0.4 + 0.2 * e },
          sample: stage === "coarse"
            ? "4 slice(s) of 2 case(s)"
            : "6 patch(es) of 2 case(s)",
          ms: 5,
        }));
      }
    }
  }
  await Deno.writeTextFile(join(dir, "log.jsonl"), log.join("\n") + "\n");
  const dims: [number, number, number] = [16, 16, 4];
  const cases = [];
  for (let c = 0; c < 5; c++) {
    const truth = new Uint8Array(16 * 16 * 4);
    const pred = new Uint8Array(truth.length);
    for (let i = 0; i < truth.length; i++) {
      const x = i % 16, y = Math.floor(i / 16) % 16;
      truth[i] = x < 5 && y < 8
        ? 1
        : x > 9 && y < 6
        ? 2
        : x > 9 && y > 10
        ? 3
        : 0;
      pred[i] = prng.next() < quality ? truth[i]! : prng.int(4);
    }
    cases.push({
      image: `/data/case_${c}.nii.gz`,
      metrics: evaluateLabelMaps(pred, truth, {
        dims,
        spacing: [1, 1, 2],
        labels: LABELS,
      }),
    });
  }
  await Deno.writeTextFile(
    join(dir, "metrics.json"),
    JSON.stringify({
      ...summarizeMetrics(cases),
      timings: {
        prepare: 1.5,
        coarse: 60,
        pretrain: 200,
        segment: 90,
        inference: 12,
      },
      environment: {
        backend: "wasm",
        backendReason: "fastest available",
        deno: "2.9.6",
        v8: "14.0",
        tfjs: "4.22.0",
        library: "0.1.0",
        platform: "linux x86_64",
        cpus: 2,
        commit: "0123456789abcdef0123456789abcdef01234567",
        dirty: false,
      },
    }),
  );
  const points = [];
  for (let i = 0; i < 90; i++) {
    const t = i % 3, d = Math.floor(i / 3) % 2;
    points.push({
      z: Array.from(
        { length: 8 },
        (_, k) => (k === t ? 3 : 0) + (k === 5 ? d : 0) + prng.next(),
      ),
      target: ["liver", "spleen", "kidney"][t],
      domain: ["CE", "NC"][d],
    });
  }
  await Deno.writeTextFile(
    join(dir, "embeddings.json"),
    JSON.stringify({ points }),
  );
  if (sweep) {
    await Deno.writeTextFile(
      join(dir, "temperature_sweep.json"),
      JSON.stringify({
        points: [0.05, 0.07, 0.1, 0.3, 0.5].map((t) => ({
          temperature: t,
          dice: 0.8 - Math.abs(Math.log(t / 0.07)) / 10,
        })),
      }),
    );
  }
}

const PNG_SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

/** Asserts a file is a non-trivial PNG or a parseable SVG. */
export async function assertFigure(path: string): Promise<void> {
  const bytes = await Deno.readFile(path);
  if (path.endsWith(".png")) {
    assert.deepEqual(
      Array.from(bytes.subarray(0, 8)),
      PNG_SIGNATURE,
      `${path} is not a PNG`,
    );
    assert.ok(bytes.length > 2000, `${path} is only ${bytes.length} bytes`);
  } else if (path.endsWith(".svg")) {
    const text = new TextDecoder().decode(bytes);
    const r = new Resvg(text); // throws when the SVG does not parse
    assert.ok(
      r.width > 100 && r.height > 100,
      `${path} is ${r.width}×${r.height}`,
    );
    assert.ok(
      (text.match(/<path|<text/g) ?? []).length > 10,
      `${path} draws almost nothing`,
    );
  }
}
