/**
 * The edge's HTTP surface, a thin Hono app around the cache engine:
 * GET /metrics, POST /purge (bearer token), and every other request
 * through the cache. Web-standard APIs only: the same app runs in Node and workerd.
 */
import { type Context, Hono } from "hono";
import * as z from "zod/mini";
import { miniIssueReason } from "../core/issue.ts";
import type { MetricsRegistry } from "../core/metrics.ts";
import type { PurgeEvent } from "../core/purge.ts";
import { readBody, tooLarge } from "./body.ts";
import type { Edge, HandleOptions } from "./cache.ts";
import { type EntryView, type InspectQuery, inspectQuery } from "./inspect.ts";

/**
 * POST /purge bodies are small: a target or a relayed event. 64 KiB holds
 * a push event of several hundred RRsets; a larger one is refused, and the
 * relay's retries end in a resync (a zone-wide invalidate), so it is late,
 * never lost.
 */
export const MAX_PURGE_BODY = 64 * 1024;

const target = z.optional(z.string().check(z.minLength(1)));

const purgeFields = {
  url: target,
  key: target,
  zone: target,
  all: z.optional(z.boolean()),
  mode: z._default(z.enum(["hard", "soft"]), "hard"),
  serial: z.optional(z.int().check(z.minimum(0), z.maximum(2 ** 32 - 1))),
};

/** POST /purge body; zod/mini keeps the Worker bundle small. */
const purgeBody = z.strictObject(purgeFields).check(
  z.refine(
    (b) => b.url !== undefined || b.key !== undefined || b.zone !== undefined || b.all === true,
    {
      message: 'name what to purge: "url", "key", "zone" or "all": true',
    },
  ),
);

/**
 * A purge event as the origin's relay delivers it to an edge that holds no
 * bus connection (a Worker): the same event the bus carries.
 */
const eventBody = z.strictObject({
  event: z.object({
    changeId: z.string().check(z.minLength(1)),
    zone: z.string(),
    serial: z.int().check(z.minimum(0), z.maximum(2 ** 32 - 1)),
    keys: z.array(z.string()),
    mode: z.enum(["ttl", "invalidate", "soft", "push"]),
    ts: z.number(),
    rrsets: z.optional(
      z.array(
        z.object({
          name: z.string(),
          type: z.enum(["A", "AAAA", "CNAME", "MX", "TXT", "NS", "SOA", "SRV", "CAA", "PTR"]),
          ttl: z.int().check(z.minimum(0)),
          data: z.array(z.unknown()),
        }),
      ),
    ),
    explicit: z.optional(z.boolean()),
  }),
});

export interface EdgeAppOptions {
  /** Bearer token for POST /purge; without one, purging over HTTP is refused. */
  token?: string;
  /**
   * The runtime hands each request an ExecutionContext (Workers): background
   * refreshes go to its waitUntil. Node has none, and asking Hono for it throws,
   * which on the hit path costs a tenth of the CPU: so say it once here.
   */
  executionContext?: boolean;
  /** GET /cache (token): what the edge holds for a name or key; absent, no such route. */
  inspect?: (q: InspectQuery) => EntryView[];
  /** GET /metrics renders it (Prometheus text, no token); without one, only the JSON form. */
  metrics?: MetricsRegistry;
}

/** Every error body: what went wrong and what to do, naming the field at fault (as the origin's). */
interface ErrorBody {
  error: string;
  field?: string;
  reason: string;
}

