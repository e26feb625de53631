import assert from "node:assert/strict";
import {
  BatchStream,
  type BatchStreamState,
  extractPatch,
  type PatchBatch,
  samplePatches,
  type SamplingCase,
} from "../../data/mod.ts";
import { Prng } from "../../random/mod.ts";

/**
 * Cases of `nx × ny × nz` with random images, a disc of target 1 on every
 * slice and a smaller disc of target 2 on even slices, labels a shifted copy.
 */
function makeCases(
  count: number,
  dims: [number, number, number] = [24, 20, 3],
  channels = 1,
): SamplingCase[] {
  const prng = new Prng(99);
  const [nx, ny, nz] = dims;
  return Array.from({ length: count }, (_, k) => {
    const att = new Uint8Array(nx * ny * nz);
    const lab = new Uint8Array(nx * ny * nz);
    for (let z = 0; z < nz; z++) {
      for (let y = 0; y < ny; y++) {
        for (let x = 0; x < nx; x++) {
          const i = (z * ny + y) * nx + x;
          if ((x - 8) ** 2 + (y - 8) ** 2 < 25) att[i] = 1;
          if (z % 2 === 0 && (x - 17) ** 2 + (y - 12) ** 2 < 6) att[i] = 2;
          if ((x - 9) ** 2 + (y - 8) ** 2 < 25) lab[i] = 1;
          if (z % 2 === 0 && (x - 17) ** 2 + (y - 13) ** 2 < 6) lab[i] = 2;
        }
      }
    }
    return {
      id: `case${k}`,
      domain: k % 2,
      dims,
      channels,
      image: Float32Array.from(
        { length: nx * ny * nz * channels },
        () => prng.next(),
      ),
      attention: att,
      label: lab,
    };
  });
}

function batchesOf(stream: BatchStream, n: number): PatchBatch[] {
  return Array.from({ length: n }, () => stream.next());
}

Deno.test("BatchStream without augmentation gives the cut patches with their ids", () => {
  const cases = makeCases(2, [24, 20, 3], 3);
  const index = samplePatches(cases, { perTarget: 3, patchSize: 10, seed: 1 });
  const stream = new BatchStream(index, cases, {
    batchSize: 5,
    views: 2,
    seed: 4,
    augment: false,
  });
  assert.equal(stream.channels, 4);
  const b = stream.next();
  assert.equal(b.size, 5);
  assert.equal(b.x.length, 5 * 2 * 10 * 10 * 4);
  assert.equal(b.y.length, 5 * 2 * 10 * 10);
  for (let s = 0; s < b.size; s++) {
    const prov = b.provenance[s]!;
    const ci = cases.findIndex((c) => c.id === prov.caseId);
    assert.equal(b.domain[s], cases[ci]!.domain);
    const rec = {
      caseIndex: ci,
      slice: prov.slice,
      cy: prov.cy,
      cx: prov.cx,
      target: b.target[s]!,
    };
    assert.ok(
      index.records.some((r) =>
        r.caseIndex === ci && r.slice === rec.slice && r.cy === rec.cy &&
        r.cx === rec.cx && r.target === rec.target
      ),
    );
    const patch = extractPatch(cases[ci]!, rec, { patchSize: 10 });
    for (let v = 0; v < 2; v++) {
      const k = s * 2 + v;
      for (let q = 0; q < 100; q++) {
        for (let c = 0; c < 3; c++) {
          assert.equal(b.x[(k * 100 + q) * 4 + c], patch.image[q * 3 + c]);
        }
        assert.equal(b.x[(k * 100 + q) * 4 + 3], patch.attention[q]);
        assert.equal(b.y[k * 100 + q], patch.label[q]);
      }
    }
  }
});

