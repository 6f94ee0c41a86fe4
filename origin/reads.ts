/**
 * Reads for caches: DoH (RFC 8484, GET ?dns= and POST) and the DNS JSON API
 * (/resolve?name=&type=). Both answer with the authoritative answerer and
 * carry what an HTTP cache needs: Cache-Control with the answer's TTL and the
 * zone's RFC 5861 windows, an ETag naming the data's version, Surrogate-Key
 * for purges, and the zone serial. If-None-Match answers 304 (RFC 9110 §13.1.2).
 */
import dnsPacket from "dns-packet";
import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { Clock } from "../core/clock.ts";
import {
  DNS_JSON,
  DNS_MESSAGE,
  DOH_PATH,
  formatCacheControl,
  H,
  JSON_PATH,
  parseSerialHeader,
  zoneKey,
} from "../core/http.ts";
import { type NameError, normaliseName } from "../core/names.ts";
import { extend } from "../core/objects.ts";
import { serialGt } from "../core/serial.ts";
import { answerQuery, type Resolution, resolveQuestion } from "./authoritative.ts";
import { resolutionToJson, typeFromParam } from "./dns-json.ts";
import type { Store } from "./store.ts";

export interface ReadOptions {
  store: Store;
  clock: Clock;
  /** A followed zone past EXPIRE (origin/follow.ts): SERVFAIL here too, as over DNS. */
  expired?: (zone: string) => boolean;
}

/** RFC 1035 §4.2.2: a DNS message is at most 65535 octets. */
const MAX_MESSAGE = 65_535;
const BASE64URL = /^[A-Za-z0-9_-]+=*$/;
/** RFC 1035 §4.1.1 RCODE 2, "Status" in DNS JSON. */
const SERVFAIL = 2;

/** Caching headers for one answer; REFUSED (not our zone) is never stored. */
export function cacheHeaders(
  store: Store,
  qname: string,
  res: Resolution,
  now: number,
): Record<string, string> {
  const headers: Record<string, string> = { Date: new Date(now).toUTCString() };
  const state = res.zone === undefined ? undefined : store.findState(res.zone);
  if (res.rcode === "REFUSED" || !state) return extend(headers, { "Cache-Control": "no-store" });
  const { staleWhileRevalidate, staleIfError } = state.config;
  // Every owner in the answer is a key, so a change to a CNAME's target purges this answer too.
  const owners = new Set([
    qname,
    ...res.answers.map((a) => a.name.toLowerCase().replace(/\.$/, "")),
  ]);
  return {
    ...headers,
    "Cache-Control": formatCacheControl({ maxAge: res.ttl, staleWhileRevalidate, staleIfError }),
    ETag: `"${res.version ?? res.serial ?? state.zone.serial}"`,
    [H.surrogateKey]: [...owners, zoneKey(state.zone.name)].join(" "),
    [H.serial]: String(res.serial ?? state.zone.serial),
    [H.zone]: state.zone.name,
  };
}

