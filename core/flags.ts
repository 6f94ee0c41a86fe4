/**
 * What every command line shares (Node-only: node:util, process): a small
 * flag parser (`--name value`, `--name=value` and boolean `--name`; unknown
 * flags are an error that lists the known ones), whole-number and HOST:PORT
 * flags, `--log-level` and the logger it picks (core/log.ts), the `ready
 * {json}` line and the stop on SIGINT/SIGTERM. It lives in
 * core/ so that each tier's main.ts and infra/ import it from below.
 */
import { parseArgs } from "node:util";
import { asLog, createLogger, type Logger, logLevel } from "./log.ts";

export interface FlagSpec {
  [name: string]: { type: "string" | "boolean"; multiple?: boolean; short?: string; help: string };
}

export class UsageError extends Error {
  override readonly name = "UsageError";
}

export function parseFlags<S extends FlagSpec>(argv: string[], spec: S, command: string) {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: Object.fromEntries(
        Object.entries(spec).map(([k, v]) => [
          k,
          // parseArgs rejects keys that are present but undefined.
          {
            type: v.type,
            ...(v.multiple !== undefined && { multiple: v.multiple }),
            ...(v.short !== undefined && { short: v.short }),
          },
        ]),
      ),
      allowPositionals: true,
      strict: true,
    });
    return {
      values: values as { [K in keyof S]?: S[K]["type"] extends "boolean" ? boolean : string },
      positionals,
    };
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n\n${flagHelp(spec, command)}`);
  }
}

export function flagHelp(spec: FlagSpec, command: string): string {
  const rows = Object.entries(spec).map(
    ([k, v]) => `  --${k}${v.type === "string" ? " VALUE" : ""}`.padEnd(28) + v.help,
  );
  return `usage: propagate ${command} [flags]\n\n${rows.join("\n")}`;
}

/**
 * A whole-number flag: `default` (or undefined) when the flag is absent,
 * else digits only and at least `min` (0 unless given).
 */
/** The `--log-level` flag every long-running command takes. */
export const LOG_LEVEL_FLAG = {
  type: "string",
  help: "fatal, error, warn, info (default), debug, trace or silent; env PROPAGATE_LOG_LEVEL",
} as const;

/**
 * One logger for the process at `--log-level` (silent by default under
 * vitest), and the string `log` the nodes take, as records naming `node`.
 */
export function logging(
  level: string | undefined,
  node: string,
): { logger: Logger; log: (m: string) => void } {
  let logger: Logger;
  try {
    logger = createLogger({ level: logLevel(level) });
  } catch (err) {
    throw new UsageError(`--log-level: ${(err as Error).message}`);
  }
  return { logger, log: asLog(logger.child({ node })) };
}

export function intFlag(
  value: string | undefined,
  flag: string,
  opts?: { min?: number },
): number | undefined;
export function intFlag(
  value: string | undefined,
  flag: string,
  opts: { min?: number; default: number },
): number;
export function intFlag(
  value: string | undefined,
  flag: string,
  { min = 0, default: dflt }: { min?: number; default?: number } = {},
): number | undefined {
  if (value === undefined) return dflt;
  if (!/^\d+$/.test(value) || Number(value) < min) {
    const what = min === 0 ? "a whole number" : `a whole number >= ${min}`;
    throw new UsageError(`--${flag} expects ${what}, got "${value}"`);
  }
  return Number(value);
}

/** Parses "host:port" (or "[v6]:port"); port 0 means "pick a free one". */
export function parseHostPort(value: string, flag: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) {
    throw new UsageError(
      `--${flag} expects HOST:PORT such as 127.0.0.1:8053 (port 0 picks a free one), got "${value}"`,
    );
  }
  return { host: (m[1] ?? m[2])!, port };
}

/** The machine-readable line every server prints once it listens; tests and `propagate up` read it. */
export function printReady(info: Record<string, string>): void {
  console.log(`ready ${JSON.stringify(info)}`);
}

/**
 * Serves until SIGINT or SIGTERM, then runs `close` and exits: 0, or 1 when
 * closing failed. A second signal while closing is ignored.
 */
export async function serveUntilSignal(name: string, close: () => Promise<void>): Promise<never> {
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once("SIGINT", () => resolve("SIGINT"));
    process.once("SIGTERM", () => resolve("SIGTERM"));
  });
  console.error(`${name}: ${signal}, stopping`);
  try {
    await close();
    process.exit(0);
  } catch (err) {
    console.error(`${name}: stop failed: ${(err as Error).message}`);
    process.exit(1);
  }
}
