/**
 * Internal: the tables of a run's report that describe the run itself
 * (data, model, backend, versions, commit, stage timings, config) and its
 * per-case metrics. Shared by the run report and the comparison page.
 */
import { esc, fmt } from "./_load.ts";
import { tableHtml } from "./_html.ts";
import type { MetricsSummary } from "../metrics/evaluate.ts";

/** The environment `metrics.json` records under `environment` (as read). */
export interface EnvironmentFile {
  /** Backend that ran. */
  backend?: string;
  /** Why it was chosen. */
  backendReason?: string;
  /** Deno version. */
  deno?: string;
  /** TensorFlow.js version. */
  tfjs?: string;
  /** Library version. */
  library?: string;
  /** OS and architecture. */
  platform?: string;
  /** Logical CPUs. */
  cpus?: number;
  /** Git commit of the library checkout, `null` outside one. */
  commit?: string | null;
  /** Uncommitted changes in the checkout. */
  dirty?: boolean;
}

/** The stage wall times `metrics.json` records under `timings` (seconds). */
export type TimingsFile = Record<string, number>;

/** `metrics.json`'s `environment`, when present. */
export function environmentOf(
  m: MetricsSummary | undefined,
): EnvironmentFile | undefined {
  return (m as { environment?: EnvironmentFile } | undefined)?.environment;
}

/** `metrics.json`'s `timings`, when present. */
export function timingsOf(
  m: MetricsSummary | undefined,
): TimingsFile | undefined {
  const t = (m as { timings?: TimingsFile } | undefined)?.timings;
  return t && typeof t === "object" ? t : undefined;
}

/** The part of a config object at a dotted path, or `undefined`. */
export function pick(
  config: Record<string, unknown> | undefined,
  path: string,
): unknown {
  let v: unknown = config;
  for (const k of path.split(".")) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

/** The dataset a run names: `dataPath` (marked when relative to the run), else `data`. */
export function dataText(config: Record<string, unknown> | undefined): string {
  const p = pick(config, "dataPath");
  if (typeof p === "string") {
    return p.startsWith("/") ? p : `${p} (in the run directory)`;
  }
  const d = pick(config, "data");
  return typeof d === "string" ? d : "–";
}

/** A commit as `abcdef123456`, with `(dirty)` when the checkout had changes. */
export function commitText(env: EnvironmentFile | undefined): string {
  if (!env || env.commit === undefined) return "–";
  if (env.commit === null) return "none (not a git checkout)";
  return `${env.commit.slice(0, 12)}${env.dirty ? " (dirty)" : ""}`;
}

/** The backend and why (a reason that already starts with its name stands alone). */
function backendText(name: string, reason: string | undefined): string {
  if (!reason) return name;
  return reason.startsWith(name) ? reason : `${name} (${reason})`;
}

/** Seconds as `7:45` (minutes:seconds) or `12.3 s`. */
export function duration(s: number | undefined): string {
  if (s === undefined || !Number.isFinite(s)) return "–";
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m}:${String(Math.round(s - 60 * m)).padStart(2, "0")}`;
}

/** The stages of `timings`, in the order they run. */
export const TIMING_STAGES: readonly string[] = [
  "prepare",
  "coarse",
  "pretrain",
  "segment",
  "inference",
];

/** A short description of the model and the epochs each stage ran. */
export function modelText(config: Record<string, unknown> | undefined): string {
  const backbone = pick(config, "model.backbone");
  if (backbone === undefined) return "–";
  const method = pick(config, "pretrain.method");
  const epochs = ["coarse", "pretrain", "segment"].map((s) => {
    const b = pick(config, `budgets.stages.${s}.epochs`) ??
      pick(config, `${s}.epochs`);
    return `${s} ${b ?? "–"}`;
  }).join(", ");
  return `ResNet-${backbone ?? "?"} (width ×${
    pick(config, "model.widthMultiplier") ?? 1
  }), pre-training ${method ?? "–"}, patch ${
    pick(config, "patchSize") ?? "–"
  } px; epochs: ${epochs}`;
}

/**
 * The "Run" section: data and split, targets, model, seed, backend,
 * versions and commit, then the stage wall times.
 */
export function runInfoHtml(
  config: Record<string, unknown> | undefined,
  metrics: MetricsSummary | undefined,
): string {
  const env = environmentOf(metrics);
  const split = pick(config, "split") as
    | { source?: string; train?: string[]; evaluation?: string[] }
    | undefined;
  const labels = pick(config, "labels") as Record<string, string> | undefined;
  const rows: [string, string][] = [
    ["data", dataText(config)],
    [
      "split",
      split
        ? `${split.train?.length ?? "?"} training, ${
          split.evaluation?.length ?? "?"
        } evaluation cases (${split.source ?? "?"})`
        : "–",
    ],
    [
      "targets",
      labels
        ? Object.entries(labels).filter(([k]) => k !== "0").map(([, v]) => v)
          .join(", ")
        : "–",
    ],
    ["model", config ? modelText(config) : "–"],
    ["seed", String(pick(config, "seed") ?? "–")],
    [
      "backend",
      env?.backend ? backendText(env.backend, env.backendReason) : "–",
    ],
    [
      "versions",
      env
        ? `AGCL for Deno ${env.library ?? "?"}, Deno ${
          env.deno ?? "?"
        }, TensorFlow.js ${env.tfjs ?? "?"}`
        : "–",
    ],
    [
      "machine",
      env?.platform ? `${env.platform}, ${env.cpus ?? "?"} CPUs` : "–",
    ],
    ["git commit", commitText(env)],
  ];
  const out = [
    `<table class="kv"><tbody>${
      rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`)
        .join("")
    }</tbody></table>`,
  ];
  const t = timingsOf(metrics);
  if (t) {
    const stages = [
      ...TIMING_STAGES.filter((s) => s in t),
      ...Object.keys(t).filter((s) => !TIMING_STAGES.includes(s)),
    ];
    const total = stages.reduce((a, s) => a + (t[s] ?? 0), 0);
    out.push(
      `<p>Wall time per stage (<code>metrics.json</code> <code>timings</code>):</p>`,
      tableHtml(
        [...stages, "total"],
        [[...stages.map((s) => duration(t[s])), duration(total)]],
      ),
    );
  }
  return out.join("\n");
}

