/**
 * Evaluation of a run: inference with label fusion on the evaluation cases,
 * their metrics, and the evidence of what each stage contributed (stage-1
 * Dice beside final Dice, how much truth lies outside the attention, the
 * attention's precision and recall on training and evaluation cases).
 *
 * @module
 */
import { join } from "node:path";
import { type LabelMap, VOC_IGNORE } from "../data/mod.ts";
import {
  type CaseMetrics,
  confusionMatrix,
  evaluateLabelMaps,
  meanIoUFromConfusion,
  type MetricsSummary,
  metricsTable,
  summarizeMetrics,
} from "../metrics/mod.ts";
import { dilateMask } from "./attention.ts";
import type { PipelineConfig } from "./config.ts";
import { segmentVolume } from "./infer.ts";
import type { PreparedCase, PreparedData } from "./prepare.ts";
import { Progress, type ProgressMode } from "./progress.ts";
import type { DeepLab } from "./_models.ts";
import type { Stage2Health, Stage2Probe } from "./stage2.ts";
import { writeCaseLabels } from "./_label_io.ts";

/** How a label map (coarse or attention) covers the truth, for one target. */
export interface CoverageScores {
  /** Mean Dice over cases (both empty = 1, one empty = 0). */
  dice: number | null;
  /** Mean Dice over the cases whose truth contains the target. */
  dicePresent: number | null;
  /** Pooled over cases: true pixels inside / pixels inside. */
  precision: number | null;
  /** Pooled over cases: true pixels inside / true pixels. */
  recall: number | null;
  /**
   * Share of true pixels farther than `margin` from the map (in the max
   * norm, per slice): what label fusion can never label, the ceiling it
   * imposes. Equals `1 − recall` for margin 0.
   */
  outside: number | null;
}

/** {@linkcode CoverageScores} per target name and their mean over targets. */
export interface Coverage {
  /** Per target name. */
  targets: Record<string, CoverageScores>;
  /** Mean over targets (of the non-null values). */
  mean: CoverageScores;
}

/**
 * Scores label maps (stage 1's coarse maps or the attention) against the
 * truth of the cases that have one.
 *
 * @param cases Cases (those without a label are skipped).
 * @param maps Label map per case id.
 * @param options The `targets` (ids and names) and the `margin` in pixels
 * of slack for `outside`.
 * @returns Per target and mean.
 */
export function coverage(
  cases: PreparedCase[],
  maps: Map<string, LabelMap>,
  options: { targets: { id: number; name: string }[]; margin: number },
): Coverage {
  const { targets, margin } = options;
  const out: Record<string, CoverageScores> = {};
  for (const t of targets) {
    const dice: number[] = [], present: number[] = [];
    let tp = 0, np = 0, nt = 0, far = 0;
    for (const c of cases) {
      const map = maps.get(c.id);
      if (!map || !c.label) continue;
      const [nx, ny, nz] = c.dims;
      const area = nx * ny;
      let ctp = 0, cnp = 0, cnt = 0;
      for (let z = 0; z < nz; z++) {
        const inside = new Uint8Array(area);
        let any = false;
        for (let v = 0; v < area; v++) {
          const i = z * area + v;
          const p = map[i] === t.id, q = c.label[i] === t.id;
          if (p) (cnp++, inside[v] = 1, any = true);
          if (q) cnt++;
          if (p && q) ctp++;
        }
        const reach = margin > 0 && any
          ? dilateMask(inside, { width: nx, height: ny, radius: margin })
          : inside;
        for (let v = 0; v < area; v++) {
          if (c.label[z * area + v] === t.id && reach[v] === 0) far++;
        }
      }
      tp += ctp, np += cnp, nt += cnt;
      const d = cnp + cnt === 0 ? 1 : (2 * ctp) / (cnp + cnt);
      dice.push(d);
      if (cnt > 0) present.push(d);
    }
    out[t.name] = {
      dice: meanOf(dice),
      dicePresent: meanOf(present),
      precision: np ? tp / np : null,
      recall: nt ? tp / nt : null,
      outside: nt ? far / nt : null,
    };
  }
  const col = (k: keyof CoverageScores) =>
    meanOf(
      Object.values(out).flatMap((s) => (s[k] === null ? [] : [s[k]!])),
    );
  return {
    targets: out,
    mean: {
      dice: col("dice"),
      dicePresent: col("dicePresent"),
      precision: col("precision"),
      recall: col("recall"),
      outside: col("outside"),
    },
  };
}

