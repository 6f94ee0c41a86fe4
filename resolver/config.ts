/**
 * The resolver's configuration: one typed object, validated once. Defaults
 * live here; `propagate resolver` flags map onto it (see README.md).
 */
import { z } from "zod";
import { issueReason } from "../core/issue.ts";
import { normaliseName } from "../core/names.ts";
import { DEFAULT_CACHE } from "./policy.ts";

const domainName = z.string().transform((s, ctx) => {
  try {
    return normaliseName(s);
  } catch (e) {
    ctx.addIssue({ code: "custom", message: `has an invalid name: ${(e as Error).message}` });
    return z.NEVER;
  }
});

const hostPort = z.object({ host: z.string().min(1), port: z.number().int().min(0).max(65535) });
const seconds = z
  .number()
  .int()
  .min(0)
  .max(2 ** 31 - 1);

const resolverConfigSchema = z.object({
  /** Node id: NSID payload (RFC 5001) and the purge target id. */
  id: z.string().min(1).max(64).default("res-1"),
  dns: hostPort.default({ host: "127.0.0.1", port: 0 }),
  /** http(s)://host:port for DoH (an edge or the origin), dns://host:port for plain DNS to the origin. */
  upstream: z
    .string()
    .regex(/^(https?|dns):\/\/[^/]+/, "must be http://host:port (DoH) or dns://host:port"),
  upstreamTimeoutMs: z.number().int().min(1).default(5_000),
  /** Admin HTTP endpoint (purge, metrics); undefined = none. */
  admin: hostPort.optional(),
  /** Bearer token of the admin endpoint. */
  token: z.string().min(8).optional(),
  /** Zones answered; other names get REFUSED (no open recursion). */
  zones: z.array(domainName).min(1).default(["example.test"]),
  /** RFC 6891 §6.2.5: our advertised and largest UDP payload; 1232 per DNS Flag Day 2020. */
  udpPayload: z.number().int().min(512).max(4096).default(1232),
  maxBytes: z.number().int().min(4096).default(DEFAULT_CACHE.maxBytes),
  minTtl: seconds.default(DEFAULT_CACHE.minTtl),
  maxTtl: seconds.default(DEFAULT_CACHE.maxTtl),
  maxNegativeTtl: seconds.default(DEFAULT_CACHE.maxNegativeTtl),
  clientTimeoutMs: z.number().int().min(0).default(DEFAULT_CACHE.clientTimeoutMs),
  staleTtl: seconds.default(DEFAULT_CACHE.staleTtl),
  failureRecheckMs: z.number().int().min(0).default(DEFAULT_CACHE.failureRecheckMs),
  maxStaleMs: z.number().int().min(0).default(DEFAULT_CACHE.maxStaleMs),
  prefetchFraction: z.number().min(0).max(1).default(DEFAULT_CACHE.prefetchFraction),
  /**
   * Response rate limiting on the UDP front (BIND-style RRL, core/rate-limit.ts):
   * identical responses per second per client /24 (/56), then drop, every
   * `slip`-th sent truncated so a real client retries over TCP. Absent: off.
   */
  rrl: z
    .object({
      responsesPerSecond: z.number().int().min(1),
      slip: z.number().int().min(0).default(2),
    })
    .optional(),
});

export type ResolverConfigInput = z.input<typeof resolverConfigSchema>;
export type ResolverConfig = Readonly<z.output<typeof resolverConfigSchema>>;

/** A configuration value that is not valid: `field` is its key (`token`, `dns.port`). */
export class ResolverConfigError extends Error {
  override readonly name = "ResolverConfigError";
  constructor(
    readonly field: string,
    readonly problem: string,
  ) {
    super(`${field} ${problem}`);
  }
}

/** Validates the configuration once; the first problem becomes one line naming its field. */
export function parseResolverConfig(input: ResolverConfigInput): ResolverConfig {
  const result = resolverConfigSchema.safeParse(input, { error: predicate });
  if (result.success) return result.data;
  const { field, reason } = issueReason(result.error.issues[0]!, "configuration");
  throw new ResolverConfigError(field, reason);
}

/** Zod's issues phrased to follow the field's name: "token must be at least 8 characters". */
function predicate(issue: z.core.$ZodRawIssue): string | undefined {
  if (issue.code === "too_small") return `must be at least ${bound(issue.minimum, issue.origin)}`;
  if (issue.code === "too_big") return `must be at most ${bound(issue.maximum, issue.origin)}`;
  if (issue.code === "invalid_type") return `must be a ${issue.expected}`;
  return undefined;
}

function bound(n: number | bigint, origin: string): string {
  if (origin === "string") return `${n} characters`;
  if (origin === "array") return `${n} ${n === 1 ? "entry" : "entries"}`;
  return String(n);
}