export function createEdgeApp(edge: Edge, opts: EdgeAppOptions = {}): Hono {
  const app = new Hono();

  // Prometheus text for scrapers; the engine's counters as JSON on Accept: application/json.
  app.get("/metrics", async (c) => {
    const m = opts.metrics;
    if (!m || c.req.header("accept")?.startsWith("application/json")) return c.json(edge.metrics());
    return c.body(await m.render(), 200, { "content-type": m.contentType });
  });

  const inspect = opts.inspect;
  if (inspect) {
    app.get("/cache", async (c) => {
      const denied = await authorize(c, edge.id, opts.token);
      if (denied) return denied;
      const q = inspectQuery(new URL(c.req.url).searchParams);
      if ("reason" in q) return c.json<ErrorBody>({ error: "bad cache query", ...q }, 400);
      return c.json({ node: edge.id, query: q, entries: inspect(q) });
    });
  }

  app.post("/purge", async (c) => {
    const denied = await authorize(c, edge.id, opts.token);
    if (denied) return denied;
    const body = await readBody(c.req.raw, MAX_PURGE_BODY);
    if (body === undefined) return tooLarge(edge.id, MAX_PURGE_BODY);
    let raw: unknown;
    try {
      raw = JSON.parse(new TextDecoder().decode(body));
    } catch (err) {
      const reason = `the body must be JSON, e.g. {"zone": "example.test", "mode": "soft"} (${err instanceof Error ? err.message : String(err)})`;
      return c.json<ErrorBody>({ error: "bad purge request", field: "body", reason }, 400);
    }
    if (raw !== null && typeof raw === "object" && "event" in raw) {
      const relayed = eventBody.safeParse(raw);
      if (!relayed.success) {
        const at = miniIssueReason(relayed.error.issues[0]!, ["event"]);
        return c.json<ErrorBody>({ error: "bad purge event", ...at }, 400);
      }
      // Only the origin holds the token, and it built the rdata from validated records.
      edge.applyPurge(relayed.data.event as PurgeEvent);
      return c.json({ id: edge.id, applied: relayed.data.event.changeId });
    }
    const parsed = purgeBody.safeParse(raw);
    if (!parsed.success) {
      const at = miniIssueReason(parsed.error.issues[0]!, Object.keys(purgeFields));
      return c.json<ErrorBody>({ error: "bad purge request", ...at }, 400);
    }
    const purged = edge.purge(parsed.data);
    return c.json({ id: edge.id, purged, mode: parsed.data.mode });
  });

  app.all("*", (c) =>
    edge.handle(c.req.raw, opts.executionContext ? backgroundOf(c) : NO_BACKGROUND),
  );

  return app;
}

async function authorize(
  c: Context,
  id: string,
  token: string | undefined,
): Promise<Response | undefined> {
  if (token === undefined) {
    const reason = `purge is disabled on ${id}: start it with --token`;
    return c.json<ErrorBody>({ error: "forbidden", reason }, 403);
  }
  const m = /^Bearer (.+)$/i.exec(c.req.header("authorization") ?? "");
  if (!m) {
    c.header("www-authenticate", 'Bearer realm="edge purge"');
    const reason = "send Authorization: Bearer <token> (the edge's --token)";
    return c.json<ErrorBody>({ error: "unauthorized", reason }, 401);
  }
  if (!(await timingSafeEqual(m[1]!, token))) {
    return c.json<ErrorBody>(
      { error: "forbidden", reason: "wrong token; use the edge's --token" },
      403,
    );
  }
  return undefined;
}

/**
 * Compares two secrets in time independent of where they differ: both are
 * hashed to 32 bytes first, so neither length nor content leaks.
 */
export async function timingSafeEqual(a: string, b: string): Promise<boolean> {
  const enc = new TextEncoder();
  const [x, y] = await Promise.all([
    crypto.subtle.digest("SHA-256", enc.encode(a)),
    crypto.subtle.digest("SHA-256", enc.encode(b)),
  ]);
  const u = new Uint8Array(x);
  const v = new Uint8Array(y);
  let diff = 0;
  for (let i = 0; i < u.length; i++) diff |= u[i]! ^ v[i]!;
  return diff === 0;
}

/** Workers keep background refreshes alive with waitUntil; Node needs nothing. */
const NO_BACKGROUND: HandleOptions = {};

function backgroundOf(c: Context): HandleOptions {
  let ctx: Context["executionCtx"];
  try {
    ctx = c.executionCtx;
  } catch {
    // Hono throws when the runtime passed no ExecutionContext (a test calling app.fetch).
    return NO_BACKGROUND;
  }
  return { waitUntil: (work) => ctx.waitUntil(work) };
}
