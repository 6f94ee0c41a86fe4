import { describe, expect, it } from "vitest";
import { VirtualClock } from "../../core/clock.ts";
import { createEdgeApp, MAX_PURGE_BODY, timingSafeEqual } from "../../edge/app.ts";
import { cacheStatusOf } from "../support/cache-status.ts";
import { FakeParent, makeEdge, START } from "./support.ts";

function app(token?: string) {
  const clock = new VirtualClock(START);
  const parent = new FakeParent(clock);
  const edge = makeEdge(clock, parent.fetch);
  return { app: createEdgeApp(edge, { token }), edge, parent };
}

const purge = (body: string, auth?: string) =>
  new Request("http://edge.test/purge", {
    method: "POST",
    headers: { "content-type": "application/json", ...(auth ? { authorization: auth } : {}) },
    body,
  });

describe("edge app", () => {
  it("refuses purge when no token is configured, saying how to enable it", async () => {
    const res = await app().app.fetch(purge('{"all":true}', "Bearer x"));
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual({
      error: "forbidden",
      reason: "purge is disabled on edge-1: start it with --token",
    });
  });

  it("401 without a bearer token, 403 for a wrong one, as JSON {error, reason}", async () => {
    const { app: a } = app("s3cret-token");
    const none = await a.fetch(purge('{"all":true}'));
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toMatch(/^Bearer/);
    expect(await none.json()).toEqual({
      error: "unauthorized",
      reason: "send Authorization: Bearer <token> (the edge's --token)",
    });
    const wrong = await a.fetch(purge('{"all":true}', "Bearer not-the-token"));
    expect(wrong.status).toBe(403);
    expect(await wrong.json()).toEqual({
      error: "forbidden",
      reason: "wrong token; use the edge's --token",
    });
  });

  it("400 for bad JSON, unknown fields or bad values, as JSON {error, field, reason}", async () => {
    const { app: a } = app("s3cret-token");
    const bad = async (body: string) => {
      const res = await a.fetch(purge(body, "Bearer s3cret-token"));
      expect(res.status).toBe(400);
      return res.json();
    };
    expect(await bad("{not json")).toMatchObject({
      error: "bad purge request",
      field: "body",
      reason: expect.stringMatching(/^the body must be JSON, e\.g\. \{"zone": /),
    });
    expect(await bad('{"all":true,"bogus":1}')).toEqual({
      error: "bad purge request",
      field: "bogus",
      reason: 'unknown field "bogus"; the body takes url, key, zone, all, mode, serial',
    });
    expect(await bad('{"all":true,"mode":"medium"}')).toEqual({
      error: "bad purge request",
      field: "mode",
      reason: 'mode must be "hard" or "soft"',
    });
    expect(await bad('{"zone":"example.test","serial":-1}')).toEqual({
      error: "bad purge request",
      field: "serial",
      reason: "serial must be at least 0",
    });
    expect(await bad('{"mode":"soft"}')).toEqual({
      error: "bad purge request",
      field: "body",
      reason: 'name what to purge: "url", "key", "zone" or "all": true',
    });
    const event = {
      changeId: "c1",
      zone: "example.test",
      serial: 2,
      keys: [],
      mode: "soft",
      ts: 0,
    };
    expect(await bad(JSON.stringify({ event: { ...event, serial: "2" } }))).toEqual({
      error: "bad purge event",
      field: "event.serial",
      reason: "event.serial must be a number",
    });
    expect(await bad(JSON.stringify({ event: { ...event, serial: 2.5 } }))).toMatchObject({
      reason: "event.serial must be an integer",
    });
    expect(
      await bad(
        JSON.stringify({ event: { ...event, rrsets: [{ name: "a", type: "A", data: [] }] } }),
      ),
    ).toEqual({
      error: "bad purge event",
      field: "event.rrsets[0].ttl",
      reason: "event.rrsets[0].ttl must be a number",
    });
  });

  it("soft purge over HTTP marks entries stale; /metrics counts it", async () => {
    const { app: a, parent } = app("s3cret-token");
    await a.fetch(new Request("http://edge.test/resolve?name=www.example.test&type=A"));
    const res = await a.fetch(
      purge('{"key":"www.example.test","mode":"soft"}', "Bearer s3cret-token"),
    );
    expect(await res.json()).toEqual({ id: "edge-1", purged: 1, mode: "soft" });
    const next = await a.fetch(
      new Request("http://edge.test/resolve?name=www.example.test&type=A"),
    );
    expect(cacheStatusOf(next, "edge-1")).toMatch(/fwd=stale; fwd-status=304/);
    expect(parent.calls).toBe(2);
    const metrics = await (await a.fetch(new Request("http://edge.test/metrics"))).json();
    expect(metrics).toMatchObject({ purges: 1, purgedEntries: 1, misses: 1, revalidations: 1 });
  });

  it("413 for a purge body over 64 KiB, by Content-Length or by counting, and only after the token", async () => {
    const { app: a } = app("s3cret-token");
    const big = JSON.stringify({ all: true, pad: "x".repeat(MAX_PURGE_BODY) });
    const declared = await a.fetch(
      new Request("http://edge.test/purge", {
        method: "POST",
        headers: { authorization: "Bearer s3cret-token", "content-length": String(big.length) },
        body: big,
      }),
    );
    expect(declared.status).toBe(413);
    expect((await declared.json()).reason).toBe(
      `edge-1: request bodies are limited to ${MAX_PURGE_BODY} bytes`,
    );
    const bytes = new TextEncoder().encode(big);
    const streamed = new Request("http://edge.test/purge", {
      method: "POST",
      headers: { authorization: "Bearer s3cret-token" },
      body: new ReadableStream({
        start(c) {
          c.enqueue(bytes);
          c.close();
        },
      }),
      duplex: "half",
    } as RequestInit);
    expect(streamed.headers.get("content-length")).toBeNull();
    expect((await a.fetch(streamed)).status).toBe(413);
    expect((await a.fetch(purge(big))).status).toBe(401);
  });

  it("compares tokens by content", async () => {
    expect(await timingSafeEqual("abc", "abc")).toBe(true);
    expect(await timingSafeEqual("abc", "abd")).toBe(false);
    expect(await timingSafeEqual("abc", "abcd")).toBe(false);
  });
});
