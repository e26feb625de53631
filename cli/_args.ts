/** Flag parsing shared by the CLI entry files: strict, with clear errors. */
import { parseArgs, type ParseArgsConfig } from "node:util";

/** Thrown for a bad command line; the entry file prints it as one line. */
export class UsageError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Parses `args` strictly: an unknown flag lists the valid ones. */
export function parseFlags<T extends NonNullable<ParseArgsConfig["options"]>>(
  command: string,
  args: string[],
  options: T,
): ReturnType<
  typeof parseArgs<{ options: T; strict: true; allowPositionals: false }>
> {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false });
  } catch (e) {
    throw usageError(command, args, options, e);
  }
}

/**
 * Parses `args` strictly as {@linkcode parseFlags} does, allowing operands
 * (e.g. run directories) besides the flags.
 */
export function parseFlagsAndOperands<
  T extends NonNullable<ParseArgsConfig["options"]>,
>(
  command: string,
  args: string[],
  options: T,
): ReturnType<
  typeof parseArgs<{ options: T; strict: true; allowPositionals: true }>
> {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (e) {
    throw usageError(command, args, options, e);
  }
}

/** The one-line usage error of a `parseArgs` failure. */
function usageError(
  command: string,
  args: string[],
  options: NonNullable<ParseArgsConfig["options"]>,
  e: unknown,
): UsageError {
  const valid = Object.keys(options).map((k) => `--${k}`).join(", ");
  // node:util reads "--epochs -1" as a flag without its value.
  const flag = e instanceof Error && /argument is ambiguous/.test(e.message)
    ? /'(--[^']+)'/.exec(e.message)?.[1]
    : undefined;
  if (flag !== undefined) {
    const value = args[args.indexOf(flag) + 1] ?? "";
    return new UsageError(
      `${command}: the value of ${flag} starts with a dash ('${value}'): write ${flag}=${value} to pass it`,
    );
  }
  const msg = e instanceof Error ? e.message.split("\n")[0] : String(e);
  return new UsageError(`${command}: ${msg}; valid flags: ${valid}`);
}

/** Runs `main`, turning any error into one line on stderr and exit code 1 (2 for usage). */
export async function runCli(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    console.error(`error: ${msg}`);
    if (Deno.env.get("AGCL_DEBUG") && e instanceof Error) {
      console.error(e.stack);
    }
    Deno.exit(e instanceof UsageError ? 2 : 1);
  }
}

/** What {@linkcode formatUsage} prints for one command. */
export interface UsageSpec {
  /** Required flags, as written on the first line, e.g. `--pred DIR`. */
  required?: string;
  /** One line on what the command does. */
  summary: string;
  /** Each flag with its argument, and what it does. */
  flags: readonly (readonly [string, string])[];
  /** Paragraphs after the flags. */
  notes?: string;
  /** The JSR entry point, where it is not the command's name. @default {command} */
  entry?: string;
}

/**
 * The usage text of a command, in one shape for every command: how to run
 * it from a checkout and from JSR, what it does, each flag, then notes.
 */
export function formatUsage(command: string, spec: UsageSpec): string {
  const args = `${spec.required ? `${spec.required} ` : ""}[flags]`;
  const flags = [...spec.flags, ["--help", "print this usage"] as const];
  const width = Math.max(...flags.map(([f]) => f.length)) + 2;
  return [
    `Usage: deno task ${command} ${args}`,
    `   or: deno run -A jsr:@agcl/agcl/${spec.entry ?? command} ${args}`,
    "",
    spec.summary,
    "",
    ...flags.map(([f, text]) => `  ${f.padEnd(width)} ${text}`),
    ...(spec.notes ? ["", spec.notes] : []),
    "",
  ].join("\n");
}

function setPath(obj: Record<string, unknown>, path: string[], value: unknown) {
  let cur = obj;
  for (const key of path.slice(0, -1)) {
    if (typeof cur[key] !== "object" || cur[key] === null) cur[key] = {};
    cur = cur[key] as Record<string, unknown>;
  }
  cur[path[path.length - 1]!] = value;
}

/** A comma-separated list of numbers, e.g. `-1000,1000`. */
const NUMBER_LIST = /^\s*-?[\d.]+(e-?\d+)?(\s*,\s*-?[\d.]+(e-?\d+)?)+\s*$/i;

function parseSetValue(text: string): unknown {
  // --set intensity.window=-1000,1000 (JSON would need brackets).
  if (NUMBER_LIST.test(text)) return text.split(",").map(Number);
  try {
    return JSON.parse(text);
  } catch {
    return text; // a bare string such as a path or method name
  }
}

/**
 * The `--set FIELD=VALUE` flags as one partial config: a dotted field
 * path, a value read as JSON, a comma-separated number list, or else a
 * bare string.
 *
 * @param command The command, for the error message.
 * @param sets The flag values, in order (a later one wins).
 * @returns The nested partial config (not yet validated).
 * @throws {UsageError} For a value without `=` or a field.
 */
export function parseSets(
  command: string,
  sets: readonly string[],
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const s of sets) {
    const eq = s.indexOf("=");
    if (eq <= 0) {
      throw new UsageError(
        `${command}: --set expects FIELD=VALUE: current value is "${s}"`,
      );
    }
    setPath(out, s.slice(0, eq).split("."), parseSetValue(s.slice(eq + 1)));
  }
  return out;
}

/**
 * Reads a `--config` file: a JSON object of config fields.
 *
 * @param path The file.
 * @returns Its parsed content (not yet validated).
 * @throws {Error} Naming the file when it cannot be read or is not JSON.
 */
export async function readConfigFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new Error(
      `Cannot read config file ${path}: ${e instanceof Error ? e.message : e}`,
    );
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(
      `Cannot parse config file ${path} as JSON: ${
        e instanceof Error ? e.message : e
      }`,
    );
  }
}
