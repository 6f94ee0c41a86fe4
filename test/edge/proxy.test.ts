/**
 * The edge as a general RFC 9111 reverse proxy, on the virtual clock with a
 * scripted parent: what a fill forwards, what is stored and replayed,
 * CDN-Cache-Control, heuristic freshness, Authorization, invalidation,
 * conditionals and ranges answered from the cache.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { VirtualClock } from "../../core/clock.ts";
import type { Edge } from "../../edge/cache.ts";
import { targetedCacheControl } from "../../edge/fields.ts";
import { parseHttpDate } from "../../edge/http-date.ts";
import { byteRange, ifRangeHolds } from "../../edge/range.ts";
import { cacheStatusOf } from "../support/cache-status.ts";
import { makeEdge, START } from "./support.ts";

let clock: VirtualClock;
let edge: Edge;
/** What the parent received, in order. */
let seen: Request[];
/** The parent's next answers, by path; the last one repeats. */
let script: Map<string, (() => Response)[]>;

function answer(path: string, ...responses: (() => Response)[]) {
  script.set(path, responses);
}

function ok(headers: Record<string, string>, body = "body", status = 200) {
  return () =>
    new Response(status === 204 || status === 304 ? null : body, {
      status,
      headers: { date: new Date(clock.now()).toUTCString(), ...headers },
    });
}

beforeEach(() => {
  clock = new VirtualClock(START);
  seen = [];
  script = new Map();
  edge = makeEdge(clock, async (req) => {
    seen.push(req);
    const path = new URL(req.url).pathname;
    const queue = script.get(path);
    if (!queue || queue.length === 0) return new Response("no script", { status: 599 });
    return (queue.length > 1 ? queue.shift()! : queue[0]!)();
  });
});

function get(path: string, headers: HeadersInit = {}, method = "GET") {
  return new Request(`http://edge.test${path}`, { method, headers });
}

async function status(res: Promise<Response>) {
  const r = await res;
  await r.arrayBuffer();
  return cacheStatusOf(r, "edge-1") ?? "";
}

describe("what a fill forwards (RFC 9110 §7.6.1)", () => {
  it("passes end-to-end request fields and drops hop-by-hop ones, those Connection names too", async () => {
    answer("/a", ok({ "cache-control": "max-age=60" }));
    await edge.handle(
      get("/a", {
        "x-request-id": "42",
        cookie: "a=b",
        authorization: "Bearer t",
        connection: "close, x-hop",
        "x-hop": "1",
        "keep-alive": "timeout=5",
        te: "trailers",
        "if-none-match": '"client"',
        range: "bytes=0-1",
        "accept-encoding": "gzip, zstd",
      }),
    );
    const h = seen[0]!.headers;
    expect(h.get("x-request-id")).toBe("42");
    expect(h.get("cookie")).toBe("a=b");
    expect(h.get("authorization")).toBe("Bearer t");
    expect(h.get("accept-encoding")).toBe("gzip");
    for (const name of ["connection", "x-hop", "keep-alive", "te", "if-none-match", "range"]) {
      expect(h.has(name), name).toBe(false);
    }
  });
});

