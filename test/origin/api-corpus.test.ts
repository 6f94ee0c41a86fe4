/**
 * A corpus of bad requests against the origin's write API: malformed JSON,
 * wrong types, invalid names, bad rdata, oversized bodies, wrong content
 * types, bad preconditions and query values. Each answers a 4xx whose JSON
 * names the problem ({error, field?, reason}), and nothing is written: the
 * zone's serial, its records and the zone list are as before.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningOrigin, startOrigin } from "../../origin/server.ts";

const TOKEN = "api-corpus-token-1234";
let dir: string;
let origin: RunningOrigin;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "propagate-api-corpus-"));
  origin = await startOrigin(
    {
      http: { host: "127.0.0.1", port: 0 },
      dns: { host: "127.0.0.1", port: 0 },
      dataDir: dir,
      token: TOKEN,
      sample: true,
      maxBodyBytes: 4096,
    },
    { log: () => {} },
  );
});
afterAll(async () => {
  await origin?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Bad {
  what: string;
  method: string;
  path: string;
  body?: string;
  type?: string;
  headers?: Record<string, string>;
  status: number;
  field?: string;
  reason: RegExp;
}

const Z = "/v1/zones/example.test";
const WWW = `${Z}/rrsets/www/A`;
const PATCH = `${Z}/rrsets`;
const json = (v: unknown) => JSON.stringify(v);
const a = (address: string) => json({ ttl: 60, data: [address] });
const TTL_RANGE = /an integer from 0 to 2147483647 \(RFC 2181 §8\)/;

// biome-ignore format: one case a line reads as a table
const CORPUS: Bad[] = [
  // Malformed JSON
  { what: "truncated JSON", method: "PUT", path: WWW, body: '{"data":["192.0.2.1"', status: 400, field: "body", reason: /not valid JSON/ },
  { what: "not JSON at all", method: "PATCH", path: PATCH, body: "rrsets=1", status: 400, field: "body", reason: /not valid JSON/ },
  { what: "an empty body", method: "PUT", path: WWW, body: "", status: 400, field: "body", reason: /not valid JSON/ },
  { what: "a JSON array for an object", method: "PUT", path: WWW, body: "[]", status: 400, field: "body", reason: /expected object, received array/ },
  // Wrong types and ranges
  { what: "ttl as a string", method: "PUT", path: WWW, body: json({ ttl: "60", data: ["192.0.2.1"] }), status: 400, field: "ttl", reason: /expected number, received string/ },
  { what: "data as a string", method: "PUT", path: WWW, body: json({ ttl: 60, data: "192.0.2.1" }), status: 400, field: "data", reason: /expected array, received string/ },
  { what: "a negative ttl", method: "PUT", path: WWW, body: json({ ttl: -1, data: ["192.0.2.1"] }), status: 400, field: "ttl", reason: TTL_RANGE },
  { what: "a ttl past 2^31-1", method: "PUT", path: WWW, body: json({ ttl: 2 ** 31, data: ["192.0.2.1"] }), status: 400, field: "ttl", reason: TTL_RANGE },
  { what: "rrsets not an array", method: "PATCH", path: PATCH, body: json({ rrsets: {} }), status: 400, field: "rrsets", reason: /expected array, received object/ },
  { what: "an empty PATCH", method: "PATCH", path: PATCH, body: json({ rrsets: [] }), status: 400, field: "rrsets", reason: />=1 items/ },
  { what: "a bad changetype", method: "PATCH", path: PATCH, body: json({ rrsets: [{ name: "www", type: "A", changetype: "UPSERT", data: ["192.0.2.1"] }] }), status: 400, field: "rrsets[0].changetype", reason: /changetype must be "REPLACE" or "DELETE"/ },
  // Unknown fields: a typo must not write
  { what: "an unknown field in an RRset PUT", method: "PUT", path: WWW, body: json({ tll: 5, data: ["192.0.2.1"] }), status: 400, field: "body", reason: /tll/ },
  { what: "an unknown field in a PATCH entry", method: "PATCH", path: PATCH, body: json({ rrsets: [{ name: "www", type: "A", changetype: "REPLACE", data: ["192.0.2.1"], tll: 5 }] }), status: 400, field: "rrsets[0]", reason: /tll/ },
  // Invalid names and types
  { what: "a label over 63 octets", method: "PUT", path: `${Z}/rrsets/${"a".repeat(64)}/A`, body: a("192.0.2.1"), status: 400, field: "name", reason: /longer than 63 octets/ },
  { what: "a name outside the zone", method: "PUT", path: `${Z}/rrsets/www.other.test./A`, body: a("192.0.2.1"), status: 400, field: "name", reason: /is outside zone "example\.test"/ },
  { what: "an empty label", method: "PUT", path: `${Z}/rrsets/a..b/A`, body: a("192.0.2.1"), status: 400, field: "name", reason: /has an empty label/ },
  { what: "an unknown type", method: "PUT", path: `${Z}/rrsets/www/FOO`, body: json({ ttl: 60, data: ["x"] }), status: 400, field: "type", reason: /unsupported type "FOO"/ },
  { what: "a PATCH entry in another zone", method: "PATCH", path: PATCH, body: json({ rrsets: [{ name: "x.other.test.", type: "A", changetype: "REPLACE", data: ["192.0.2.1"] }] }), status: 400, field: "rrsets[0].name", reason: /is outside zone/ },
  { what: "an invalid zone name", method: "PUT", path: `/v1/zones/${"b".repeat(64)}.test`, body: json({}), status: 400, field: "zone", reason: /longer than 63 octets/ },
  // Bad rdata
  { what: "A with a bad address", method: "PUT", path: WWW, body: a("192.0.2.300"), status: 400, field: "data[0]", reason: /expected an IPv4 address/ },
  { what: "A with an IPv6 address", method: "PUT", path: WWW, body: a("2001:db8::1"), status: 400, field: "data[0]", reason: /expected an IPv4 address/ },
  { what: "AAAA with an IPv4 address", method: "PUT", path: `${Z}/rrsets/www/AAAA`, body: a("192.0.2.1"), status: 400, field: "data[0]", reason: /expected an IPv6 address/ },
  // MX data is {preference, exchange}: a bare name is the wrong shape.
  { what: "MX without a preference", method: "PUT", path: `${Z}/rrsets/@/MX`, body: a("mail.example.test."), status: 400, field: "data[0]", reason: /expected object, received string/ },
  { what: "a CNAME beside other data", method: "PUT", path: `${Z}/rrsets/ns1/CNAME`, body: a("www.example.test."), status: 400, field: "type", reason: /a CNAME cannot coexist with other data/ },
  { what: "an empty data list", method: "PUT", path: WWW, body: json({ ttl: 60, data: [] }), status: 400, field: "data", reason: /at least one record is needed/ },
  // The reason is only "Invalid input": the field is named, the 255-octet limit is not.
  { what: "a TXT string over 255 octets", method: "PUT", path: `${Z}/rrsets/t/TXT`, body: json({ ttl: 60, data: ["x".repeat(256)] }), status: 400, field: "data[0]", reason: /at most 255 octets \(RFC 1035 §3\.3\)/ },
  { what: "a zone created with a bad mode", method: "PUT", path: "/v1/zones/new.test", body: json({ mode: "fast" }), status: 400, field: "mode", reason: /mode must be "ttl", "invalidate", "soft" or "push"/ },
  { what: "a zone created with a bad record", method: "PUT", path: "/v1/zones/new.test", body: json({ rrsets: [{ name: "www", type: "A", data: ["nope"] }] }), status: 400, field: "rrsets[0].data[0]", reason: /expected an IPv4 address/ },
  // Size, media type, preconditions, query values, missing zone
  { what: "a body over the limit", method: "PUT", path: `${Z}/rrsets/t/TXT`, body: json({ ttl: 60, data: Array(40).fill("y".repeat(200)) }), status: 413, reason: /limited to 4096 bytes/ },
  { what: "a form body", method: "PUT", path: WWW, body: "data=192.0.2.1", type: "application/x-www-form-urlencoded", status: 415, reason: /send application\/json/ },
  { what: "If-Match that is not a serial", method: "PUT", path: WWW, body: a("192.0.2.1"), headers: { "if-match": "yesterday" }, status: 400, field: "If-Match", reason: /expected the zone serial/ },
  { what: "If-Match with a stale serial", method: "PUT", path: WWW, body: a("192.0.2.1"), headers: { "if-match": '"999"' }, status: 412, reason: /is at serial 1, not 999/ },
  { what: "since that is not a serial", method: "GET", path: `${Z}/changes?since=-1`, status: 400, field: "since", reason: /expected a zone serial/ },
  { what: "a zone that does not exist", method: "PUT", path: "/v1/zones/nothere.test/rrsets/www/A", body: a("192.0.2.1"), status: 404, reason: /create it with PUT \/v1\/zones\/nothere\.test/ },
];

async function snapshot() {
  const zone = await (await fetch(`${origin.httpUrl}${Z}`)).json();
  const zones = await (await fetch(`${origin.httpUrl}/v1/zones`)).json();
  return { zone, zones };
}

describe("bad requests against the origin's API", () => {
  let before: Awaited<ReturnType<typeof snapshot>>;
  beforeAll(async () => {
    before = await snapshot();
    expect((before.zone as { serial: number }).serial).toBe(1);
  });

  it.each(CORPUS)("$what: $status naming the problem", async (c) => {
    const res = await fetch(`${origin.httpUrl}${c.path}`, {
      method: c.method,
      headers: {
        authorization: `Bearer ${TOKEN}`,
        ...(c.body !== undefined && { "content-type": c.type ?? "application/json" }),
        ...c.headers,
      },
      ...(c.body !== undefined && { body: c.body }),
    });
    const body = (await res.json()) as { error?: string; field?: string; reason?: string };
    expect(res.status, JSON.stringify(body)).toBe(c.status);
    expect(typeof body.error).toBe("string");
    expect(body.reason).toMatch(c.reason);
    if (c.field !== undefined) expect(body.field).toBe(c.field);
  });

  it("wrote nothing: the serial, the records and the zone list are as before", async () => {
    expect(await snapshot()).toEqual(before);
  });
});
