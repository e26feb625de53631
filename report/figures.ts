/**
 * Vega-Lite specifications of the paper's figures: loss curves per stage
 * (Fig. 5a), per-target Dice box plots per method (Fig. 4), the 2-D map of
 * projection embeddings (Fig. 3) and the temperature sweep (Fig. 5b), and
 * the validation Dice per epoch of stages 1 and 3.
 * Render them with {@linkcode writeRunReport} / {@linkcode writeAblationReport},
 * or any Vega-Lite renderer.
 *
 * @module
 */

/** A Vega-Lite specification (plain JSON). */
export type VegaLiteSpec = Record<string, unknown>;

/**
 * One line of `RUN/log.jsonl` as the report reads it (a run writes the
 * stricter `LogEntry` of `@agcl/agcl/pipeline`, which extends this one),
 * optionally tagged with the method that produced it.
 */
export interface LogEntry {
  /** Stage that logged it: `coarse`, `coarse-fold<k>`, `pretrain` or `segment`. */
  stage: string;
  /** Epoch (0-based). */
  epoch: number;
  /** Step within the stage (1-based, counted over all epochs). */
  step: number;
  /** Training loss of the step. */
  loss: number;
  /** Learning rate used at the step. */
  lr?: number;
  /** Wall time of the step in milliseconds. */
  ms?: number;
  /** Method / run label when several runs share a figure. */
  method?: string;
}

function movingAverage(values: number[], window: number): number[] {
  // Centred window (shrinking at the ends), so the curve does not lag.
  const half = Math.floor(window / 2);
  const prefix = [0];
  for (const v of values) prefix.push(prefix[prefix.length - 1]! + v);
  return values.map((_, i) => {
    const lo = Math.max(0, i - half),
      hi = Math.min(values.length, i + half + 1);
    return (prefix[hi]! - prefix[lo]!) / (hi - lo);
  });
}

/**
 * Loss curves, one panel per stage (Fig. 5a): raw loss per step (faint) and a
 * centred moving average (window: a tenth of the curve unless given);
 * coloured by method when entries carry one; a dashed rule at each
 * stage's reference level when given (the chance level of a contrastive
 * loss, ln(2N − 1)).
 *
 * @param entries Log lines (non-finite losses are dropped).
 * @param options Moving-average window, title, reference level per stage.
 * @returns A Vega-Lite spec.
 * @throws {TypeError} When there is no finite loss to draw.
 *
 * @example
 * ```ts
 * import { lossCurveSpec } from "@agcl/agcl/report";
 * import assert from "node:assert/strict";
 * const spec = lossCurveSpec([{ stage: "segment", epoch: 0, step: 0, loss: 1 }, { stage: "segment", epoch: 0, step: 1, loss: 0.5 }]);
 * assert.equal(typeof spec.facet, "object");
 * ```
 */
