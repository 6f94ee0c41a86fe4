/**
 * The resolver's configuration: one typed object, validated once. Defaults
 * live here; `propagate resolver` flags map onto it (see README.md).
 */
import { z } from "zod";
import { normaliseName } from "../core/names.ts";
import { DEFAULT_CACHE } from "./policy.ts";

const hostPort = z.object({ host: z.string().min(1), port: z.number().int().min(0).max(65535) });
const seconds = z
  .number()
  .int()
  .min(0)
  .max(2 ** 31 - 1);

export const resolverConfigSchema = z.object({
  /** Node id: NSID payload (RFC 5001) and the purge target id. */
  id: z.string().min(1).max(64).default("res-1"),
  dns: hostPort.default({ host: "127.0.0.1", port: 0 }),
  /** http(s)://host:port for DoH (an edge or the origin), dns://host:port for plain DNS to the origin. */
  upstream: z
    .string()
    .regex(/^(https?|dns):\/\/[^/]+/, "upstream must be http://host:port or dns://host:port"),
  upstreamTimeoutMs: z.number().int().min(1).default(5_000),
  /** Admin HTTP endpoint (purge, metrics); undefined = none. */
  admin: hostPort.optional(),
  /** Bearer token of the admin endpoint. */
  token: z.string().min(8, "the admin token must be at least 8 characters").optional(),
  /** Zones answered; other names get REFUSED (no open recursion). */
  zones: z
    .array(z.string().transform((s) => normaliseName(s)))
    .min(1)
    .default(["example.test"]),
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
});

export type ResolverConfigInput = z.input<typeof resolverConfigSchema>;
export type ResolverConfig = Readonly<z.output<typeof resolverConfigSchema>>;
