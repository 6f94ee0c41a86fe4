/**
 * Structured logs (pino): one JSON object per line, every line naming its
 * `node`, and every line about a change naming its `changeId`, so
 * `grep chg_...` follows one change across all nodes' logs. On a terminal
 * the same records are printed as one readable line each.
 *
 * Level: `--log-level`, else `PROPAGATE_LOG_LEVEL`, else `info`; under
 * vitest the default is `silent`, so tests stay quiet unless they ask.
 */
import { type DestinationStream, type Logger, pino } from "pino";
import type { PurgeEvent, PurgeTarget } from "./purge.ts";

export type { Logger };

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The level asked for (flag, then environment), validated; undefined = the default. */
export function logLevel(flag: string | undefined, env = process.env): LogLevel {
  const asked = flag ?? env.PROPAGATE_LOG_LEVEL;
  if (asked === undefined || asked === "") return env.VITEST ? "silent" : "info";
  if (!(LOG_LEVELS as readonly string[]).includes(asked)) {
    throw new Error(`log level must be one of ${LOG_LEVELS.join(", ")}, got "${asked}"`);
  }
  return asked as LogLevel;
}

export interface LoggerOptions {
  level: LogLevel;
  /** Where the lines go; default stderr: JSON, or readable lines on a terminal. */
  destination?: DestinationStream;
}

export function createLogger(o: LoggerOptions): Logger {
  const destination =
    o.destination ??
    (process.stderr.isTTY
      ? { write: (line: string) => process.stderr.write(prettyLine(line)) }
      : pino.destination({ fd: 2, sync: true }));
  return pino(
    { level: o.level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime },
    destination,
  );
}

const LEVEL_NAMES: Record<number, string> = {
  10: "TRACE",
  20: "DEBUG",
  30: "INFO",
  40: "WARN",
  50: "ERROR",
  60: "FATAL",
};

/** One JSON record as a terminal line: `time LEVEL node message key=value ...`. */
export function prettyLine(json: string): string {
  let r: Record<string, unknown>;
  try {
    r = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const { time, level, node, msg, ...rest } = r;
  const clock = typeof time === "string" ? time.slice(11, 23) : "";
  const fields = Object.entries(rest).map(
    ([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`,
  );
  const head = [clock, (LEVEL_NAMES[level as number] ?? String(level)).padEnd(5), node ?? "-", msg];
  return `${[...head, ...fields].join(" ")}\n`;
}

/** The string logs the launcher and the fabric already take, as records of `logger`. */
export function asLog(logger: Logger): (message: string) => void {
  return (message) => {
    if (message.startsWith("warning: ")) logger.warn(message.slice(9));
    else logger.info(message);
  };
}

/** Logs every change or purge `target` applies, with its change id (wraps this instance). */
export function logApplies<T extends PurgeTarget>(target: T, logger: Logger): T {
  const apply = target.applyPurge.bind(target);
  const line = (event: PurgeEvent) =>
    logger.info(
      { changeId: event.changeId, zone: event.zone, serial: event.serial, mode: event.mode },
      "applied",
    );
  target.applyPurge = (event: PurgeEvent) => {
    const done = apply(event);
    if (done instanceof Promise) return done.then(() => line(event));
    line(event);
    return done;
  };
  return target;
}
