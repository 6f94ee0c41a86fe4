/**
 * The admin HTTP endpoint (Hono): purge behind a bearer token
 * (hono/bearer-auth compares in constant time). /healthz and /metrics are
 * open: a scraper needs no write token.
 */
import { Hono } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import { issueReason } from "../core/issue.ts";
import type { FabricMetrics, MetricsRegistry } from "../core/metrics.ts";
import { normaliseName } from "../core/names.ts";
import type { ResolverCache } from "./cache.ts";
import type { ResolverEntryView } from "./inspect.ts";

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

export interface AdminOptions {
  registry: MetricsRegistry;
  fabric: FabricMetrics;
  /** GET /cache: the entries for an owner name (resolver/inspect.ts). */
  inspect: (name: string) => ResolverEntryView[];
}

export function adminApp(cache: ResolverCache, token: string, metrics: AdminOptions): Hono {
  const app = new Hono();
  const deny = (reason: string) => ({ message: { error: "unauthorized", reason } });
  app.notFound((c) =>
    c.json<ErrorBody>(
      {
        error: "not found",
        reason:
          "the admin endpoint serves POST /purge, GET /cache?name=, GET /metrics, GET /healthz",
      },
      404,
    ),
  );
  app.get("/healthz", (c) => c.json({ ok: true, id: cache.id }));
  app.get("/metrics", async (c) =>
    c.body(await metrics.registry.render(), 200, { "content-type": metrics.registry.contentType }),
  );
  app.use(
    "*",
    bearerAuth({
      token,
      noAuthenticationHeader: deny("send Authorization: Bearer <token> (the resolver's --token)"),
      invalidAuthenticationHeader: deny("the Authorization header must be: Bearer <token>"),
      invalidToken: deny("wrong token; use the resolver's --token"),
    }),
  );
  app.get("/cache", (c) => {
    const parsed = name.safeParse(c.req.query("name"));
    if (!parsed.success) {
      const reason =
        c.req.query("name") === undefined
          ? "give ?name=<owner name>"
          : parsed.error.issues[0]!.message;
      return c.json<ErrorBody>({ error: "bad cache query", field: "name", reason }, 400);
    }
    return c.json({
      node: cache.id,
      query: { name: parsed.data },
      entries: metrics.inspect(parsed.data),
    });
  });
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
    metrics.fabric.purged(mode);
    return c.json({ purged: cache.purge(target, mode), mode });
  });
  return app;
}
