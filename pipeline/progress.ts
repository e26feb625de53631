/**
 * Progress bars with ETA on stderr: redrawn in place on a TTY, one plain
 * line every few seconds (and at the end) otherwise, silent when quiet.
 *
 * @module
 */

/** How progress is shown. */
export type ProgressMode = "tty" | "plain" | "quiet";

/** Options for {@linkcode Progress}. */
export interface ProgressOptions {
  /** Output mode. @default {"tty" when stderr is a terminal, else "plain"} */
  mode?: ProgressMode;
  /** Where text goes. @default {writes to Deno.stderr} */
  write?: (text: string) => void;
  /** Clock in ms. @default {performance.now} */
  now?: () => number;
  /** Plain mode: minimum ms between lines. @default {5000} */
  plainIntervalMs?: number;
}

/** Formats seconds as `m:ss` or `h:mm:ss`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--:--";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

function defaultWrite(text: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(text));
}

/**
 * One progress bar over `total` units of work.
 *
 * @example Plain mode into a string
 * ```ts
 * import { Progress } from "@agcl/agcl/pipeline";
 * import assert from "node:assert/strict";
 *
 * let out = "";
 * const bar = new Progress("demo", 2, { mode: "plain", write: (t) => out += t });
 * bar.tick(); bar.tick(); bar.done();
 * assert.ok(out.includes("demo 2/2"));
 * ```
 */
export class Progress {
  #label: string;
  #total: number;
  #count = 0;
  #start: number;
  #last = -Infinity;
  #mode: ProgressMode;
  #write: (text: string) => void;
  #now: () => number;
  #interval: number;
  #note = "";
  #finished = false;
  #printed = "";

  /**
   * Starts a bar.
   *
   * @param label What is being done, e.g. `"stage 2 pretrain"`.
   * @param total Units of work (≥ 0).
   * @param options Mode and output.
   */
  constructor(label: string, total: number, options: ProgressOptions = {}) {
    this.#label = label;
    this.#total = Math.max(0, total);
    this.#mode = options.mode ??
      (Deno.stderr.isTerminal() ? "tty" : "plain");
    this.#write = options.write ?? defaultWrite;
    this.#now = options.now ?? (() => performance.now());
    this.#interval = options.plainIntervalMs ?? 5000;
    this.#start = this.#now();
  }

  /** Starts the clock again, e.g. when resuming at `count`. */
  reset(count = 0): void {
    this.#count = count;
    this.#start = this.#now();
    this.#startCount = count;
  }
  #startCount = 0;

  /**
   * Advances by `n` units, with an optional note (e.g. the loss).
   *
   * @param n Units done.
   * @param note Short text shown after the bar.
   */
  tick(n = 1, note?: string): void {
    this.#count = Math.min(this.#total, this.#count + n);
    if (note !== undefined) this.#note = note;
    this.#render(false);
  }

  /** Ends the bar (prints the final state and a newline). */
  done(note?: string): void {
    if (this.#finished) return;
    this.#finished = true;
    if (note !== undefined) this.#note = note;
    this.#render(true);
  }

  #line(): string {
    const elapsed = (this.#now() - this.#start) / 1000;
    const doneHere = this.#count - this.#startCount;
    const rate = doneHere > 0 ? elapsed / doneHere : NaN;
    const eta = (this.#total - this.#count) * rate;
    const frac = this.#total > 0 ? this.#count / this.#total : 1;
    const width = 24;
    const filled = Math.round(frac * width);
    const bar = "#".repeat(filled) + "-".repeat(width - filled);
    const pct = `${Math.round(frac * 100)}`.padStart(3);
    return `${this.#label} ${this.#count}/${this.#total} [${bar}] ${pct}% ${
      formatDuration(elapsed)
    } eta ${formatDuration(eta)}${this.#note ? ` ${this.#note}` : ""}`;
  }

  #render(final: boolean): void {
    if (this.#mode === "quiet") return;
    const t = this.#now();
    if (this.#mode === "tty") {
      if (!final && t - this.#last < 100) return;
      this.#last = t;
      this.#write(`\r\x1b[2K${this.#line()}${final ? "\n" : ""}`);
      return;
    }
    if (!final && t - this.#last < this.#interval) return;
    this.#last = t;
    const line = this.#line();
    // The closing line repeats nothing already printed.
    const key = `${this.#count} ${this.#note}`;
    if (final && key === this.#printed) return;
    this.#printed = key;
    this.#write(line + "\n");
  }
}
