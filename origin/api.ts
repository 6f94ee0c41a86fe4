/**
 * The origin's HTTP write and management API under /v1 (see openapi.json).
 * Routes parse and validate requests (zod) and map store errors to statuses;
 * every rule about zones lives in the store.
 */
import type { IncomingMessage } from "node:http";
import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import { H } from "../core/http.ts";
import { issueReason } from "../core/issue.ts";
import { fqdn } from "../core/names.ts";
import type { PropagationMode } from "../core/purge.ts";
import { type RRset, toRRType } from "../core/records.ts";
import { requireBearer } from "./auth.ts";
import { ZoneFollowed } from "./follow.ts";
import {
  ChangesGone,
  InvalidInput,
  ownerName,
  RRsetNotFound,
  type RRsetOp,
  SerialMismatch,
  type Store,
  StoreUnavailable,
  ZoneExists,
  type ZoneInput,
  ZoneNotFound,
  type ZoneState,
  zoneName,
} from "./store.ts";
import { formatZoneFile, parseZoneFile, ZoneFileError } from "./zonefile.ts";

export interface ApiOptions {
  store: Store;
  token: string;
  /** Each zone's propagation mode, as the change feed reports it. */
  modeOf: (zone: string) => PropagationMode;
  /** Largest request body accepted, in bytes (413 above). */
  maxBodyBytes: number;
  log: (message: string) => void;
  /** The primary a followed zone comes from (follow.ts): writes to it are refused. */
  followedFrom?: (zone: string) => string | undefined;
}

const ZONE_FILE_TYPES = ["text/dns", "text/plain"];
const seconds = z
  .number()
  .int()
  .min(0)
  .max(2 ** 31 - 1);
const rdataList = z.array(z.unknown());

// Strict objects: an unknown field (a typo such as "tll") is a 400 naming it, never
// silently ignored while the write goes through.
const rrsetBody = z.strictObject({
  ttl: z.number().optional(),
  data: rdataList.optional(),
  /** PowerDNS spelling of `data`. */
  records: rdataList.optional(),
  /** PowerDNS sends RRset comments; accepted and not kept. */
  comments: z.array(z.unknown()).optional(),
});

const patchBody = z.strictObject({
  rrsets: z
    .array(
      rrsetBody.extend({
        name: z.string(),
        type: z.string(),
        changetype: z.enum(["REPLACE", "DELETE"], {
          error: () => 'changetype must be "REPLACE" or "DELETE"',
        }),
      }),
    )
    .min(1),
});

const createBody = z.strictObject({
  /** How changes reach caches: ttl, invalidate, soft or push. */
  mode: z
    .enum(["ttl", "invalidate", "soft", "push"], {
      error: () => 'mode must be "ttl", "invalidate", "soft" or "push"',
    })
    .optional(),
  ttl: seconds.optional(),
  staleWhileRevalidate: seconds.optional(),
  staleIfError: seconds.optional(),
  soa: z.record(z.string(), z.unknown()).optional(),
  rrsets: z.array(rrsetBody.extend({ name: z.string(), type: z.string() })).optional(),
});

/** Parses a JSON body against a schema; wrong type 415, bad JSON or shape 400 naming the field. */
async function jsonBody<T>(c: Context, schema: z.ZodType<T>): Promise<T> {
  const type = c.req.header("content-type") ?? "";
  if (!/^application\/json\b/i.test(type)) throw new UnsupportedType(type, ["application/json"]);
  let raw: unknown;
  try {
    raw = await readJson(c);
  } catch (err) {
    throw new InvalidInput("body", `not valid JSON: ${(err as Error).message}`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const { field, reason } = issueReason(parsed.error.issues[0]!);
    throw new InvalidInput(field, reason);
  }
  return parsed.data;
}

/**
 * The JSON body. Under @hono/node-server with a Content-Length (bodyLimit has
 * checked it against the limit and left the body alone), it is read straight
 * from Node's request stream: building the web Request's ReadableStream for a
 * 60-byte body was a tenth of a durable write's CPU (bench/origin-writes.ts
 * profile). Anywhere else (app.request in tests, chunked bodies) through Hono.
 */
async function readJson(c: Context): Promise<unknown> {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  if (!incoming || incoming.readableDidRead || c.req.header("content-length") === undefined)
    return c.req.json();
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    incoming.on("data", (chunk: Buffer) => chunks.push(chunk));
    incoming.once("end", resolve);
    incoming.once("error", reject);
  });
  const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  return JSON.parse(body.toString("utf8"));
}

class UnsupportedType extends Error {
  constructor(given: string, accepted: string[]) {
    super(
      `Content-Type "${given || "(none)"}" is not accepted here; send ${accepted.join(" or ")}`,
    );
  }
}