/**
 * Per-case table: one row per case (its id), the Dice of each target and
 * the case's mean; a target absent from the case's truth is greyed (its
 * Dice is 1 or 0 by the empty-mask policy). Distances are in `metrics.csv`.
 */
export function caseTableHtml(
  m: MetricsSummary,
  options: { csv?: string } = {},
): string {
  const targets = Object.keys(m.targets);
  const head = ["case", ...targets, "mean"].map((h) => `<th>${esc(h)}</th>`)
    .join("");
  const rows = m.cases.map((c) => {
    const vals = targets.map((t) => c.targets[t]);
    const present = vals.filter((v) =>
      v && v.reason !== "truth empty" && v.reason !== "both empty"
    );
    const mean = present.length
      ? present.reduce((a, v) => a + v!.dice, 0) / present.length
      : null;
    const cells = vals.map((v) => {
      if (!v) return "<td>–</td>";
      const absent = v.reason === "truth empty" || v.reason === "both empty";
      return absent
        ? `<td class="absent" title="${esc(v.reason)}">${fmt(v.dice)}</td>`
        : `<td style="background:${heat(v.dice)}">${fmt(v.dice)}</td>`;
    }).join("");
    return `<tr><td>${esc(c.id)}</td>${cells}<td><b>${fmt(mean)}</b></td></tr>`;
  });
  return `<table class="cases"><thead><tr>${head}</tr></thead><tbody>\n${
    rows.join("\n")
  }\n</tbody></table>\n<p class="note">Dice per case and target; mean over the targets in the case's truth; grey: the target is absent from the case's truth (1 when none is predicted, else 0). HD95 and ASSD per case are in ${
    options.csv
      ? `<a href="${esc(options.csv)}">metrics.csv</a>`
      : "metrics.csv"
  }.</p>`;
}

/** A pale red → green background for a Dice in [0, 1]. */
function heat(d: number): string {
  const h = Math.round(Math.max(0, Math.min(1, d)) * 120);
  return `hsl(${h} 70% 88%)`;
}

/** The whole `config.json`, folded. */
export function configHtml(config: Record<string, unknown>): string {
  return `<details><summary>config.json (the merged config the run used, with what it resolved)</summary><pre>${
    esc(JSON.stringify(config, null, 2))
  }</pre></details>`;
}
