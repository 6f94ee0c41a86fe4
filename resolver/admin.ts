/**
 * The admin HTTP endpoint (Hono): purge and metrics, behind a bearer token
 * (hono/bearer-auth compares in constant time). /healthz is open.
 */
import { Hono } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import { issueReason } from "../core/issue.ts";
import { normaliseName } from "../core/names.ts";
import type { ResolverCache } from "./cache.ts";
import type { HandlerMetrics } from "./handler.ts";

const name = z.string().transform((s, ctx) => {
  try {
    return normaliseName(s);
  } catch (e) {
    ctx.addIssue({ code: "custom", message: (e as Error).message });
    return z.NEVER;
  }
});

const purgeBody = z
  .object({
    name: name.optional(),
    zone: name.optional(),
    all: z.literal(true).optional(),
    mode: z.enum(["hard", "soft"]).default("hard"),
  })
  .strict()
  .refine((b) => [b.name, b.zone, b.all].filter((v) => v !== undefined).length === 1, {
    message: 'give exactly one of "name", "zone" or "all": true',
  });

/** Every error body: what went wrong, and what to do (as the origin's API answers). */
interface ErrorBody {
  error: string;
  field?: string;
  reason: string;
}

/** Largest admin purge body read (bytes). */
const MAX_PURGE_BODY = 64 * 1024;

export function adminApp(cache: ResolverCache, handler: HandlerMetrics, token: string): Hono {
  const app = new Hono();
  const deny = (reason: string) => ({ message: { error: "unauthorized", reason } });
  app.notFound((c) =>
    c.json<ErrorBody>(
      {
        error: "not found",
        reason: "the admin endpoint serves POST /purge, GET /metrics, GET /healthz",
      },
      404,
    ),
  );
  app.get("/healthz", (c) => c.json({ ok: true, id: cache.id }));
  app.use(
    "*",
    bearerAuth({
      token,
      noAuthenticationHeader: deny("send Authorization: Bearer <token> (the resolver's --token)"),
      invalidAuthenticationHeader: deny("the Authorization header must be: Bearer <token>"),
      invalidToken: deny("wrong token; use the resolver's --token"),
    }),
  );
  app.post(
    "/purge",
    // A purge request is a few hundred bytes; nothing larger is read.
    bodyLimit({
      maxSize: MAX_PURGE_BODY,
      onError: (c) =>
        c.json<ErrorBody>(
          {
            error: "payload too large",
            field: "body",
            reason: `a purge request is at most ${MAX_PURGE_BODY} bytes`,
          },
          413,
        ),
    }),
  );
  app.post("/purge", async (c) => {
    const raw: unknown = await c.req.json().catch(() => undefined);
    if (raw === undefined) {
      const reason = 'the body must be JSON, e.g. {"name": "www.example.test", "mode": "soft"}';
      return c.json<ErrorBody>({ error: "bad purge request", field: "body", reason }, 400);
    }
    const body = purgeBody.safeParse(raw);
    if (!body.success) {
      const at = issueReason(body.error.issues[0]!);
      return c.json<ErrorBody>({ error: "bad purge request", ...at }, 400);
    }
    const { mode, ...target } = body.data;
    return c.json({ purged: cache.purge(target, mode), mode });
  });
  app.get("/metrics", (c) =>
    c.text(metricsText(cache, handler), 200, { "content-type": "text/plain; version=0.0.4" }),
  );
  return app;
}

/** Prometheus text exposition of the cache and query counters. */
function metricsText(cache: ResolverCache, handler: HandlerMetrics): string {
  const m = cache.metrics;
  const id = `node="${cache.id}"`;
  const lines = [
    `resolver_queries_total{${id}} ${handler.queries}`,
    `resolver_dropped_total{${id}} ${handler.dropped}`,
    ...handler.rcodes.flatMap((n, rc) =>
      n ? [`resolver_responses_total{${id},rcode="${rc}"} ${n}`] : [],
    ),
    `resolver_cache_hits_total{${id}} ${m.hits}`,
    `resolver_cache_misses_total{${id}} ${m.misses}`,
    `resolver_stale_answers_total{${id}} ${m.staleServed}`,
    `resolver_prefetches_total{${id}} ${m.prefetches}`,
    `resolver_coalesced_total{${id}} ${m.coalesced}`,
    `resolver_upstream_queries_total{${id}} ${m.upstreamQueries}`,
    `resolver_upstream_failures_total{${id}} ${m.upstreamFailures}`,
    `resolver_upstream_stale_total{${id}} ${m.upstreamStale}`,
    `resolver_cache_evictions_total{${id}} ${m.evictions}`,
    `resolver_purged_total{${id}} ${m.purged}`,
    `resolver_floor_refusals_total{${id}} ${m.floorRefusals}`,
    `resolver_pushed_total{${id}} ${m.pushed}`,
    `resolver_cache_entries{${id}} ${cache.entries}`,
    `resolver_cache_bytes{${id}} ${cache.bytes}`,
  ];
  return `${lines.join("\n")}\n`;
}
