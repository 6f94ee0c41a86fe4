/** `propagate resolver`: the caching DNS server, configured by flags (README.md lists them). */
import {
  flagHelp,
  intFlag,
  parseFlags,
  parseHostPort,
  printReady,
  serveUntilSignal,
  UsageError,
} from "../core/flags.ts";
import { ResolverConfigError, type ResolverConfigInput } from "./config.ts";
import { type RunningResolver, startResolver } from "./server.ts";

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
async function start(input: ResolverConfigInput): Promise<RunningResolver> {
  try {
    return await startResolver(input, {
      onUpstreamError: (err, name) =>
        console.error(`resolver: upstream failed for ${name}: ${(err as Error).message}`),
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
  const r = await start(input);
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
  printReady(ready);
  await serveUntilSignal(`resolver ${r.config.id}`, r.close);
}