describe("what is stored and replayed (RFC 9111 §3.1)", () => {
  it("never stores or replays fields the parent's Connection names", async () => {
    answer("/c", ok({ "cache-control": "max-age=60", connection: "a, b", a: "1", b: "2", c: "3" }));
    await edge.handle(get("/c"));
    const hit = await edge.handle(get("/c"));
    expect(cacheStatusOf(hit, "edge-1")).toMatch(/hit/);
    expect(hit.headers.get("c")).toBe("3");
    expect(hit.headers.has("a") || hit.headers.has("b") || hit.headers.has("connection")).toBe(
      false,
    );
  });

  it("keeps Content-Encoding while the body is still encoded, drops it once fetch decoded it", async () => {
    answer("/enc", ok({ "cache-control": "max-age=60", "content-encoding": "x-custom" }));
    answer("/gz", ok({ "cache-control": "max-age=60", "content-encoding": "gzip" }));
    await edge.handle(get("/enc"));
    expect((await edge.handle(get("/enc"))).headers.get("content-encoding")).toBe("x-custom");
    await edge.handle(get("/gz"));
    expect((await edge.handle(get("/gz"))).headers.has("content-encoding")).toBe(false);
  });

  it("does not reuse a response whose Age is invalid (RFC 9111 §5.1), nor one whose Expires is (§5.3)", async () => {
    answer("/age", ok({ "cache-control": "max-age=3600", age: "7200.0" }));
    answer("/exp", ok({ expires: "Mon, 1 Jan 2035 1:01:01 UTC" }));
    for (const path of ["/age", "/exp"]) {
      await edge.handle(get(path));
      expect(await status(edge.handle(get(path))), path).toMatch(/fwd=stale/);
    }
    answer("/list", ok({ "cache-control": "max-age=3600", age: "0, 7200" }));
    await edge.handle(get("/list"));
    expect(await status(edge.handle(get("/list")))).toMatch(/hit/);
  });

  it("a 304 updates the metadata, not the fields describing the stored bytes (§3.2)", async () => {
    answer(
      "/u",
      ok({
        "cache-control": "max-age=1",
        etag: '"e"',
        "content-type": "text/plain",
        "content-md5": "A",
      }),
      ok(
        {
          "cache-control": "max-age=60",
          etag: '"e"',
          "content-type": "text/html",
          "content-md5": "B",
        },
        "",
        304,
      ),
    );
    await edge.handle(get("/u"));
    await clock.advance(2_000);
    const res = await edge.handle(get("/u"));
    expect(await res.text()).toBe("body");
    expect(res.headers.get("content-type")).toBe("text/html");
    expect(res.headers.get("content-md5")).toBe("A");
    expect(seen[1]!.headers.get("if-none-match")).toBe('"e"');
  });

  it("a 304 naming another strong validator updates nothing (§4.3.4)", async () => {
    answer(
      "/v",
      ok({ "cache-control": "max-age=1", etag: '"a"', x: "1" }),
      ok({ "cache-control": "max-age=60", etag: '"b"', x: "2" }, "", 304),
    );
    await edge.handle(get("/v"));
    await clock.advance(2_000);
    const res = await edge.handle(get("/v"));
    expect(res.headers.get("x")).toBe("1");
    expect(cacheStatusOf(res, "edge-1")).toMatch(/detail=validator-mismatch/);
  });

  it("validates with Last-Modified when that is the only validator", async () => {
    const lm = "Wed, 01 Jan 2025 00:00:00 GMT";
    answer("/lm", ok({ "cache-control": "max-age=1", "last-modified": lm }), ok({}, "", 304));
    await edge.handle(get("/lm"));
    await clock.advance(2_000);
    const res = await edge.handle(get("/lm"));
    expect(await res.text()).toBe("body");
    expect(seen[1]!.headers.get("if-modified-since")).toBe(lm);
    expect(cacheStatusOf(res, "edge-1")).toMatch(/fwd=stale; fwd-status=304/);
  });
});

