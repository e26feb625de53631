import assert from "node:assert/strict";
import { decode } from "fast-png";
import { labelColor, overlayFigure, overlayPng } from "../../report/overlay.ts";

Deno.test("overlayPng draws image | prediction | truth with label colours", () => {
  const png = overlayPng({
    image: [0, 0, 10, 10],
    pred: [1, 0, 0, 0],
    truth: [0, 0, 0, 2],
    width: 2,
    height: 2,
  }, { scale: 1, alpha: 1 });
  const img = decode(png);
  assert.equal(img.width, 3 * 2 + 2 * 4);
  assert.equal(img.height, 2);
  const px = (x: number, y: number) =>
    Array.from(
      img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3),
    );
  assert.deepEqual(px(0, 0), [0, 0, 0]); // image panel, dark
  assert.deepEqual(px(1, 1), [255, 255, 255]); // bright
  assert.deepEqual(px(6, 0), labelColor(1)); // prediction panel, label 1
  assert.deepEqual(px(6 + 6 + 1, 1), labelColor(2)); // truth panel, label 2
  assert.throws(
    () =>
      overlayPng({ image: [0], pred: [0, 1], truth: [0], width: 1, height: 1 }),
    {
      name: "TypeError",
      message: /'pred' has 2 pixels but width × height is 1/,
    },
  );
});

Deno.test("overlayFigure() titles the panels, marks the sides and lists the labels present", async () => {
  const slice = {
    image: Array.from({ length: 64 }, (_, i) => i),
    pred: Array.from({ length: 64 }, (_, i) => (i < 8 ? 5 : 0)),
    truth: Array.from(
      { length: 64 },
      (_, i) => (i >= 56 ? 1 : i === 0 ? 255 : 0),
    ),
    width: 8,
    height: 8,
  };
  const fig = await overlayFigure(slice, {
    title: "case <7>, slice z=3 of 12",
    subtitle: "axial, radiological view",
    sides: { left: "R", right: "L", top: "A", bottom: "P" },
    labels: { 1: "spleen", 5: "liver", 6: "stomach" },
  });
  const texts = [...fig.svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) =>
    m[1]
  );
  assert.ok(
    texts.includes("case &#60;7&#62;, slice z=3 of 12"),
    "escaped title",
  );
  for (
    const t of ["axial, radiological view", "image", "prediction", "truth"]
  ) {
    assert.ok(texts.includes(t), t);
  }
  // Each letter twice (outline, fill) on each of the three panels.
  for (const t of ["R", "L", "A", "P"]) {
    assert.equal(texts.filter((x) => x === t).length, 6, t);
  }
  // The legend: labels present in prediction or truth (not 255, not absent 6).
  assert.deepEqual(texts.filter((x) => /^\d+ /.test(x!)), [
    "1 spleen",
    "5 liver",
  ]);
  const [r, g, b] = labelColor(5);
  assert.ok(fig.svg.includes(`fill="rgb(${r},${g},${b})"`));
  const png = decode(fig.png);
  const w = Number(fig.svg.match(/width="(\d+)"/)![1]);
  assert.equal(png.width, 2 * w); // rendered at twice the SVG's size
  await assert.rejects(
    () => overlayFigure({ ...slice, truth: [0] }),
    { name: "TypeError", message: /overlayFigure as 'truth' has 1 pixels/ },
  );
});