/** If-Match: a zone serial, optionally quoted as an entity-tag ("*" or absent: no precondition). */
function ifMatch(c: Context): number | undefined {
  const value = c.req.header("if-match")?.trim();
  if (value === undefined || value === "*") return undefined;
  const m = /^(?:W\/)?"?(\d{1,10})"?$/.exec(value);
  if (!m || Number(m[1]) >= 2 ** 32) {
    throw new InvalidInput(
      "If-Match",
      `expected the zone serial, such as 2024010101 or "2024010101", got ${value}`,
    );
  }
  return Number(m[1]);
}

function zoneJson(state: ZoneState) {
  const { zone, config } = state;
  return { zone: zone.name, serial: zone.serial, ...config, rrsets: zone.all().map(asWritten) };
}

/**
 * An RRset in the shape the API takes it: a TXT record of one character-string
 * is that string (`"data":["v"]` reads back as written), one of several is their
 * list. Stored, on the feed and on the bus, TXT stays dns-packet's list of lists.
 */
function asWritten(set: RRset): RRset | (Omit<RRset, "data"> & { data: unknown[] }) {
  if (set.type !== "TXT") return set;
  const data = (set.data as string[][]).map((r) => (r.length === 1 ? r[0]! : r));
  return { ...set, data };
}

function dataOf(body: z.infer<typeof rrsetBody>): unknown[] | undefined {
  return body.data ?? body.records;
}

export function apiRoutes(opts: ApiOptions): Hono {
  const { store } = opts;
  const app = new Hono();
  const tooLarge = (c: Context) =>
    c.json(
      {
        error: "payload too large",
        reason: `request bodies are limited to ${opts.maxBodyBytes} bytes`,
      },
      413,
    );

  const limit = bodyLimit({ maxSize: opts.maxBodyBytes, onError: tooLarge });
  app.use("/v1/*", (c, next) => {
    if (c.req.method === "GET" || c.req.method === "HEAD") return next();
    // A declared length is checked here; hono's bodyLimit would build the web
    // Request's body stream just to look at it (see readJson). Chunked bodies go through it.
    const length = c.req.header("content-length");
    if (length === undefined || c.req.header("transfer-encoding") !== undefined)
      return limit(c, next);
    return Number(length) > opts.maxBodyBytes ? Promise.resolve(tooLarge(c)) : next();
  });
  const auth = requireBearer(opts.token);
  // Zone writes take the write token; the fabric's routes (fabric.ts) take the nodes' too.
  app.on(["PUT", "PATCH", "DELETE", "POST"], ["/v1/zones", "/v1/zones/*"], auth);
  // A followed zone changes only by transfers from its primary: two writers would diverge.
  app.on(["PUT", "PATCH", "DELETE"], ["/v1/zones/:zone", "/v1/zones/:zone/*"], async (c, next) => {
    const zone = zoneName(c.req.param("zone") ?? "");
    const primary = opts.followedFrom?.(zone);
    if (primary !== undefined) throw new ZoneFollowed(zone, primary);
    await next();
  });

  app.get("/v1/zones", (c) =>
    c.json({
      zones: store.zones().map(({ zone }) => ({
        zone: zone.name,
        serial: zone.serial,
        rrsets: zone.size,
        records: zone.all().reduce((n, s) => n + s.data.length, 0),
      })),
    }),
  );

  app.put("/v1/zones/:zone", async (c) => {
    const name = zoneName(c.req.param("zone"));
    const input = await createInput(c, name);
    const result = await store.createZone(input);
    return c.json(result, 201, {
      [H.serial]: String(result.serial),
      Location: `/v1/zones/${name}`,
    });
  });

  app.get("/v1/zones/:zone", (c) => {
    const state = store.getZone(zoneName(c.req.param("zone")));
    const headers = { ETag: `"${state.zone.serial}"`, [H.serial]: String(state.zone.serial) };
    const wantsFile =
      c.req.query("format") === "zone" || /\btext\/dns\b/.test(c.req.header("accept") ?? "");
    if (!wantsFile) return c.json(zoneJson(state), 200, headers);
    return c.body(formatZoneFile(state.zone.name, state.zone.all()), 200, {
      ...headers,
      "Content-Type": "text/dns; charset=utf-8",
    });
  });

  app.delete("/v1/zones/:zone", async (c) =>
    c.json(await store.deleteZone(zoneName(c.req.param("zone")), ifMatch(c))),
  );

  app.get("/v1/zones/:zone/rrsets/:name/:type", (c) => {
    const state = store.getZone(zoneName(c.req.param("zone")));
    const name = ownerName(state.zone.name, c.req.param("name"), "name");
    const type = toRRType(c.req.param("type"));
    if (!type) throw new InvalidInput("type", `unsupported type "${c.req.param("type")}"`);
    const set = state.zone.get(name, type);
    if (!set) throw new RRsetNotFound(name, type);
    return c.json(asWritten(set), 200, { ETag: `"${set.version}"` });
  });

  app.put("/v1/zones/:zone/rrsets/:name/:type", async (c) => {
    const zone = zoneName(c.req.param("zone"));
    const body = await jsonBody(c, rrsetBody);
    const op: RRsetOp = { ...single(c, "REPLACE"), ttl: body.ttl, data: dataOf(body) };
    return c.json(await store.update(zone, [op], ifMatch(c)));
  });

  app.delete("/v1/zones/:zone/rrsets/:name/:type", async (c) => {
    const zone = zoneName(c.req.param("zone"));
    return c.json(
      await store.update(zone, [{ ...single(c, "DELETE"), mustExist: true }], ifMatch(c)),
    );
  });

  app.patch("/v1/zones/:zone/rrsets", async (c) => {
    const zone = zoneName(c.req.param("zone"));
    const body = await jsonBody(c, patchBody);
    const ops = body.rrsets.map((r): RRsetOp => ({ ...r, data: dataOf(r) }));
    return c.json(await store.update(zone, ops, ifMatch(c)));
  });

  app.get("/v1/zones/:zone/changes", (c) => {
    const zone = zoneName(c.req.param("zone"));
    const raw = c.req.query("since") ?? "";
    if (!/^\d{1,10}$/.test(raw) || Number(raw) >= 2 ** 32) {
      throw new InvalidInput("since", `expected a zone serial such as ?since=41, got "${raw}"`);
    }
    const feed = store.changesSince(zone, Number(raw));
    return c.json({ zone, since: Number(raw), mode: opts.modeOf(zone), ...feed }, 200, {
      [H.serial]: String(feed.serial),
    });
  });

  app.onError((err, c) => errorResponse(err, c, opts.log));
  return app;
}