/** How stage 1's maps cover the truth: what `metrics.json` keeps under `stages`. */
export interface Stage1Evidence {
  /** Coverage of the coarse maps (before growth) on the evaluation cases. */
  stage1: Coverage;
  /** Coverage of the attention, with `outside` at the inference margin. */
  attention: {
    /** How the training cases' attention was made. */
    source: string;
    /** The inference margin in pixels. */
    margin: number;
    /** On the training cases (what stages 2 and 3 learn from). */
    train: Coverage;
    /** On the evaluation cases (what inference gets). */
    evaluation: Coverage;
  };
}

/**
 * Scores stage 1's product against the truth: the coarse maps on the
 * evaluation cases, and the attention on the training and evaluation cases.
 *
 * @param data The prepared data.
 * @param product Stage 1's coarse maps and attention per case id, and how
 * the training attention was made.
 * @param options The inference `margin` in pixels.
 * @returns The evidence.
 */
export function stage1Evidence(
  data: Pick<PreparedData, "train" | "evaluation" | "targets">,
  product: {
    coarse: Map<string, LabelMap>;
    attention: Map<string, LabelMap>;
    trainSource: string;
  },
  options: { margin: number },
): Stage1Evidence {
  const { targets } = data;
  const { margin } = options;
  return {
    stage1: coverage(data.evaluation, product.coarse, { targets, margin: 0 }),
    attention: {
      source: product.trainSource,
      margin,
      train: coverage(data.train, product.attention, { targets, margin }),
      evaluation: coverage(data.evaluation, product.attention, {
        targets,
        margin,
      }),
    },
  };
}

const f3 = (v: number | null | undefined): string =>
  v === null || v === undefined ? "-" : v.toFixed(3);

/**
 * The line a run prints after stage 1: its Dice, and the attention's
 * precision and recall on training against evaluation cases.
 *
 * @param e The evidence from {@linkcode stage1Evidence}.
 * @returns One line.
 */
export function describeStage1(e: Stage1Evidence): string {
  const ev = e.attention.evaluation.mean, tr = e.attention.train.mean;
  return `stage 1: Dice on the evaluation cases ${
    f3(e.stage1.mean.dice)
  } (attention ${
    f3(ev.dice)
  }); attention (${e.attention.source} on training) precision/recall: training ${
    f3(tr.precision)
  }/${f3(tr.recall)}, evaluation ${f3(ev.precision)}/${
    f3(ev.recall)
  }; true pixels beyond the fusion's reach (margin ${e.attention.margin}): ${
    f3(ev.outside)
  }`;
}

/**
 * The line a run prints after stage 2: loss against chance, anchors with a
 * positive, and the 5-NN target accuracy of the probes.
 *
 * @param health Stage 2's health.
 * @param probe The probes, when they ran.
 * @returns One line.
 */
export function describeStage2(
  health: Stage2Health,
  probe: Stage2Probe | null,
): string {
  const h = health;
  return `stage 2 (${h.method}): ${h.steps} steps, loss ${
    f3(h.initialLoss)
  } → ${f3(h.finalLoss)} (chance ${f3(h.chance)}, floor ${
    f3(h.floor)
  }); anchors with a positive besides their twin: ${f3(h.positiveFraction)}${
    probe
      ? `; 5-NN target accuracy: input ${f3(probe.input.knn.target)}, encoder ${
        f3(probe.encoder.knn.target)
      }, projection ${f3(probe.projection.knn.target)}`
      : ""
  }`;
}