Deno.test("BatchStream epochs visit every record once, the last batch smaller", () => {
  const cases = makeCases(2);
  const index = samplePatches(cases, { perTarget: 3, patchSize: 8 });
  const n = index.records.length; // 2 cases × (3 slices × t1 + 2 slices × t2) × 3 = 30
  assert.equal(n, 30);
  const stream = new BatchStream(index, cases, {
    batchSize: 4,
    augment: false,
    seed: 2,
  });
  assert.equal(stream.batchesPerEpoch, 8);
  const key = (b: PatchBatch, s: number) => {
    const p = b.provenance[s]!;
    return `${p.caseId}/${p.slice}/${b.target[s]}/${p.cy}/${p.cx}`;
  };
  const recKeys = index.records.map((r) =>
    `case${r.caseIndex}/${r.slice}/${r.target}/${r.cy}/${r.cx}`
  );
  for (let epoch = 0; epoch < 2; epoch++) {
    const seen: string[] = [];
    const sizes: number[] = [];
    for (const b of batchesOf(stream, 8)) {
      sizes.push(b.size);
      for (let s = 0; s < b.size; s++) seen.push(key(b, s));
    }
    assert.deepEqual(sizes, [4, 4, 4, 4, 4, 4, 4, 2]);
    assert.deepEqual([...seen].sort(), [...recKeys].sort());
    assert.equal(stream.epoch, epoch);
  }
  const dropping = new BatchStream(index, cases, {
    batchSize: 4,
    augment: false,
    dropLast: true,
  });
  assert.equal(dropping.batchesPerEpoch, 7);
  assert.ok(batchesOf(dropping, 15).every((b) => b.size === 4));
});

Deno.test("BatchStream is deterministic for a seed", () => {
  const cases = makeCases(2);
  const index = samplePatches(cases, { perTarget: 4, patchSize: 8 });
  const a = batchesOf(
    new BatchStream(index, cases, { seed: 7, balance: "target" }),
    6,
  );
  const b = batchesOf(
    new BatchStream(index, cases, { seed: 7, balance: "target" }),
    6,
  );
  const c = batchesOf(
    new BatchStream(index, cases, { seed: 8, balance: "target" }),
    6,
  );
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.map((x) => x.x), c.map((x) => x.x));
});

Deno.test("BatchStream state saved mid-epoch resumes the identical stream", () => {
  const cases = makeCases(3);
  const index = samplePatches(cases, { perTarget: 3, patchSize: 8 });
  for (
    const balance of ["none", "target", "domain", "domain-target"] as const
  ) {
    const options = { batchSize: 4, seed: 12, balance };
    const first = new BatchStream(index, cases, options);
    batchesOf(first, stream0Batches(first)); // into the second epoch, mid-way
    const saved = JSON.parse(
      JSON.stringify(first.getState()),
    ) as BatchStreamState;
    const expected = batchesOf(first, 2 * first.batchesPerEpoch); // crosses an epoch end
    const resumed = new BatchStream(index, cases, options);
    resumed.setState(saved);
    assert.deepEqual(batchesOf(resumed, expected.length), expected, balance);
    assert.equal(resumed.epoch, first.epoch);
  }
});

function stream0Batches(s: BatchStream): number {
  return s.batchesPerEpoch + Math.floor(s.batchesPerEpoch / 2);
}

Deno.test("BatchStream balance evens out targets and domains", () => {
  // Target 1 has ~7× the records of target 2; case domains are 0, 1, 1, 1.
  const cases = makeCases(4);
  const index = samplePatches(cases, { perTarget: 3, patchSize: 8 });
  const count = (
    balance: "none" | "target" | "domain",
    field: "target" | "domain",
  ) => {
    const stream = new BatchStream(index, cases, {
      batchSize: 8,
      balance,
      seed: 3,
      augment: false,
    });
    const counts = new Map<number, number>();
    for (const b of batchesOf(stream, 100)) {
      for (const v of b[field]) counts.set(v, (counts.get(v) ?? 0) + 1);
    }
    return counts;
  };
  const natural = count("none", "target");
  const nr = natural.get(1)! / natural.get(2)!; // 3 slices vs 2 slices
  assert.ok(nr > 1.35 && nr < 1.65, `natural target ratio ${nr}`);
  const balanced = count("target", "target");
  const ratio = balanced.get(1)! / balanced.get(2)!;
  assert.ok(ratio > 0.8 && ratio < 1.25, `target ratio ${ratio}`);
  const byDomain = count("domain", "domain");
  const dr = byDomain.get(0)! / byDomain.get(1)!;
  assert.ok(dr > 0.8 && dr < 1.25, `domain ratio ${dr}`);
});

