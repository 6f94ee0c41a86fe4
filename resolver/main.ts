/** `propagate resolver`: the caching DNS server, configured by flags (README.md lists them). */
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
import { type Logger, logApplies } from "../core/log.ts";
import { ResolverConfigError, type ResolverConfigInput } from "./config.ts";
import { type RunningResolver, startResolver } from "./server.ts";
import { isResolverWorker, joinWorkers, startWorkers, workerSlot } from "./workers.ts";

const FLAGS = {
  dns: {
    type: "string",
    help: "HOST:PORT for DNS over UDP and TCP (default 127.0.0.1:1053; port 0 = free)",
  },
  upstream: {
    type: "string",
    help: "http://HOST:PORT (DoH to an edge or origin) or dns://HOST:PORT (origin's DNS)",
  },
  id: { type: "string", help: "node id, returned as NSID (default res-1)" },
  zones: {
    type: "string",
    help: "comma-separated zones to answer, others REFUSED (default example.test)",
  },
  admin: { type: "string", help: "HOST:PORT of the admin HTTP endpoint (default 127.0.0.1:0)" },
  token: {
    type: "string",
    help: "admin bearer token (default: generated and printed in the ready line)",
  },
  "max-bytes": { type: "string", help: "cache bound in bytes (default 67108864)" },
  "min-ttl": {
    type: "string",
    help: "lowest TTL stored for positive answers, seconds (default 0)",
  },
  "max-ttl": {
    type: "string",
    help: "highest TTL stored for positive answers, seconds (default 86400)",
  },
  "max-negative-ttl": { type: "string", help: "cap on negative caching, seconds (default 3600)" },
  "client-timeout": {
    type: "string",
    help: "ms an expired answer waits for the upstream before stale (default 1800)",
  },
  "max-stale": {
    type: "string",
    help: "seconds an expired answer may still be served (default 86400)",
  },
  "upstream-timeout": {
    type: "string",
    help: "ms before an upstream request fails (default 5000)",
  },
  "log-level": LOG_LEVEL_FLAG,
  workers: {
    type: "string",
    help: "N processes answering on one DNS port, each with its own cache and admin (default 1)",
  },
  rrl: {
    type: "string",
    help: "response rate limit on UDP: identical answers per second per client /24 (default off)",
  },
  "rrl-slip": {
    type: "string",
    help: "with --rrl, every Nth answer over the limit is sent truncated (TC), 0 = drop all (default 2)",
  },
  help: { type: "boolean", short: "h", help: "show this help" },
} as const;

/** Configuration keys that come from a flag of another name. */
const FLAG_OF: Record<string, string> = {
  maxBytes: "max-bytes",
  minTtl: "min-ttl",
  maxTtl: "max-ttl",
  maxNegativeTtl: "max-negative-ttl",
  clientTimeoutMs: "client-timeout",
  maxStaleMs: "max-stale",
  upstreamTimeoutMs: "upstream-timeout",
};

/** Starts the resolver; a configuration error names the flag: "--token must be at least 8 characters". */
async function start(input: ResolverConfigInput, log: () => Logger): Promise<RunningResolver> {
  try {
    return await startResolver(input, {
      onUpstreamError: (err, name) =>
        log().warn({ name, error: (err as Error).message }, "upstream failed"),
    });
  } catch (err) {
    if (!(err instanceof ResolverConfigError)) throw err;
    const key = err.field.split(".")[0]!;
    throw new UsageError(`--${FLAG_OF[key] ?? key} ${err.problem}`);
  }
}

export async function main(argv: string[]): Promise<void> {
  const { values: v } = parseFlags(argv, FLAGS, "resolver");
  if (v.help) {
    console.log(flagHelp(FLAGS, "resolver"));
    return;
  }
  if (!v.upstream) throw new UsageError(`--upstream is required\n\n${flagHelp(FLAGS, "resolver")}`);
  const maxStale = intFlag(v["max-stale"], "max-stale");
  const input: ResolverConfigInput = {
    id: v.id,
    dns: parseHostPort(v.dns ?? "127.0.0.1:1053", "dns"),
    upstream: v.upstream,
    admin: parseHostPort(v.admin ?? "127.0.0.1:0", "admin"),
    token: v.token,
    zones: v.zones?.split(",").filter((z) => z !== ""),
    maxBytes: intFlag(v["max-bytes"], "max-bytes"),
    minTtl: intFlag(v["min-ttl"], "min-ttl"),
    maxTtl: intFlag(v["max-ttl"], "max-ttl"),
    maxNegativeTtl: intFlag(v["max-negative-ttl"], "max-negative-ttl"),
    clientTimeoutMs: intFlag(v["client-timeout"], "client-timeout"),
    maxStaleMs: maxStale === undefined ? undefined : maxStale * 1000,
    upstreamTimeoutMs: intFlag(v["upstream-timeout"], "upstream-timeout"),
  };
  const rrl = intFlag(v.rrl, "rrl", { min: 1 });
  if (rrl !== undefined)
    input.rrl = { responsesPerSecond: rrl, slip: intFlag(v["rrl-slip"], "rrl-slip") };
  else if (v["rrl-slip"] !== undefined) throw new UsageError("--rrl-slip needs --rrl");
  const workers = intFlag(v.workers, "workers", { min: 1, default: 1 });
  if (workers > 64) throw new UsageError(`--workers expects at most 64, got "${v.workers}"`);
  if (workers > 1 && !isResolverWorker()) {
    const { ready, close } = await startWorkers(
      workers,
      input.admin!.host,
      input.admin!.port,
      v.token,
    );
    console.log(`resolver ${input.id ?? "res-1"}: ${workers} workers on ${ready.dns}`);
    printReady(ready);
    return serveUntilSignal(`resolver ${input.id ?? "res-1"}`, close);
  }
  if (isResolverWorker()) {
    const slot = workerSlot();
    input.id = `${input.id ?? "res-1"}-w${slot.index}`;
    input.admin = { host: input.admin!.host, port: slot.adminPort };
    input.token = slot.token;
  }
  const { logger } = logging(v["log-level"], "resolver");
  // The node id is the configuration's (its default too), known once it is parsed.
  let log = logger.child({ node: input.id ?? v.id });
  const r = await start(input, () => log);
  log = logger.child({ node: r.config.id });
  logApplies(r.resolver, log);
  console.log(
    `resolver ${r.config.id}: DNS on ${r.dnsAddr} (UDP+TCP), zones ${r.config.zones.join(", ")}`,
  );
  console.log(
    `resolver ${r.config.id}: upstream ${r.config.upstream}; admin ${r.adminUrl} (POST /purge, GET /metrics)`,
  );
  const ready: Record<string, string> = {
    dns: r.dnsAddr,
    admin: r.adminUrl ?? "",
    id: r.config.id,
  };
  if (v.token === undefined) ready.token = r.token;
  if (isResolverWorker()) joinWorkers(r, ready);
  else printReady(ready);
  await serveUntilSignal(`resolver ${r.config.id}`, r.close);
}