/**
 * A warning when stage 2 ended near its chance level (its final loss above
 * 95 % of it): the encoder learnt little, and stage 3 builds on features
 * little better than random ones.
 *
 * @param health Stage 2's health.
 * @returns The warning, or `null` when the loss fell clearly or there is
 * no chance level (`none`).
 */
export function stage2Warning(health: Stage2Health): string | null {
  const { finalLoss, chance, method } = health;
  if (finalLoss === null || chance === null || finalLoss < 0.95 * chance) {
    return null;
  }
  return `stage 2 (${method}) ended with loss ${
    finalLoss.toFixed(3)
  }, within 5 % of its chance level ${
    chance.toFixed(3)
  }: the encoder learnt little (or its embedding collapsed); try more steps (pretrain.epochs, pretrain.stepsPerEpoch), a lower pretrain.lr or another seed`;
}

/** The setting to raise when a stage's loss is still falling at its end. */
const BUDGET: Record<string, string> = {
  coarse: "coarse.epochs",
  pretrain: "pretrain.epochs or pretrain.stepsPerEpoch",
  segment: "segment.epochs or segment.stepsPerEpoch",
};

/**
 * Warnings for stages whose training loss was still falling at their end:
 * the mean loss of the last window of steps is more than 5 % below that of
 * the window before it, and below it beyond the steps' own noise (a
 * one-sided Welch z-test of the two windows' means at the 5 % level, z ≥
 * 1.645). A window is a tenth of the stage's steps under a constant
 * learning rate, and a fifth where the rate decays (the stage's last logged
 * `lr` below half its first, as under `"cosine"`): the last tenth of a
 * cosine runs below 2.5 % of the peak rate, where the loss hardly moves
 * whether or not more steps would help. Stages with fewer than 20 steps are
 * not judged. Each warning names the setting to raise.
 *
 * The noise test matters with small batches: the default phantom run's
 * stage 1 (batch 4, 54 steps a tenth) ended 0.389 → 0.363, 6.9 % lower
 * but only z = 1.23, while a stage 1 that was under-trained (Task104
 * digits at 10 epochs of a constant lr, whose network gained 0.70 → 0.88
 * Dice from 3× the steps) ended 1.031 → 0.967, z = 1.87. The fifths matter
 * under the cosine: the brain atlas's stage 1 (1350 steps, seed 0; its
 * Dice rose from 0.779 to 0.810 with twice the steps) ended flat over its
 * last two tenths (0.695 → 0.690) but fell 7.7 % over its last two fifths
 * (0.750 → 0.693, z = 4.8).
 *
 * @param log The run's log lines (`stage`, `loss`, and `lr` where logged).
 * @returns One warning per under-trained stage, in stage order.
 *
 * @example
 * ```ts
 * import { underTrainedWarnings } from "@agcl/agcl/pipeline";
 * import assert from "node:assert/strict";
 *
 * const falling = Array.from({ length: 40 }, (_, i) => ({ stage: "coarse", loss: 2 - i / 40 }));
 * assert.match(underTrainedWarnings(falling)[0]!, /raise coarse\.epochs/);
 * const flat = falling.map((e) => ({ ...e, loss: 1 }));
 * assert.deepEqual(underTrainedWarnings(flat), []);
 * ```
 */
export function underTrainedWarnings(
  log: { stage: string; loss: number; lr?: number }[],
): string[] {
  const out: string[] = [];
  for (const stage of ["coarse", "pretrain", "segment"]) {
    const steps = log.filter((e) => e.stage === stage);
    const v = steps.map((e) => e.loss);
    if (v.length < 20) continue;
    const lrs = steps.map((e) => e.lr).filter((x) => x !== undefined);
    const decays = lrs.length > 1 && lrs.at(-1)! < 0.5 * lrs[0]!;
    const parts = decays ? 5 : 10;
    const k = Math.floor(v.length / parts);
    const lastSteps = v.slice(-k), beforeSteps = v.slice(-2 * k, -k);
    const last = meanOf(lastSteps)!, before = meanOf(beforeSteps)!;
    const se = Math.sqrt(
      (varianceOf(lastSteps, last) + varianceOf(beforeSteps, before)) / k,
    );
    const beyondNoise = se === 0 || (before - last) / se >= 1.645;
    if (last < 0.95 * before && beyondNoise) {
      out.push(
        `the ${stage} loss was still falling at the end of its stage (${
          before.toFixed(3)
        } → ${last.toFixed(3)} over its last two ${
          decays ? "fifths" : "tenths"
        }): raise ${BUDGET[stage]}`,
      );
    }
  }
  return out;
}

