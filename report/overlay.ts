/**
 * Overlays of image, prediction and truth for one slice (Fig. 7): the raw
 * three-panel raster ({@linkcode overlayPng}, fast-png), and a titled figure
 * with orientation letters and a legend ({@linkcode overlayFigure}, SVG
 * rendered to PNG with resvg).
 *
 * @module
 */
import { encode } from "fast-png";
import { svgToPng } from "./_render.ts";

/** One 2-D slice, row-major `[height, width]`. */
export interface OverlaySlice {
  /** Intensities (any range; windowed to its 1st–99th percentile). */
  image: ArrayLike<number>;
  /** Predicted labels. */
  pred: ArrayLike<number>;
  /** True labels. */
  truth: ArrayLike<number>;
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
}

/** Options for {@linkcode overlayPng}. */
export interface OverlayOptions {
  /** Integer upscaling factor (nearest neighbour). @default {auto: ≥ 256 px tall} */
  scale?: number;
  /** Opacity of the label colours. @default {0.6} */
  alpha?: number;
}

/** Label colours (Tableau 10 with gold for its grey, then a few more), by label id − 1. */
const PALETTE: [number, number, number][] = [
  [31, 119, 180],
  [255, 127, 14],
  [44, 160, 44],
  [214, 39, 40],
  [148, 103, 189],
  [140, 86, 75],
  [227, 119, 194],
  [188, 189, 34],
  [23, 190, 207],
  [255, 215, 0],
  [174, 199, 232],
  [255, 187, 120],
  [152, 223, 138],
  [255, 152, 150],
];

/**
 * Colour of a label id (0 = none) in overlays.
 *
 * @param label Label id ≥ 1.
 * @returns `[r, g, b]`, 0–255.
 *
 * @example
 * ```ts
 * import { labelColor } from "@agcl/agcl/report";
 * import assert from "node:assert/strict";
 * assert.deepEqual(labelColor(1), [31, 119, 180]);
 * ```
 */
export function labelColor(label: number): [number, number, number] {
  return PALETTE[(Math.max(1, Math.round(label)) - 1) % PALETTE.length]!;
}

/** Validates the slice and returns its three panels as RGB `[height·scale, width·scale, 3]`. */
function drawPanels(
  slice: OverlaySlice,
  options: OverlayOptions,
  fn: string,
): { panels: Uint8Array[]; pw: number; ph: number } {
  const { image, pred, truth, width, height } = slice;
  const n = width * height;
  for (
    const [name, a] of [["image", image], ["pred", pred], [
      "truth",
      truth,
    ]] as const
  ) {
    if (a.length !== n) {
      throw new TypeError(
        `Cannot compute ${fn} as '${name}' has ${a.length} pixels but width × height is ${n}`,
      );
    }
  }
  const { alpha = 0.6 } = options;
  const scale = options.scale ?? Math.max(1, Math.ceil(256 / height));
  // Window to the 1st–99th percentile so outliers do not flatten the image.
  const sorted = Float64Array.from(image).sort();
  const lo = sorted[Math.floor(0.01 * (n - 1))]!;
  const hi = sorted[Math.ceil(0.99 * (n - 1))]!;
  const span = hi > lo ? hi - lo : 1;
  const pw = width * scale, ph = height * scale;
  const panels = [0, 1, 2].map(() => new Uint8Array(pw * ph * 3));
  for (let y = 0; y < ph; y++) {
    const sy = Math.floor(y / scale);
    for (let x = 0; x < pw; x++) {
      const i = sy * width + Math.floor(x / scale);
      const g = Math.round(
        255 * Math.min(1, Math.max(0, (image[i]! - lo) / span)),
      );
      const o = (y * pw + x) * 3;
      for (let panel = 0; panel < 3; panel++) {
        const out = panels[panel]!;
        const label = panel === 1 ? pred[i]! : panel === 2 ? truth[i]! : 0;
        if (label > 0 && label !== 255) {
          const c = labelColor(label);
          out[o] = Math.round((1 - alpha) * g + alpha * c[0]);
          out[o + 1] = Math.round((1 - alpha) * g + alpha * c[1]);
          out[o + 2] = Math.round((1 - alpha) * g + alpha * c[2]);
        } else {
          out[o] = out[o + 1] = out[o + 2] = g;
        }
      }
    }
  }
  return { panels, pw, ph };
}