/** RFC 9110 §13.1.2: weak comparison against the list in If-None-Match. */
function notModified(c: Context, etag: string | undefined): boolean {
  const header = c.req.header("if-none-match");
  if (!header || !etag) return false;
  return header.split(",").some((t) => {
    const tag = t.trim().replace(/^W\//, "");
    return tag === "*" || tag === etag;
  });
}

/**
 * A read asking for a serial the zone has not reached (X-Min-Serial) gets
 * 412: the serial a write returns is visible here before the write is
 * answered, so only a made-up serial is ahead, and answering it (or letting
 * caches retry it) would only multiply origin load.
 */
function minSerialAhead(c: Context, store: Store, res: Resolution): Response | undefined {
  const min = parseSerialHeader(c.req.header(H.minSerial));
  const state = res.zone === undefined ? undefined : store.findState(res.zone);
  if (min === undefined || !state || !serialGt(min, state.zone.serial)) return undefined;
  return c.json(
    {
      error: "precondition failed",
      field: H.minSerial,
      reason: `X-Min-Serial ${min} is ahead of zone ${state.zone.name} at serial ${state.zone.serial}; send the serial a write returned`,
    },
    412,
    { "Cache-Control": "no-store" },
  );
}

function badRequest(c: Context, field: string, reason: string): Response {
  return c.json({ error: "bad request", field, reason }, 400);
}

export function readRoutes(opts: ReadOptions): Hono {
  const { store, clock } = opts;
  const app = new Hono();

  const answerDoh = (c: Context, query: Buffer): Response => {
    // RFC 1035 §4.3.5 holds for every transport: a resolver asking by DoH gets
    // SERVFAIL past EXPIRE (not stored: see below), as one asking by UDP does.
    const { wire, resolution } = answerQuery(
      query,
      store,
      opts.expired ? { expired: opts.expired } : {},
    );
    if (wire.length === 0) return badRequest(c, "dns", "not a DNS query message");
    if (!resolution) {
      // FORMERR, NOTIMP and the like: a DNS answer, but not one to cache.
      const rcode = (wire[3] ?? 0) & 0x0f;
      if (rcode === 1) return badRequest(c, "dns", "malformed DNS query (FORMERR)");
      return c.body(new Uint8Array(wire), 200, {
        "Content-Type": DNS_MESSAGE,
        "Cache-Control": "no-store",
      });
    }
    const ahead = minSerialAhead(c, store, resolution);
    if (ahead) return ahead;
    const headers = cacheHeaders(store, questionName(query), resolution, clock.now());
    if (notModified(c, headers.ETag)) return c.body(null, 304, headers);
    return c.body(new Uint8Array(wire), 200, extend(headers, { "Content-Type": DNS_MESSAGE }));
  };

  app.get(DOH_PATH, (c) => {
    const param = c.req.query("dns");
    // RFC 8484 §4.1: base64url without padding (padding tolerated).
    if (!param || !BASE64URL.test(param)) {
      return badRequest(
        c,
        "dns",
        "expected ?dns=<base64url DNS message without padding> (RFC 8484 §4.1)",
      );
    }
    return answerDoh(c, Buffer.from(param.replace(/=+$/, ""), "base64url"));
  });

  app.post(
    DOH_PATH,
    bodyLimit({
      maxSize: MAX_MESSAGE,
      onError: (c) =>
        c.json(
          { error: "payload too large", reason: "a DNS message is at most 65535 octets" },
          413,
        ),
    }),
    async (c) => {
      const type = c.req.header("content-type") ?? "";
      if (type.split(";")[0]!.trim().toLowerCase() !== DNS_MESSAGE) {
        return c.json(
          {
            error: "unsupported media type",
            reason: `send the query as ${DNS_MESSAGE} (RFC 8484 §4.1), not "${type}"`,
          },
          415,
        );
      }
      return answerDoh(c, Buffer.from(await c.req.arrayBuffer()));
    },
  );

  app.get(JSON_PATH, (c) => {
    const rawName = c.req.query("name");
    // An absent name is a malformed request, not a question about the root ("." asks that).
    if (!rawName)
      return badRequest(
        c,
        "name",
        "expected ?name=<domain>, such as ?name=www.example.test&type=A",
      );
    let qname: string;
    try {
      qname = normaliseName(rawName);
    } catch (err) {
      return badRequest(c, "name", (err as NameError).message);
    }
    const rawType = c.req.query("type") ?? "A";
    const qtype = typeFromParam(rawType);
    if (!qtype)
      return badRequest(
        c,
        "type",
        `unsupported type "${rawType}"; use a mnemonic such as AAAA or its number`,
      );
    const cd = ["1", "true"].includes(c.req.query("cd") ?? "");
    const res = resolveQuestion(store, qname, qtype);
    if (res.zone !== undefined && opts.expired?.(res.zone)) {
      // RFC 1035 §4.3.5, as over DNS and DoH: no data, and nothing a cache may keep.
      const empty = resolutionToJson(qname, qtype, { ...res, answers: [], authority: [] }, cd);
      return c.body(JSON.stringify({ ...empty, Status: SERVFAIL }), 200, {
        "Content-Type": DNS_JSON,
        "Cache-Control": "no-store",
      });
    }
    const ahead = minSerialAhead(c, store, res);
    if (ahead) return ahead;
    const headers = cacheHeaders(store, qname, res, clock.now());
    if (notModified(c, headers.ETag)) return c.body(null, 304, headers);
    return c.body(
      JSON.stringify(resolutionToJson(qname, qtype, res, cd)),
      200,
      extend(headers, { "Content-Type": DNS_JSON }),
    );
  });

  return app;
}

/** The query's name for Surrogate-Key (answerQuery has vouched the message decodes). */
function questionName(query: Buffer): string {
  const name = dnsPacket.decode(query).questions?.[0]?.name ?? "";
  return name.toLowerCase().replace(/\.$/, "");
}