export function lossCurveSpec(
  entries: LogEntry[],
  options: {
    window?: number;
    title?: string;
    levels?: Record<string, number>;
  } = {},
): VegaLiteSpec {
  const { title = "Training loss per stage" } = options;
  const groups = new Map<string, LogEntry[]>();
  for (const e of entries) {
    if (!Number.isFinite(e.loss)) continue;
    const key = `${e.method ?? ""}\u0000${e.stage}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(e);
  }
  if (groups.size === 0) {
    throw new TypeError(
      "Cannot compute lossCurveSpec as 'entries' has no finite loss",
    );
  }
  const byMethod = entries.some((e) => e.method !== undefined);
  const values: Record<string, unknown>[] = [];
  for (const list of groups.values()) {
    // Default window: a tenth of the curve (1 = raw for short curves), at most 50.
    const window = options.window ??
      Math.min(50, Math.max(1, Math.round(list.length / 10)));
    const smooth = movingAverage(list.map((e) => e.loss), window);
    list.forEach((e, i) => {
      values.push({
        stage: e.stage,
        series: byMethod ? e.method ?? "" : e.stage,
        step: i,
        epoch: e.epoch,
        loss: e.loss,
        smooth: smooth[i],
        level: options.levels?.[e.stage] ?? null,
      });
    });
  }
  const stageOrder = ["coarse", "pretrain", "segment"];
  const stages = [...new Set(values.map((v) => v.stage as string))].sort(
    (a, b) =>
      (stageOrder.indexOf(a) + 99) % 99 - (stageOrder.indexOf(b) + 99) % 99,
  );
  const color = {
    field: "series",
    type: "nominal",
    title: byMethod ? "method" : "stage",
    legend: { symbolOpacity: 1, symbolStrokeWidth: 3 },
  };
  return {
    title,
    data: { values },
    // Wrapped three to a row: a run with cross-fitted stage 1 has six stages.
    facet: { field: "stage", type: "nominal", sort: stages, title: null },
    columns: 3,
    spec: {
      width: 260,
      height: 200,
      layer: [
        {
          mark: { type: "line", opacity: 0.25, strokeWidth: 1 },
          encoding: {
            x: { field: "step", type: "quantitative", title: "step" },
            y: { field: "loss", type: "quantitative", title: "loss" },
            color,
          },
        },
        {
          mark: { type: "line", strokeWidth: 2 },
          encoding: {
            x: { field: "step", type: "quantitative" },
            y: { field: "smooth", type: "quantitative" },
            color,
          },
        },
        {
          // Reference levels (the chance level of a contrastive loss).
          transform: [{ filter: "datum.level != null" }],
          mark: { type: "rule", strokeDash: [6, 4], color: "#444" },
          encoding: {
            y: { field: "level", type: "quantitative", aggregate: "mean" },
          },
        },
      ],
    },
    resolve: { scale: { x: "independent", y: "independent" } },
  };
}

/**
 * One validation line of `RUN/log.jsonl` as the report reads it: the Dice
 * of stage 1's or stage 3's network on its held-out sample after an epoch,
 * optionally tagged with the run it belongs to.
 */
export interface ValidationRow {
  /** Stage: `coarse` or `segment`. */
  stage: string;
  /** The epoch that ended (0-based). */
  epoch: number;
  /** Mean Dice over the targets in the sample, `null` when none was. */
  dice: number | null;
  /** What was scored, e.g. `4 slice(s) of 1 case(s)`. */
  sample?: string;
  /** Run label when several runs share a figure. */
  method?: string;
}

/**
 * Validation curves: the validation Dice after each epoch, one panel per
 * stage (stage 1's coarse network, stage 3's decoder), one line per run
 * when rows carry a method.
 *
 * @param rows Validation lines (`null` Dice is left out).
 * @param options Title.
 * @returns A Vega-Lite spec.
 * @throws {TypeError} When no row has a Dice.
 *
 * @example
 * ```ts
 * import { validationSpec } from "@agcl/agcl/report";
 * import assert from "node:assert/strict";
 * const spec = validationSpec([{ stage: "coarse", epoch: 0, dice: 0.4 }, { stage: "coarse", epoch: 1, dice: 0.6 }]);
 * assert.equal(typeof spec.facet, "object");
 * ```
 */
export function validationSpec(
  rows: ValidationRow[],
  options: { title?: string } = {},
): VegaLiteSpec {
  const values = rows.filter((r) => r.dice !== null && Number.isFinite(r.dice))
    .map((r) => ({
      stage: r.stage === "coarse"
        ? "stage 1 (coarse)"
        : r.stage === "segment"
        ? "stage 3 (segment)"
        : r.stage,
      epoch: r.epoch + 1,
      dice: r.dice,
      series: r.method ?? r.stage,
    }));
  if (values.length === 0) {
    throw new TypeError(
      "Cannot compute validationSpec as 'rows' has no validation Dice",
    );
  }
  const byMethod = rows.some((r) => r.method !== undefined);
  const color = {
    field: "series",
    type: "nominal",
    title: byMethod ? "run" : "stage",
    ...(byMethod ? {} : { legend: null }),
  };
  return {
    title: options.title ?? "Validation Dice after each epoch",
    data: { values },
    facet: {
      column: {
        field: "stage",
        type: "nominal",
        sort: ["stage 1 (coarse)", "stage 3 (segment)"],
        title: null,
      },
    },
    spec: {
      width: 300,
      height: 200,
      layer: [{
        mark: { type: "line", point: { filled: true, size: 40 } },
        encoding: {
          x: {
            field: "epoch",
            type: "quantitative",
            title: "epoch",
            scale: { zero: false },
            axis: { tickMinStep: 1, format: "d" },
          },
          y: {
            field: "dice",
            type: "quantitative",
            title: "validation Dice",
            scale: { domain: [0, 1] },
          },
          color,
        },
      }],
    },
    resolve: { scale: { x: "independent" } },
  };
}

/** One Dice value of one case, target and method. */
export interface DiceRow {
  /** Method (pre-training) label. */
  method: string;
  /** Target name. */
  target: string;
  /** Dice of this case. */
  dice: number;
  /** Case id (shown on hover in the SVG). */
  case?: string;
}

/**
 * Per-target Dice, one column of points per method (Fig. 4): every case is
 * a point, the mean a black tick, and a box plot is drawn behind the
 * points where a target and method have at least `minBox` cases (a box of
 * two cases says nothing); optional significance marks above each (e.g.
 * "*" for p < 0.05 against AGCL). A single method gets no legend.
 *
 * @param rows Per-case Dice values.
 * @param options Marks per target and method, method and target order,
 * title, fewest cases for a box (default 5), legend title (default
 * "method").
 * @returns A Vega-Lite spec.
 * @throws {TypeError} When `rows` is empty.
 *
 * @example
 * ```ts
 * import { diceBoxSpec } from "@agcl/agcl/report";
 * import assert from "node:assert/strict";
 * const spec = diceBoxSpec([{ method: "agcl", target: "liver", dice: 0.9 }]);
 * assert.equal(Array.isArray(spec.layer), true);
 * ```
 */
export function diceBoxSpec(
  rows: DiceRow[],
  options: {
    marks?: { method: string; target: string; text: string }[];
    methods?: string[];
    targets?: string[];
    title?: string;
    minBox?: number;
    colorTitle?: string;
  } = {},
): VegaLiteSpec {
  if (rows.length === 0) {
    throw new TypeError("Cannot compute diceBoxSpec as 'rows' is empty");
  }
  const { minBox = 5 } = options;
  const methods = options.methods ?? [...new Set(rows.map((r) => r.method))];
  const targets = options.targets ?? [...new Set(rows.map((r) => r.target))];
  const x = {
    field: "target",
    type: "nominal",
    sort: targets,
    title: null,
    axis: { labelAngle: -30, bandPosition: 0.5 },
  };
  // Each method's place within a target: a quantitative offset (its index),
  // which the jittered points share exactly (a nominal offset band would
  // put them elsewhere).
  const offsetScale = { domain: [-0.5, methods.length - 0.5] };
  const xOffset = { field: "slot", type: "quantitative", scale: offsetScale };
  const slotted = <T extends { method: string }>(r: T) => ({
    ...r,
    slot: methods.indexOf(r.method),
  });
  const color = {
    field: "method",
    type: "nominal",
    sort: methods,
    title: options.colorTitle ?? "method",
    legend: methods.length > 1 ? { symbolOpacity: 1 } : null,
  };
  const y = {
    field: "dice",
    type: "quantitative",
    title: "Dice",
    scale: { domain: [0, 1.08] },
    axis: { values: [0, 0.2, 0.4, 0.6, 0.8, 1] },
  };
  const layer: Record<string, unknown>[] = [{
    data: { values: rows.map(slotted) },
    transform: [
      {
        joinaggregate: [{ op: "count", as: "n" }],
        groupby: ["target", "method"],
      },
      { filter: `datum.n >= ${minBox}` },
    ],
    mark: {
      type: "boxplot",
      extent: 1.5,
      size: 18,
      opacity: 0.35,
      outliers: false,
      median: { color: "black" },
    },
    encoding: { x, xOffset, color, y },
  }, {
    // Each case spread sideways within its method's place (golden-ratio
    // jitter: deterministic, evenly filled), so equal values stay visible.
    data: {
      values: rows.map((r, i) => ({
        ...r,
        offset: methods.indexOf(r.method) + ((i * 0.618034) % 1 - 0.5) * 0.4,
      })),
    },
    mark: {
      type: "point",
      filled: true,
      size: 36,
      opacity: 0.85,
      stroke: "#222",
      strokeWidth: 0.5,
    },
    encoding: {
      x,
      xOffset: { field: "offset", type: "quantitative", scale: offsetScale },
      color,
      y,
      tooltip: [
        { field: "target" },
        { field: "method" },
        { field: "dice", format: ".3f" },
        ...(rows.some((r) => r.case !== undefined) ? [{ field: "case" }] : []),
      ],
    },
  }, {
    data: { values: rows.map(slotted) },
    mark: { type: "tick", color: "black", thickness: 2, size: 14 },
    encoding: {
      x,
      xOffset,
      y: { ...y, aggregate: "mean" },
    },
  }];
  if (options.marks && options.marks.length > 0) {
    layer.push({
      data: {
        values: options.marks.map((m) => ({ ...slotted(m), y: 1.04 })),
      },
      mark: { type: "text", fontSize: 13, fontWeight: "bold" },
      encoding: {
        x,
        xOffset,
        color,
        y: { field: "y", type: "quantitative" },
        text: { field: "text" },
      },
    });
  }
  return {
    title: options.title ?? "Dice per target",
    width: Math.max(
      360,
      targets.length * Math.max(64, methods.length * 26 + 24),
    ),
    height: 260,
    layer,
  };
}

/** One point of `RUN/embeddings.json`: a held-out patch's projection vector. */
export interface EmbeddingVector {
  /** Projection vector. */
  z: number[];
  /** Target name. */
  target: string;
  /** Domain name. */
  domain: string;
}

/** Content of `RUN/embeddings.json`: projection vectors of held-out patches. */
export interface EmbeddingsFile {
  /** One entry per patch. */
  points: EmbeddingVector[];
}

/** One embedded point (2-D coordinates of a projection vector). */
export interface EmbeddingPoint {
  /** First coordinate. */
  x: number;
  /** Second coordinate. */
  y: number;
  /** Target name (colour). */
  target: string;
  /** Domain name (shape). */
  domain: string;
  /** Method (one panel each) when several runs share the figure. */
  method?: string;
}

/**
 * 2-D map of projection embeddings coloured by target and shaped by domain
 * (Fig. 3); one panel per method when points carry one.
 *
 * @param points Embedded points.
 * @param options Title and the name of the embedding method for the axes.
 * @returns A Vega-Lite spec.
 * @throws {TypeError} When `points` is empty.
 *
 * @example
 * ```ts
 * import { embeddingSpec } from "@agcl/agcl/report";
 * import assert from "node:assert/strict";
 * const spec = embeddingSpec([{ x: 0, y: 1, target: "liver", domain: "CT" }]);
 * assert.deepEqual(spec.mark, { type: "point", filled: true, size: 40, opacity: 0.8 });
 * ```
 */
export function embeddingSpec(
  points: EmbeddingPoint[],
  options: { title?: string; axis?: string; methods?: string[] } = {},
): VegaLiteSpec {
  if (points.length === 0) {
    throw new TypeError("Cannot compute embeddingSpec as 'points' is empty");
  }
  const { axis = "UMAP", title = "Projection embeddings" } = options;
  const targets = new Set(points.map((p) => p.target)).size;
  const encoding = {
    x: {
      field: "x",
      type: "quantitative",
      title: `${axis} 1`,
      axis: { labels: false, ticks: false },
    },
    y: {
      field: "y",
      type: "quantitative",
      title: `${axis} 2`,
      axis: { labels: false, ticks: false },
    },
    color: {
      field: "target",
      type: "nominal",
      title: "target",
      scale: { scheme: targets > 10 ? "category20" : "tableau10" },
    },
    shape: { field: "domain", type: "nominal", title: "domain" },
  };
  const mark = { type: "point", filled: true, size: 40, opacity: 0.8 };
  if (points.some((p) => p.method !== undefined)) {
    return {
      title,
      data: { values: points },
      facet: {
        column: {
          field: "method",
          type: "nominal",
          title: null,
          sort: options.methods ?? [...new Set(points.map((p) => p.method))],
        },
      },
      spec: { width: 260, height: 260, mark, encoding },
      resolve: { scale: { x: "independent", y: "independent" } },
    };
  }
  return {
    title,
    width: 360,
    height: 360,
    data: { values: points },
    mark,
    encoding,
  };
}

/** One point of a temperature sweep. */
export interface TemperatureRow {
  /** Softmax temperature of the contrastive loss. */
  temperature: number;
  /** Mean Dice of the run. */
  dice: number;
  /** Method (one line each). */
  method?: string;
}

/**
 * Mean Dice against the contrastive temperature (Fig. 5b), log-scaled x.
 *
 * @param rows Sweep results.
 * @param options Title.
 * @returns A Vega-Lite spec.
 * @throws {TypeError} When `rows` is empty.
 *
 * @example
 * ```ts
 * import { temperatureSpec } from "@agcl/agcl/report";
 * import assert from "node:assert/strict";
 * const spec = temperatureSpec([{ temperature: 0.07, dice: 0.8 }, { temperature: 0.5, dice: 0.7 }]);
 * assert.equal(spec.title, "Temperature sweep");
 * ```
 */
export function temperatureSpec(
  rows: TemperatureRow[],
  options: { title?: string } = {},
): VegaLiteSpec {
  if (rows.length === 0) {
    throw new TypeError("Cannot compute temperatureSpec as 'rows' is empty");
  }
  const values = rows.map((r) => ({ method: r.method ?? "agcl", ...r }));
  return {
    title: options.title ?? "Temperature sweep",
    width: 360,
    height: 240,
    data: { values },
    mark: { type: "line", point: true },
    encoding: {
      x: {
        field: "temperature",
        type: "quantitative",
        scale: { type: "log" },
        title: "temperature τ",
      },
      y: {
        field: "dice",
        type: "quantitative",
        title: "mean Dice",
        scale: { zero: false },
      },
      color: { field: "method", type: "nominal", title: "method" },
    },
  };
}