/**
 * Draws three panels side by side — image, image + prediction, image +
 * truth — with label colours from {@linkcode labelColor}, and returns the PNG
 * bytes. Rows are drawn top row first, as given: orient the slice first
 * (see {@linkcode overlayFigure} for titles and orientation letters).
 *
 * @param slice The slice's image, prediction and truth.
 * @param options Upscaling and opacity.
 * @returns PNG file bytes (RGB).
 * @throws {TypeError} When an array's length is not `width · height`.
 *
 * @example
 * ```ts
 * import { overlayPng } from "@agcl/agcl/report";
 * import assert from "node:assert/strict";
 * const png = overlayPng({ image: [0, 1, 2, 3], pred: [0, 1, 1, 0], truth: [0, 1, 0, 0], width: 2, height: 2 });
 * assert.deepEqual([png[1], png[2], png[3]], [80, 78, 71]); // "PNG"
 * ```
 */
export function overlayPng(
  slice: OverlaySlice,
  options: OverlayOptions = {},
): Uint8Array {
  const { panels, pw, ph } = drawPanels(slice, options, "overlayPng");
  const gap = 4;
  const W = 3 * pw + 2 * gap;
  const out = new Uint8Array(W * ph * 3).fill(255);
  for (let y = 0; y < ph; y++) {
    panels.forEach((p, panel) => {
      out.set(
        p.subarray(y * pw * 3, (y + 1) * pw * 3),
        (y * W + panel * (pw + gap)) * 3,
      );
    });
  }
  return encode({ width: W, height: ph, data: out, channels: 3, depth: 8 });
}

/** Letters naming what lies at each edge of a panel, e.g. radiological axial: `R` left, `L` right, `A` top, `P` bottom. */
export interface PanelSides {
  /** At the left edge. */
  left: string;
  /** At the right edge. */
  right: string;
  /** At the top edge. */
  top: string;
  /** At the bottom edge. */
  bottom: string;
}

/** Options for {@linkcode overlayFigure}. */
export interface OverlayFigureOptions extends OverlayOptions {
  /** Heading above the panels (e.g. case id and slice). @default {""} */
  title?: string;
  /** Second line (e.g. the display convention). @default {""} */
  subtitle?: string;
  /** Orientation letters drawn at the middle of each panel edge; none when absent. */
  sides?: PanelSides;
  /** Label id → name for the legend; labels without a name are listed by id. @default {{}} */
  labels?: Record<string, string>;
  /** Titles of the three panels. @default {["image", "prediction", "truth"]} */
  panelTitles?: [string, string, string];
}

/** A titled overlay figure: the SVG and its PNG rendering. */
export interface OverlayFigure {
  /** SVG text (the panels embedded as PNG). */
  svg: string;
  /** PNG bytes (rendered at twice the SVG's size). */
  png: Uint8Array;
}

function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function base64(bytes: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}

/**
 * Draws the overlay as a figure: a title, the three panels (image,
 * prediction, truth, each titled), orientation letters at the panel edges
 * when `sides` is given, and a legend of the labels present in prediction
 * or truth (colours of {@linkcode labelColor}, names from `labels`). Pixels
 * are drawn top row first, as given.
 *
 * @example Usage
 * ```ts
 * import { overlayFigure } from "@agcl/agcl/report";
 * import assert from "node:assert/strict";
 *
 * const fig = await overlayFigure(
 *   { image: [0, 1, 2, 3], pred: [0, 1, 1, 0], truth: [0, 1, 0, 0], width: 2, height: 2 },
 *   { title: "case_0, slice z=3", labels: { 1: "liver" } },
 * );
 * assert.ok(fig.svg.includes("case_0, slice z=3") && fig.svg.includes("liver"));
 * assert.equal(fig.png[1], 80); // "P" of the PNG signature
 * ```
 *
 * @param slice The slice's image, prediction and truth, in display orientation.
 * @param options Title, orientation letters, legend names, upscaling, opacity.
 * @returns The SVG and its PNG.
 * @throws {TypeError} When an array's length is not `width · height`.
 */
