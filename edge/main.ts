/**
 * `propagate edge`: runs one edge cache in front of a parent until SIGTERM
 * or SIGINT.
 */
import {
  flagHelp,
  intFlag,
  LOG_LEVEL_FLAG,
  logging,
  parseFlags,
  parseHostPort,
  printReady,
  serveUntilSignal,
  UsageError,
} from "../core/flags.ts";
import { logApplies } from "../core/log.ts";
import { DEFAULT_MAX_BODY } from "./body.ts";
import { DEFAULT_PARENT_TIMEOUT_MS } from "./cache.ts";
import { invalidCacheId } from "./key.ts";
import { startEdge } from "./node.ts";
import { DEFAULT_MAX_BYTES } from "./storage-lru.ts";

const FLAGS = {
  http: { type: "string", help: "serve on HOST:PORT (default 127.0.0.1:8080; port 0 = free)" },
  parent: { type: "string", help: "parent base URL: the origin or another edge (required)" },
  id: { type: "string", help: "name in Cache-Status and metrics (default edge)" },
  "max-bytes": { type: "string", help: `cache size bound in bytes (default ${DEFAULT_MAX_BYTES})` },
  "max-body": {
    type: "string",
    help: `largest request body forwarded to the parent, bytes (default ${DEFAULT_MAX_BODY}); larger gets 413`,
  },
  token: { type: "string", help: "bearer token for POST /purge (without it, purge is refused)" },
  origin: { type: "string", help: "origin base URL for the version-floor bypass" },
  "parent-timeout": {
    type: "string",
    help: `ms before an unanswered parent request fails (default ${DEFAULT_PARENT_TIMEOUT_MS})`,
  },
  "no-read-repair": {
    type: "boolean",
    help: "do not soft-purge a zone's older entries when a newer serial arrives",
  },
  "no-fast-hits": {
    type: "boolean",
    help: "serve every request through the Hono app (no fast path for fresh hits; for comparison)",
  },
  "log-level": LOG_LEVEL_FLAG,
  help: { type: "boolean", short: "h", help: "show this help" },
} as const;

function baseUrl(value: string, flag: string): string {
  if (!URL.canParse(value) || !/^https?:$/.test(new URL(value).protocol)) {
    throw new UsageError(
      `--${flag} expects an http(s) base URL such as http://127.0.0.1:8053, got "${value}"`,
    );
  }
  return value;
}

export async function main(argv: string[]): Promise<void> {
  const { values: v } = parseFlags(argv, FLAGS, "edge");
  if (v.help) {
    console.log(flagHelp(FLAGS, "edge"));
    return;
  }
  if (!v.parent) throw new UsageError(`--parent URL is required\n\n${flagHelp(FLAGS, "edge")}`);
  const { host, port } = parseHostPort(v.http ?? "127.0.0.1:8080", "http");
  const id = v.id ?? "edge";
  const badId = invalidCacheId(id);
  if (badId !== undefined) throw new UsageError(`--id: ${badId}`);
  const { logger, log } = logging(v["log-level"], id);
  const running = await startEdge({
    id,
    host,
    port,
    parent: baseUrl(v.parent, "parent"),
    origin: v.origin === undefined ? undefined : baseUrl(v.origin, "origin"),
    maxBytes: intFlag(v["max-bytes"], "max-bytes"),
    maxBodyBytes: intFlag(v["max-body"], "max-body"),
    token: v.token,
    parentTimeoutMs: intFlag(v["parent-timeout"], "parent-timeout"),
    readRepair: !v["no-read-repair"],
    fastHits: !v["no-fast-hits"],
    log,
  });
  logApplies(running.edge, logger.child({ node: id }));
  console.log(`edge ${id} caching ${v.parent} on ${running.url}`);
  console.log(
    `edge ${id} metrics at ${running.url}/metrics, purge ${v.token ? "enabled" : "disabled (no --token)"}`,
  );
  printReady({ http: running.url, id });

  await serveUntilSignal(`edge ${id}`, running.close);
}