describe("HTTP-date (RFC 9110 §5.6.7)", () => {
  it("takes the three formats and nothing else", () => {
    const t = Date.UTC(1994, 10, 6, 8, 49, 37);
    expect(parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT")).toBe(t);
    expect(parseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT", START)).toBe(t);
    expect(parseHttpDate("Sun Nov  6 08:49:37 1994")).toBe(t);
    for (const bad of [
      "Sun, 06 Nov 1994 8:49:37 GMT",
      "Sun, 06-Nov-1994 08:49:37 GMT",
      "Sun, 06 Nov 1994 08:49:37 UTC",
      "Sun 06 Nov 1994 08:49:37 GMT",
      "Sun, 31 Feb 1994 08:49:37 GMT",
      "0",
    ]) {
      expect(parseHttpDate(bad), bad).toBeUndefined();
    }
  });

  it("parses an IMF-fixdate the same every time it comes again, valid or not (memoised)", () => {
    const t = Date.UTC(1994, 10, 6, 8, 49, 37);
    for (let i = 0; i < 3; i++) {
      expect(parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT")).toBe(t);
      // Shaped as one but naming no instant (31 February, 25 o'clock): invalid each time.
      expect(parseHttpDate("Tue, 31 Feb 1994 08:49:37 GMT")).toBeUndefined();
      expect(parseHttpDate("Sun, 06 Nov 1994 25:49:37 GMT")).toBeUndefined();
      // Surrounding whitespace is trimmed before the memo is asked.
      expect(parseHttpDate("  Sun, 06 Nov 1994 08:49:37 GMT ")).toBe(t);
    }
    // The obsolete forms still parse after the memo said "no IMF-fixdate".
    expect(parseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT", START)).toBe(t);
    expect(parseHttpDate("Sun Nov  6 08:49:37 1994")).toBe(t);
  });
});

describe("which responses are stored", () => {
  it("CDN-Cache-Control (RFC 9213) wins over Cache-Control and Expires", async () => {
    answer("/t1", ok({ "cdn-cache-control": "max-age=60", "cache-control": "no-store" }));
    answer("/t2", ok({ "cdn-cache-control": "no-store", "cache-control": "max-age=60" }));
    answer("/t3", ok({ "cdn-cache-control": "private", "cache-control": "max-age=60" }));
    answer("/t4", ok({ "cdn-cache-control": "no-cache", "cache-control": "max-age=60" }));
    answer(
      "/t5",
      ok({ "cdn-cache-control": "max-age=0", expires: "Thu, 01 Jan 2099 00:00:00 GMT" }),
    );
    // An invalid field (not an RFC 8941 dictionary) is ignored: Cache-Control applies.
    answer("/t6", ok({ "cdn-cache-control": "max-age=6 0", "cache-control": "max-age=60" }));
    const second = async (path: string) => {
      await (await edge.handle(get(path))).arrayBuffer();
      return status(edge.handle(get(path)));
    };
    expect(await second("/t1")).toMatch(/hit/);
    expect(await second("/t2")).toMatch(/fwd=uri-miss/);
    expect(await second("/t3")).toMatch(/fwd=uri-miss/);
    expect(await second("/t4")).toMatch(/fwd=stale/);
    expect(await second("/t5")).toMatch(/fwd=stale/);
    expect(await second("/t6")).toMatch(/hit/);
    expect(targetedCacheControl("max-age=60, stale-if-error=5")).toEqual({
      maxAge: 60,
      staleIfError: 5,
    });
    expect(targetedCacheControl("Max-Age=60")).toBeUndefined();
  });

  it("heuristic freshness: 10 % of the time since Last-Modified, for heuristically cacheable statuses or public (RFC 9111 §4.2.2)", async () => {
    const lm = new Date(START - 1_000_000).toUTCString();
    answer("/h200", ok({ "last-modified": lm }));
    answer("/h201", ok({ "last-modified": lm }, "x", 201));
    answer("/h599", ok({ "last-modified": lm, "cache-control": "public" }, "x", 599));
    await edge.handle(get("/h200"));
    await edge.handle(get("/h201"));
    await edge.handle(get("/h599"));
    await clock.advance(99_000);
    expect(await status(edge.handle(get("/h200")))).toMatch(/hit; ttl=1;/);
    expect(await status(edge.handle(get("/h201")))).toMatch(/fwd=uri-miss/);
    expect(await status(edge.handle(get("/h599")))).toMatch(/hit/);
    await clock.advance(2_000);
    expect(await status(edge.handle(get("/h200")))).toMatch(/fwd=stale/);
  });

  it("stores any final status with explicit freshness, a 5xx included; must-understand needs a known status", async () => {
    answer("/500", ok({ "cache-control": "max-age=60" }, "x", 500));
    answer("/mu", ok({ "cache-control": "max-age=60, must-understand, no-store" }, "x", 599));
    answer("/mu200", ok({ "cache-control": "max-age=60, must-understand, no-store" }));
    for (const path of ["/500", "/mu", "/mu200"]) await edge.handle(get(path));
    expect(await status(edge.handle(get("/500")))).toMatch(/hit/);
    expect(await status(edge.handle(get("/mu")))).toMatch(/fwd=uri-miss/);
    expect(await status(edge.handle(get("/mu200")))).toMatch(/hit/);
  });

  it("an answer to Authorization is reused only when public, s-maxage or must-revalidate (RFC 9111 §3.5)", async () => {
    const auth = { authorization: "Bearer x" };
    answer("/private", ok({ "cache-control": "max-age=60" }));
    answer("/public", ok({ "cache-control": "public, max-age=60" }));
    await edge.handle(get("/private", auth));
    await edge.handle(get("/public", auth));
    expect(await status(edge.handle(get("/private", auth)))).toMatch(/fwd=uri-miss/);
    expect(await status(edge.handle(get("/private")))).toMatch(/fwd=uri-miss/);
    expect(await status(edge.handle(get("/public", auth)))).toMatch(/hit/);
    // Stored from an anonymous request, the entry still does not answer an authenticated one.
    expect(await status(edge.handle(get("/private", auth)))).toMatch(/detail=authorization/);
    expect(edge.metrics()).toMatchObject({ revalidations: 0, hits: 1 });
  });

  it("concurrent fills that differ on a Vary'd field do not share the answer (RFC 9111 §4.1)", async () => {
    let n = 0;
    answer("/vary", () => {
      n++;
      return new Response(`v${n}`, { headers: { "cache-control": "max-age=60", vary: "foo" } });
    });
    const [a, b] = await Promise.all([
      edge.handle(get("/vary", { foo: "1" })),
      edge.handle(get("/vary", { foo: "2" })),
    ]);
    expect(await a.text()).toBe("v1");
    expect(await b.text()).toBe("v2");
    expect(seen.map((r) => r.headers.get("foo"))).toEqual(["1", "2"]);
  });
});

describe("invalidation by unsafe methods (RFC 9111 §4.4)", () => {
  it("drops the target, Location and Content-Location of the same origin on success only", async () => {
    for (const p of ["/t", "/loc", "/cl", "/other"])
      answer(p, ok({ "cache-control": "max-age=60" }));
    for (const p of ["/t", "/loc", "/cl", "/other"]) await edge.handle(get(p));
    script.set("/t", [
      ok({ location: "/loc", "content-location": "http://elsewhere.test/other" }, "", 500),
    ]);
    await (await edge.handle(get("/t", {}, "POST"))).arrayBuffer();
    expect(await status(edge.handle(get("/t")))).toMatch(/hit/);
    script.set("/t", [
      ok({ location: "loc", "content-location": "http://parent.test/cl" }, "", 201),
      ok({ "cache-control": "max-age=60" }),
    ]);
    await (await edge.handle(get("/t", {}, "PUT"))).arrayBuffer();
    expect(await status(edge.handle(get("/t")))).toMatch(/fwd=uri-miss/);
    expect(await status(edge.handle(get("/loc")))).toMatch(/fwd=uri-miss/);
    expect(await status(edge.handle(get("/cl")))).toMatch(/fwd=uri-miss/);
    script.set("/t", [ok({ "content-location": "http://elsewhere.test/other" }, "", 204)]);
    await (await edge.handle(get("/t", {}, "DELETE"))).arrayBuffer();
    expect(await status(edge.handle(get("/other")))).toMatch(/hit/);
  });
});

describe("conditionals and ranges answered from the cache", () => {
  beforeEach(async () => {
    answer(
      "/r",
      ok(
        {
          "cache-control": "max-age=60",
          etag: '"r1"',
          "last-modified": new Date(START - 60_000).toUTCString(),
        },
        "0123456789",
      ),
    );
    await (await edge.handle(get("/r"))).arrayBuffer();
  });

  it("If-Modified-Since (RFC 9110 §13.1.3): 304 when not modified since, 200 otherwise", async () => {
    const before = new Date(START - 120_000).toUTCString();
    expect(
      (await edge.handle(get("/r", { "if-modified-since": new Date(START).toUTCString() }))).status,
    ).toBe(304);
    expect((await edge.handle(get("/r", { "if-modified-since": before }))).status).toBe(200);
    // If-None-Match wins over If-Modified-Since (§13.2.2).
    const both = { "if-none-match": '"other"', "if-modified-since": new Date(START).toUTCString() };
    expect((await edge.handle(get("/r", both))).status).toBe(200);
  });

  it("one byte range as 206, past the end 416, a stale If-Range the whole body", async () => {
    const r = await edge.handle(get("/r", { range: "bytes=2-4" }));
    expect(r.status).toBe(206);
    expect(r.headers.get("content-range")).toBe("bytes 2-4/10");
    expect(await r.text()).toBe("234");
    expect(await (await edge.handle(get("/r", { range: "bytes=-3" }))).text()).toBe("789");
    expect(await (await edge.handle(get("/r", { range: "bytes=7-" }))).text()).toBe("789");
    const past = await edge.handle(get("/r", { range: "bytes=20-" }));
    expect(past.status).toBe(416);
    expect(past.headers.get("content-range")).toBe("bytes */10");
    const stale = await edge.handle(get("/r", { range: "bytes=0-1", "if-range": '"r0"' }));
    expect(stale.status).toBe(200);
    const many = await edge.handle(get("/r", { range: "bytes=0-1, 3-4" }));
    expect(many.status).toBe(200);
    expect(seen).toHaveLength(1);
  });

  it("byteRange and ifRangeHolds", () => {
    expect(byteRange("bytes=0-1", 10)).toEqual({ start: 0, end: 1 });
    expect(byteRange("bytes=5-100", 10)).toEqual({ start: 5, end: 9 });
    expect(byteRange("bytes=-0", 10)).toBe("unsatisfiable");
    expect(byteRange("bytes=4-2", 10)).toBeUndefined();
    expect(byteRange("items=0-1", 10)).toBeUndefined();
    expect(ifRangeHolds('"a"', '"a"', undefined)).toBe(true);
    expect(ifRangeHolds('W/"a"', 'W/"a"', undefined)).toBe(false);
    const lm = "Wed, 01 Jan 2025 00:00:00 GMT";
    expect(ifRangeHolds(lm, undefined, lm)).toBe(true);
  });
});