/** The route's RRset coordinates; the name stays as given (relative, absolute or "@"). */
function single(c: Context, changetype: "REPLACE" | "DELETE") {
  return {
    name: c.req.param("name") ?? "",
    type: c.req.param("type") ?? "",
    changetype,
    field: "",
  } as const;
}

async function createInput(c: Context, name: string): Promise<ZoneInput> {
  const type = (c.req.header("content-type") ?? "").toLowerCase();
  if (ZONE_FILE_TYPES.some((t) => type.startsWith(t))) {
    const parsed = parseZoneFile(await c.req.text(), { origin: name });
    // Absolute names, so a record outside the zone is reported as such, not made relative.
    return { name, rrsets: parsed.rrsets.map((s) => ({ ...s, name: fqdn(s.name) })) };
  }
  if (!/^application\/json\b/.test(type)) {
    throw new UnsupportedType(type, ["application/json", ...ZONE_FILE_TYPES]);
  }
  const body = await jsonBody(c, createBody);
  return {
    name,
    config: {
      ...(body.ttl !== undefined && { ttl: body.ttl }),
      ...(body.staleWhileRevalidate !== undefined && {
        staleWhileRevalidate: body.staleWhileRevalidate,
      }),
      ...(body.staleIfError !== undefined && { staleIfError: body.staleIfError }),
      ...(body.mode !== undefined && { mode: body.mode }),
    },
    soa: body.soa,
    rrsets: (body.rrsets ?? []).map((r) => ({ ...r, data: dataOf(r) ?? [] })),
  };
}

function errorResponse(err: Error, c: Context, log: (m: string) => void): Response {
  if (err instanceof InvalidInput) {
    return c.json({ error: "invalid input", field: err.field || "body", reason: err.reason }, 400);
  }
  if (err instanceof ZoneFileError) {
    return c.json(
      { error: "invalid zone file", field: "body", line: err.line, reason: err.message },
      400,
    );
  }
  if (err instanceof UnsupportedType)
    return c.json({ error: "unsupported media type", reason: err.message }, 415);
  if (err instanceof ZoneNotFound) {
    return c.json({ error: "zone not found", zone: err.zone, reason: err.message }, 404);
  }
  if (err instanceof RRsetNotFound)
    return c.json({ error: "rrset not found", reason: err.message }, 404);
  if (err instanceof ZoneExists) {
    return c.json(
      { error: "zone exists", zone: err.zone, serial: err.serial, reason: err.message },
      409,
    );
  }
  if (err instanceof SerialMismatch) {
    // RFC 9110 §13.1.1: an If-Match that does not match is 412 Precondition Failed.
    return c.json(
      { error: "serial mismatch", zone: err.zone, serial: err.serial, reason: err.message },
      412,
      {
        ETag: `"${err.serial}"`,
      },
    );
  }
  if (err instanceof ZoneFollowed) {
    const { zone, primary, message } = err;
    return c.json({ error: "zone followed", zone, primary, reason: message }, 409);
  }
  if (err instanceof ChangesGone) {
    return c.json({ error: "gone", zone: err.zone, serial: err.serial, reason: err.message }, 410);
  }
  if (err instanceof StoreUnavailable)
    return c.json({ error: "unavailable", reason: err.message }, 503);
  log(`internal error on ${c.req.method} ${c.req.path}: ${err.stack ?? err.message}`);
  return c.json(
    { error: "internal error", reason: "the origin failed to handle this request; see its log" },
    500,
  );
}
