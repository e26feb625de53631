/**
 * Renders a run's HTML report in headless Chromium and checks what a reader
 * would see: every figure the page references exists, and the screenshot
 * is a page with content (not blank, not a broken layout cut short).
 *
 *   deno task report-check [RUN | RUN/report/index.html | --compare RUN RUN…] [--out PNG]
 *
 * Without a run it writes a synthetic run (tests/report/_synthetic_run.ts)
 * and its report into a temporary folder. Where Chromium is not installed
 * (Debian: `apt-get install chromium`) it says so and exits 0: a skip, not
 * a failure. Look at the PNG it prints before calling a report done.
 */
import { dirname, join, resolve } from "node:path";
import { decode } from "fast-png";
import { writeCompareReport, writeRunReport } from "../report/mod.ts";
import { writeSyntheticRun } from "../tests/report/_synthetic_run.ts";

const BROWSERS = ["chromium", "chromium-browser", "google-chrome"];

/** The first Chromium on PATH that answers `--version`, or `null`. */
async function findChromium(): Promise<string | null> {
  for (const b of BROWSERS) {
    try {
      const out = await new Deno.Command(b, {
        args: ["--version"],
        stdout: "null",
        stderr: "null",
      }).output();
      if (out.success) return b;
    } catch { /* not installed */ }
  }
  return null;
}

/** Every `src`/`href` of the page that names a local file, missing ones. */
async function missingFiles(index: string): Promise<string[]> {
  const html = await Deno.readTextFile(index);
  const refs = [...html.matchAll(/(?:src|href)="([^"#:]+)"/g)].map((m) =>
    m[1]!.replace(/&amp;/g, "&")
  );
  const missing: string[] = [];
  for (const r of new Set(refs)) {
    try {
      await Deno.stat(resolve(dirname(index), r));
    } catch {
      missing.push(r);
    }
  }
  return missing;
}

/** Rows of the screenshot that hold anything but the page's white. */
function contentRows(png: Uint8Array): { rows: number; height: number } {
  const img = decode(png);
  const ch = img.channels;
  let rows = 0;
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++) {
      const i = (y * img.width + x) * ch;
      if (
        img.data[i]! < 240 || img.data[i + 1]! < 240 || img.data[i + 2]! < 240
      ) {
        rows++;
        break;
      }
    }
  }
  return { rows, height: img.height };
}

async function main(args: string[]): Promise<number> {
  const outAt = args.indexOf("--out");
  const png = outAt >= 0 ? args[outAt + 1]! : "report_screenshot.png";
  const rest = args.filter((_, i) => i !== outAt && i !== outAt + 1);
  const chromium = await findChromium();
  if (!chromium) {
    console.log(
      `skipped: no Chromium (${
        BROWSERS.join(", ")
      }) on PATH; on Debian: apt-get install chromium`,
    );
    return 0;
  }
  let index: string;
  if (rest[0] === "--compare") {
    const out = await Deno.makeTempDir({ prefix: "agcl-compare-" });
    index = (await writeCompareReport(rest.slice(1), { out })).index;
  } else if (rest[0]?.endsWith(".html")) {
    index = rest[0];
  } else if (rest[0]) {
    index = (await writeRunReport(rest[0])).index;
  } else {
    const dir = await Deno.makeTempDir({ prefix: "agcl-report-" });
    await writeSyntheticRun(join(dir, "synthetic"), { sweep: true });
    index = (await writeRunReport(join(dir, "synthetic"))).index;
  }
  const missing = await missingFiles(index);
  // A profile of its own: Chromium stalls on one another process holds.
  const profile = await Deno.makeTempDir({ prefix: "agcl-chromium-" });
  const shot = await new Deno.Command(chromium, {
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--hide-scrollbars",
      `--user-data-dir=${profile}`,
      `--screenshot=${resolve(png)}`,
      "--window-size=1280,3000",
      `file://${resolve(index)}`,
    ],
    stdout: "null",
    stderr: "null",
    // A loaded machine can stall Chromium; give up rather than hang.
    signal: AbortSignal.timeout(180_000),
  }).output().catch(() => ({ success: false }))
    .finally(() => Deno.remove(profile, { recursive: true }).catch(() => {}));
  if (!shot.success) {
    console.error(
      `error: ${chromium} could not render ${index} (within 3 minutes)`,
    );
    return 1;
  }
  const { rows, height } = contentRows(await Deno.readFile(png));
  const problems = [
    ...missing.map((m) => `${index} references ${m}, which does not exist`),
    ...(rows < height / 4
      ? [`the screenshot is mostly blank (${rows} of ${height} rows drawn)`]
      : []),
  ];
  for (const p of problems) console.error(`error: ${p}`);
  console.log(
    `report: ${index}\nscreenshot: ${
      resolve(png)
    } (${rows} of ${height} rows drawn)`,
  );
  return problems.length ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