/** Sample variance of `v` about its mean `m` (0 for fewer than 2 values). */
function varianceOf(v: number[], m: number): number {
  if (v.length < 2) return 0;
  return v.reduce((a, x) => a + (x - m) ** 2, 0) / (v.length - 1);
}

function meanOf(v: number[]): number | null {
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
}

/** The metrics of the evaluation cases, with VOC's mIoU where it applies. */
export type EvaluationMetrics = MetricsSummary & { miou?: number };

/**
 * Segments every evaluation case (per-target sliding windows, label
 * fusion), writes `<dir>/<case id>.nii.gz` in the case's layout, and scores
 * the cases that have labels (Dice, HD95, ASSD; VOC: 255 ignored, mIoU).
 *
 * @param net The stage-3 network.
 * @param data The prepared data.
 * @param options The attention per case id, config, prediction folder and
 * progress mode.
 * @returns The metrics (`null` when no evaluation case has a label).
 */
export async function evaluateCases(
  net: DeepLab,
  data: PreparedData,
  options: {
    attention: Map<string, LabelMap>;
    config: PipelineConfig;
    dir: string;
    progress: ProgressMode;
  },
): Promise<EvaluationMetrics | null> {
  const { config, attention } = options;
  const perCase: { image: string; id: string; metrics: CaseMetrics }[] = [];
  const labels = Object.fromEntries(data.targets.map((t) => [t.id, t.name]));
  const vocClasses = Object.keys(data.dataset.labels).length;
  const confusion = new Float64Array(vocClasses * vocClasses);
  const bar = new Progress("inference", data.evaluation.length, {
    mode: options.progress,
  });
  for (const c of data.evaluation) {
    const fused = await segmentVolume(net, c, {
      attention: attention.get(c.id)!,
      ...config.inference,
      patchSize: config.patchSize,
      targets: data.targets.map((t) => t.id),
    });
    await writeCaseLabels(join(options.dir, `${c.id}.nii.gz`), fused, c);
    if (c.label) {
      if (data.voc) {
        // VOC: pixels labelled 255 are ignored by every metric.
        for (let i = 0; i < fused.length; i++) {
          if (c.label[i] === VOC_IGNORE) fused[i] = 0;
        }
        confusionMatrix(fused, c.label, {
          numClasses: vocClasses,
          into: confusion,
        });
      }
      perCase.push({
        image: c.entry.image,
        id: c.id,
        metrics: evaluateLabelMaps(fused, c.label, {
          dims: c.dims,
          spacing: c.spacing,
          labels,
        }),
      });
    }
    bar.tick();
  }
  bar.done();
  if (perCase.length === 0) return null;
  const metrics: EvaluationMetrics = summarizeMetrics(perCase);
  if (data.voc) metrics.miou = meanIoUFromConfusion(confusion).miou;
  return metrics;
}