Deno.test("BatchStream rejects bad options, mismatched cases and foreign states", () => {
  const cases = makeCases(2);
  const index = samplePatches(cases, { perTarget: 2, patchSize: 8 });
  assert.throws(() => new BatchStream(index, cases, { batchSize: 0 }), {
    name: "RangeError",
    message:
      "Cannot create BatchStream as 'batchSize' must be a positive integer: current value is 0",
  });
  assert.throws(
    () => new BatchStream(index, cases, { balance: "organ" as "none" }),
    {
      name: "RangeError",
      message:
        /'balance' must be one of "none", "target", "domain", "domain-target": current value is "organ"/,
    },
  );
  assert.throws(() => new BatchStream(index, [cases[1]!, cases[0]!]), {
    name: "TypeError",
    message:
      "Cannot create BatchStream as 'cases' must be the cases the index was built from: expected ids [case0,case1], found [case1,case0]",
  });
  const state = new BatchStream(index, cases, { seed: 1 }).getState();
  const other = new BatchStream(index, cases, { seed: 2 });
  assert.throws(() => other.setState(state), {
    name: "TypeError",
    message:
      "Cannot restore BatchStream as the state's 'seed' must be 2 to match this stream: current value is 1",
  });
  const smaller = samplePatches(cases, { perTarget: 2, patchSize: 8, seed: 5 });
  assert.throws(
    () => new BatchStream(smaller, cases, { seed: 1 }).setState(state),
    {
      name: "TypeError",
      message: /the state's 'fingerprint' must be/,
    },
  );
});

Deno.test("BatchStream memory stays flat over many batches", () => {
  const cases = makeCases(2, [96, 96, 4]);
  const index = samplePatches(cases, { perTarget: 10, patchSize: 64 });
  const stream = new BatchStream(index, cases, { batchSize: 8, seed: 1 });
  // Each batch holds 8 × 2 × 64² × 2 floats (512 KiB) plus labels: keeping
  // 400 of them alive would add > 200 MiB. This isolate's heap + external
  // (typed array) memory is measured, not the RSS, which test files running
  // in parallel share; the minimum over a window tracks the post-GC level.
  const used = () => {
    const m = Deno.memoryUsage();
    return (m.heapUsed + m.external) / 2 ** 20;
  };
  const window = (batches: number) => {
    let low = Infinity;
    for (let i = 0; i < batches; i++) {
      if (stream.next().size !== 8) throw new Error("unexpected batch size");
      if (i % 10 === 9) low = Math.min(low, used());
    }
    return low;
  };
  window(150); // V8 settles its heap and external-memory limits first
  const first = window(200);
  window(200);
  const last = window(200);
  assert.ok(
    last - first < 32,
    `memory grew from ${first.toFixed(1)} to ${
      last.toFixed(1)
    } MiB over 400 batches`,
  );
});

Deno.test("BatchStream groupSize draws runs of one group, so every sample has a partner", () => {
  const cases = makeCases(4);
  const index = samplePatches(cases, { perTarget: 3, patchSize: 8 });
  const stream = new BatchStream(index, cases, {
    batchSize: 8,
    balance: "domain-target",
    groupSize: 2,
    seed: 4,
    augment: false,
  });
  assert.equal(stream.groupCount, 4); // 2 domains × 2 targets
  const seen = new Set<string>();
  for (const b of batchesOf(stream, 30)) {
    for (let s = 0; s < b.size; s += 2) {
      const key = `${b.domain[s]}:${b.target[s]}`;
      assert.equal(`${b.domain[s + 1]}:${b.target[s + 1]}`, key);
      seen.add(key);
    }
  }
  assert.equal(seen.size, 4);
  // Without runs, some sample of a batch has no partner of its group.
  const single = new BatchStream(index, cases, {
    batchSize: 8,
    balance: "domain-target",
    seed: 4,
    augment: false,
  });
  const lonely = batchesOf(single, 30).some((b) => {
    const keys = Array.from(b.target, (t, s) => `${b.domain[s]}:${t}`);
    return keys.some((k) => keys.filter((q) => q === k).length === 1);
  });
  assert.ok(lonely);
  // The group size is part of the state.
  const saved = stream.getState();
  assert.equal(saved.groupSize, 2);
  const after = stream.next();
  stream.setState(saved);
  assert.deepEqual(stream.next().x, after.x);
  assert.throws(
    () => single.setState(saved),
    /state's 'groupSize' must be 1 to match this stream: current value is 2/,
  );
  assert.throws(
    () => new BatchStream(index, cases, { groupSize: 0 }),
    /'groupSize' must be a positive integer/,
  );
});
