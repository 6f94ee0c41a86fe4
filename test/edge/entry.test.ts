/**
 * edge/entry.ts: a 304 freshens the stored response (RFC 9111 §4.3.4): its
 * fields replace the stored ones of the same name where they stand, the
 * fields that describe the stored bytes are kept, and the entry's age
 * restarts from the 304. edge/fields.ts: what a fill forwards.
 */
import { describe, expect, it } from "vitest";
import { entryFromResponse, freshen } from "../../edge/entry.ts";
import { fillRequestHeaders } from "../../edge/fields.ts";

const DATE = "Mon, 30 Nov 2026 12:00:00 GMT";
const LATER = "Mon, 30 Nov 2026 12:05:00 GMT";

function stored() {
  const response = new Response("body", {
    headers: [
      ["cache-control", "max-age=60"],
      ["content-type", "application/dns-message"],
      ["date", DATE],
      ["etag", '"7"'],
      ["set-cookie", "a=1"],
      ["set-cookie", "b=2"],
    ],
  });
  const at = Date.parse(DATE);
  return entryFromResponse("/k", new Headers(), {
    requestTime: at,
    responseTime: at,
    response,
    body: new Uint8Array(4),
  });
}

describe("freshen", () => {
  it("replaces stored fields in place, appends new ones, keeps body fields, restarts the age", () => {
    const prior = stored();
    const notModified = new Response(null, {
      status: 304,
      headers: {
        "cache-control": "max-age=300",
        "content-type": "text/plain",
        "content-encoding": "gzip",
        date: LATER,
        age: "10",
        "x-serial": "9",
      },
    });
    const at = Date.parse(LATER);
    const e = freshen(prior, {
      requestTime: at,
      responseTime: at,
      response: notModified,
      body: new Uint8Array(),
    });
    expect(e.headers).toEqual([
      ["cache-control", "max-age=300"],
      ["content-type", "text/plain"],
      ["date", LATER],
      ["etag", '"7"'],
      // A name stored twice is merged once, with its last value, as before.
      ["set-cookie", "b=2"],
      ["x-serial", "9"],
    ]);
    expect(e.body).toBe(prior.body);
    expect(e.freshnessLifetime).toBe(300);
    expect(e.correctedInitialAge).toBe(10);
    expect(e.serial).toBe(9);
    // The stored entry is left as it was.
    expect(prior.headers.map(([k]) => k)).toEqual([
      "cache-control",
      "content-type",
      "date",
      "etag",
      "set-cookie",
      "set-cookie",
    ]);
    expect(prior.freshnessLifetime).toBe(60);
  });
});

describe("fillRequestHeaders", () => {
  it("forwards the client's field list as it is, less hop-by-hop, Connection-named and conditional fields", () => {
    const client = new Headers([
      ["accept", "application/dns-message"],
      ["cookie", "a=1"],
      ["cookie", "b=2"],
      ["connection", "close, x-hop"],
      ["x-hop", "1"],
      ["keep-alive", "timeout=5"],
      ["if-none-match", '"3"'],
      ["x-min-serial", "9"],
      ["x-end", "kept"],
    ]);
    const out = fillRequestHeaders(client);
    const copy = [...new Headers(client)].filter(
      ([k]) => !["connection", "x-hop", "keep-alive", "if-none-match", "x-min-serial"].includes(k),
    );
    expect([...out]).toEqual(copy);
    expect(out.get("cookie")).toBe(new Headers(client).get("cookie"));
  });

  it("fills for a request whose Connection names something that is no field name", () => {
    const out = fillRequestHeaders(new Headers({ connection: "close, x y", accept: "*/*" }));
    expect([...out]).toEqual([["accept", "*/*"]]);
  });
});