/**
 * The table of what each stage contributed, per target: stage-1 Dice (the
 * coarse map), final Dice and their difference, both over every case and
 * over the cases containing the target; the share of truth beyond the
 * fusion's reach; the attention's recall on training and on evaluation
 * cases.
 *
 * @param final The final metrics.
 * @param coverages `stage1`: coverage of the coarse maps on the evaluation
 * cases; `reach`: of the attention on the evaluation cases (its `outside`
 * with the inference margin); `train`: of the attention on the training
 * cases.
 * @returns The table, one line per row.
 *
 * @example
 * ```ts
 * import { formatStageTable } from "@agcl/agcl/pipeline";
 * import assert from "node:assert/strict";
 *
 * const s = { dice: 0.5, dicePresent: 0.5, precision: 0.6, recall: 0.7, outside: 0.1 };
 * const cov = { targets: { liver: s }, mean: s };
 * const final = { targets: { liver: { dice: 0.6, dicePresent: 0.6, hd95: 1, assd: 1 } },
 *   mean: { dice: 0.6, dicePresent: 0.6, hd95: 1, assd: 1 } };
 * const table = formatStageTable(final, { stage1: cov, reach: cov, train: cov });
 * assert.match(table.split("\n")[1]!, /^liver\s+0\.500\s+0\.600\s+\+0\.100/);
 * ```
 */
export function formatStageTable(
  final: Pick<MetricsSummary, "targets" | "mean">,
  coverages: { stage1: Coverage; reach: Coverage; train: Coverage },
): string {
  const { stage1, reach, train } = coverages;
  const f = (v: number | null | undefined, signed = false) =>
    v === null || v === undefined
      ? "-"
      : `${signed && v >= 0 ? "+" : ""}${v.toFixed(3)}`;
  const names = Object.keys(final.targets);
  const width = Math.max(6, ...names.map((n) => n.length)) + 2;
  const head = [
    "stage1",
    "final",
    "Δ",
    "s1Present",
    "finalPresent",
    "ΔPresent",
    "outside",
    "rec.train",
    "rec.eval",
  ];
  const row = (
    name: string,
    fin: { dice: number; dicePresent?: number | null },
    s1: CoverageScores | undefined,
    at: CoverageScores | undefined,
    tr: CoverageScores | undefined,
  ) => {
    const d = s1?.dice ?? null, g = s1?.dicePresent ?? null;
    const fg = fin.dicePresent ?? null;
    return name.padEnd(width) + [
      f(d),
      f(fin.dice),
      f(d === null ? null : fin.dice - d, true),
      f(g),
      f(fg),
      f(g === null || fg === null ? null : fg - g, true),
      f(at?.outside),
      f(tr?.recall),
      f(at?.recall),
    ].map((c, i) => c.padStart(Math.max(8, head[i]!.length + 1))).join("");
  };
  const lines = [
    "target".padEnd(width) +
    head.map((h) => h.padStart(Math.max(8, h.length + 1))).join(""),
    ...names.map((n) =>
      row(
        n,
        final.targets[n]!,
        stage1.targets[n],
        reach.targets[n],
        train.targets[n],
      )
    ),
    row("mean", final.mean, stage1.mean, reach.mean, train.mean),
    "(stage1: the coarse map's Dice; Δ = final − stage1; …Present: dicePresent, over the cases whose truth has the target; outside: share of true pixels beyond the fusion's reach; rec.: attention recall on training / evaluation cases)",
  ];
  return lines.join("\n");
}

/**
 * Formats a `metrics.json` summary as the text table printed at the end of
 * a run: the metrics package's {@linkcode metricsTable} (one row per
 * target: Dice over every case, Dice over the cases containing the target,
 * counts, HD95 and ASSD in mm with `-` where undefined; then the mean).
 *
 * @param metrics The summary from `summarizeMetrics`.
 * @returns The table, one line per row, then a legend line.
 *
 * @example
 * ```ts
 * import { formatMetricsTable } from "@agcl/agcl/pipeline";
 * import assert from "node:assert/strict";
 *
 * const row = { dice: 0.9, hd95: 2, assd: 0.5 };
 * const lines = formatMetricsTable({ targets: { liver: row }, mean: row })
 *   .split("\n");
 * assert.match(lines[1]!, /^liver\s+0\.900\s/);
 * assert.match(lines[2]!, /^mean\s+0\.900\s/);
 * ```
 */
export function formatMetricsTable(
  metrics: Parameters<typeof metricsTable>[0],
): string {
  return metricsTable(metrics);
}
