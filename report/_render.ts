/**
 * Internal: Vega-Lite spec → SVG (vega, headless) → PNG (resvg).
 */
import * as vega from "vega";
import * as vl from "vega-lite";
import { join } from "node:path";
import type { VegaLiteSpec } from "./figures.ts";

/** Fonts and sizes shared by every figure. */
const CONFIG = {
  font: "DejaVu Sans",
  background: "white",
  axis: { labelFontSize: 11, titleFontSize: 12 },
  legend: { labelFontSize: 11, titleFontSize: 12 },
  title: { fontSize: 14 },
  header: { labelFontSize: 12, titleFontSize: 12 },
};

/** Renders a Vega-Lite spec to an SVG string without a browser. */
export async function toSvg(spec: VegaLiteSpec): Promise<string> {
  const full = { config: CONFIG, ...spec } as unknown as vl.TopLevelSpec;
  const compiled = vl.compile(full).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Rasterises an SVG string to PNG bytes at `scale` (system fonts). */
export async function svgToPng(svg: string, scale = 2): Promise<Uint8Array> {
  const { Resvg } = await import("@resvg/resvg-js");
  const r = new Resvg(svg, {
    fitTo: { mode: "zoom", value: scale },
    background: "white",
    font: { loadSystemFonts: true, defaultFontFamily: "DejaVu Sans" },
  });
  return new Uint8Array(r.render().asPng());
}

/**
 * Writes `<dir>/<name>.svg` and `<dir>/<name>.png` for a Vega-Lite spec and
 * returns both file names (relative to `dir`).
 */
export async function writeFigure(
  dir: string,
  name: string,
  spec: VegaLiteSpec,
): Promise<{ svg: string; png: string }> {
  const svg = await toSvg(spec);
  const png = await svgToPng(svg);
  await Deno.writeTextFile(join(dir, `${name}.svg`), svg);
  await Deno.writeFile(join(dir, `${name}.png`), png);
  return { svg: `${name}.svg`, png: `${name}.png` };
}