export async function overlayFigure(
  slice: OverlaySlice,
  options: OverlayFigureOptions = {},
): Promise<OverlayFigure> {
  const { panels, pw, ph } = drawPanels(slice, options, "overlayFigure");
  const {
    title = "",
    subtitle = "",
    sides,
    labels = {},
    panelTitles = ["image", "prediction", "truth"],
  } = options;
  const pad = 12, gap = 16;
  const W = 3 * pw + 2 * gap + 2 * pad;
  let y = pad;
  const parts: string[] = [];
  const text = (
    x: number,
    yy: number,
    s: string,
    attrs: string,
  ) =>
    parts.push(
      `<text x="${x}" y="${yy}" ${attrs}>${escapeXml(s)}</text>`,
    );
  if (title) {
    y += 16;
    text(pad, y, title, `font-size="16" font-weight="bold"`);
  }
  if (subtitle) {
    y += 18;
    text(pad, y, subtitle, `font-size="12" fill="#444"`);
  }
  y += 22;
  const top = y + 6;
  panels.forEach((p, k) => {
    const x = pad + k * (pw + gap);
    text(x + pw / 2, y, panelTitles[k]!, `font-size="13" text-anchor="middle"`);
    const png = encode({
      width: pw,
      height: ph,
      data: p,
      channels: 3,
      depth: 8,
    });
    parts.push(
      `<image x="${x}" y="${top}" width="${pw}" height="${ph}" image-rendering="optimizeSpeed" href="data:image/png;base64,${
        base64(png)
      }"/>`,
    );
    if (sides) {
      // White letters with a dark outline read on any intensity.
      const letter = (lx: number, ly: number, s: string, anchor: string) => {
        for (
          const paint of [
            `stroke="black" stroke-width="3" fill="black"`,
            `fill="white"`,
          ]
        ) {
          text(
            lx,
            ly,
            s,
            `font-size="14" font-weight="bold" text-anchor="${anchor}" ${paint}`,
          );
        }
      };
      letter(x + 4, top + ph / 2 + 5, sides.left, "start");
      letter(x + pw - 4, top + ph / 2 + 5, sides.right, "end");
      letter(x + pw / 2, top + 16, sides.top, "middle");
      letter(x + pw / 2, top + ph - 5, sides.bottom, "middle");
    }
  });
  y = top + ph;
  // Legend: every label present in prediction or truth (255 = ignore is not drawn).
  const present = new Set<number>();
  for (const a of [slice.pred, slice.truth]) {
    for (let i = 0; i < a.length; i++) {
      const v = a[i]!;
      if (v > 0 && v !== 255) present.add(v);
    }
  }
  const ids = [...present].sort((a, b) => a - b);
  const itemW = 140, perRow = Math.max(1, Math.floor((W - 2 * pad) / itemW));
  ids.forEach((id, k) => {
    const lx = pad + (k % perRow) * itemW;
    const ly = y + 14 + Math.floor(k / perRow) * 20;
    const [r, g, b] = labelColor(id);
    parts.push(
      `<rect x="${lx}" y="${ly}" width="12" height="12" fill="rgb(${r},${g},${b})"/>`,
    );
    text(
      lx + 18,
      ly + 11,
      `${id} ${labels[id] ?? ""}`.trim(),
      `font-size="12"`,
    );
  });
  y += ids.length ? 14 + Math.ceil(ids.length / perRow) * 20 : 0;
  if (!ids.length) {
    y += 20;
    text(
      pad,
      y - 4,
      "no labels in prediction or truth",
      `font-size="12" fill="#444"`,
    );
  }
  const H = y + pad;
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, sans-serif">` +
    `<rect width="${W}" height="${H}" fill="white"/>` + parts.join("") +
    "</svg>";
  return { svg, png: await svgToPng(svg) };
}
