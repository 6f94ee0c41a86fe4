import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import dnsPacket from "dns-packet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCacheControl } from "../../core/http.ts";
import { type RunningOrigin, startOrigin } from "../../origin/server.ts";
import { dig } from "../support/dig.ts";

let origin: RunningOrigin;
const TOKEN = "reads-token-123456";

beforeAll(async () => {
  origin = await startOrigin(
    {
      http: { host: "127.0.0.1", port: 0 },
      dns: { host: "127.0.0.1", port: 0 },
      dataDir: await mkdtemp(join(tmpdir(), "propagate-reads-")),
      token: TOKEN,
      sample: true,
    },
    { log: () => {} },
  );
  // A zone with its own stale windows.
  const res = await fetch(`${origin.httpUrl}/v1/zones/stale.test`, {
    method: "PUT",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({
      staleWhileRevalidate: 5,
      staleIfError: 600,
      rrsets: [{ name: "www", type: "A", ttl: 42, data: ["192.0.2.42"] }],
    }),
  });
  expect(res.status).toBe(201);
});
afterAll(() => origin.close());

function query(name: string, type: string, id = 0): Buffer {
  return dnsPacket.encode({
    type: "query",
    id,
    flags: 0,
    questions: [{ name, type: type as "A" }],
  });
}

const dohGet = (q: Buffer, headers: Record<string, string> = {}) =>
  fetch(`${origin.httpUrl}/dns-query?dns=${q.toString("base64url")}`, { headers });

describe("DoH (RFC 8484)", () => {
  it("answers GET with the record and the caching headers", async () => {
    const res = await dohGet(query("www.example.test", "A"));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/dns-message");
    const cc = parseCacheControl(res.headers.get("cache-control"));
    expect(cc).toEqual({ maxAge: 60, staleWhileRevalidate: 30, staleIfError: 86400 });
    expect(res.headers.get("etag")).toBe('"1"');
    expect(res.headers.get("surrogate-key")).toBe("www.example.test zone:example.test");
    expect(res.headers.get("x-serial")).toBe("1");
    expect(res.headers.get("x-zone")).toBe("example.test");
    expect(res.headers.get("date")).toBeTruthy();
    const packet = dnsPacket.decode(Buffer.from(await res.arrayBuffer()));
    expect(packet.answers?.[0]).toMatchObject({ name: "www.example.test", data: "192.0.2.10" });
  });

  it("answers POST the same, and 415 on another content type", async () => {
    const body = new Uint8Array(query("www.example.test", "AAAA"));
    const res = await fetch(`${origin.httpUrl}/dns-query`, {
      method: "POST",
      headers: { "content-type": "application/dns-message" },
      body,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("etag")).toBe('"1"');
    const packet = dnsPacket.decode(Buffer.from(await res.arrayBuffer()));
    expect(packet.answers?.[0]).toMatchObject({ type: "AAAA", data: "2001:db8::10" });
    const wrong = await fetch(`${origin.httpUrl}/dns-query`, {
      method: "POST",
      headers: { "content-type": "application/octet-stream" },
      body,
    });
    expect(wrong.status).toBe(415);
  });

  it("answers If-None-Match with 304 and the same caching headers", async () => {
    const q = query("www.example.test", "A");
    const res = await dohGet(q, { "if-none-match": 'W/"0", "1"' });
    expect(res.status).toBe(304);
    expect(res.headers.get("cache-control")).toMatch(/^max-age=60, stale-while-revalidate=30/);
    expect(res.headers.get("surrogate-key")).toBe("www.example.test zone:example.test");
    expect((await dohGet(q, { "if-none-match": '"0"' })).status).toBe(200);
  });

  it("uses the zone's stale windows and the RRset TTL", async () => {
    const res = await dohGet(query("www.stale.test", "A"));
    expect(res.headers.get("cache-control")).toBe(
      "max-age=42, stale-while-revalidate=5, stale-if-error=600",
    );
  });

  it("gives a negative answer the SOA negative TTL (RFC 2308) and the zone serial as ETag", async () => {
    const res = await dohGet(query("nope.example.test", "A"));
    const packet = dnsPacket.decode(Buffer.from(await res.arrayBuffer()));
    expect((packet.flags ?? 0) & 0x0f).toBe(3); // NXDOMAIN
    expect(res.headers.get("cache-control")).toMatch(/^max-age=60,/);
    expect(res.headers.get("etag")).toBe('"1"');
  });

  it("answers REFUSED outside its zones, not to be stored", async () => {
    const res = await dohGet(query("www.example.org", "A"));
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer())[3]! & 0x0f).toBe(5); // REFUSED
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("etag")).toBeNull();
  });

  it("400 on bad base64url and on a malformed message", async () => {
    const bad = await fetch(`${origin.httpUrl}/dns-query?dns=***`);
    expect(bad.status).toBe(400);
    expect((await bad.json()).field).toBe("dns");
    const garbage = await fetch(
      `${origin.httpUrl}/dns-query?dns=${Buffer.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0xff]).toString("base64url")}`,
    );
    expect(garbage.status).toBe(400);
    expect((await garbage.json()).reason).toMatch(/FORMERR/);
  });

  it("reflects a write in the next read: new ETag and serial", async () => {
    const put = await fetch(`${origin.httpUrl}/v1/zones/example.test/rrsets/www/A`, {
      method: "PUT",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ ttl: 60, data: ["192.0.2.11"] }),
    });
    const { serial } = (await put.json()) as { serial: number };
    const res = await dohGet(query("www.example.test", "A"), { "if-none-match": '"1"' });
    expect(res.status).toBe(200);
    expect(res.headers.get("etag")).toBe(`"${serial}"`);
    expect(res.headers.get("x-serial")).toBe(String(serial));
    const [, port] = origin.dnsAddr.split(":");
    expect(await dig(["+short", "@127.0.0.1", "-p", port!, "www.example.test", "A"])).toBe(
      "192.0.2.11\n",
    );
  });
});

describe("DNS JSON API", () => {
  it("answers in the Google/Cloudflare shape with presentation data", async () => {
    const res = await fetch(`${origin.httpUrl}/resolve?name=web.example.test&type=A`);
    expect(res.headers.get("content-type")).toBe("application/dns-json");
    const body = await res.json();
    expect(body).toMatchObject({
      Status: 0,
      TC: false,
      Question: [{ name: "web.example.test.", type: 1 }],
    });
    expect(body.Answer[0]).toEqual({
      name: "web.example.test.",
      type: 5,
      TTL: 60,
      data: "www.example.test.",
    });
    expect(body.Answer[1]).toMatchObject({ name: "www.example.test.", type: 1 });
    // A change to the CNAME's target must purge this answer too.
    expect(res.headers.get("surrogate-key")).toBe(
      "web.example.test www.example.test zone:example.test",
    );
  });

  it.each([
    ["MX", "15", "10 mail.example.test."],
    ["TXT", "TXT", '"v=spf1 -all"'],
    ["CAA", "257", '0 issue "letsencrypt.org"'],
  ])("formats %s data", async (_t, type, data) => {
    const body = await (
      await fetch(`${origin.httpUrl}/resolve?name=example.test&type=${type}`)
    ).json();
    expect(body.Answer[0].data).toBe(data);
  });

  it("NXDOMAIN carries the SOA in Authority; bad parameters are 400", async () => {
    const res = await fetch(`${origin.httpUrl}/resolve?name=nope.example.test`);
    const body = await res.json();
    expect(body.Status).toBe(3);
    expect(body.Authority[0].type).toBe(6);
    expect(res.headers.get("etag")).toBeTruthy();
    expect((await fetch(`${origin.httpUrl}/resolve?name=x&type=BOGUS`)).status).toBe(400);
    expect((await fetch(`${origin.httpUrl}/resolve?name=a..b`)).status).toBe(400);
  });

  it("400 naming the name parameter when it is absent or empty; an explicit root is a question", async () => {
    for (const query of ["", "?type=A", "?name=&type=A"]) {
      const res = await fetch(`${origin.httpUrl}/resolve${query}`);
      expect(res.status, query).toBe(400);
      const body = await res.json();
      expect(body.field).toBe("name");
      expect(body.reason).toMatch(/\?name=<domain>/);
    }
    const root = await fetch(`${origin.httpUrl}/resolve?name=.&type=A`);
    expect(root.status).toBe(200);
    expect((await root.json()).Status).toBe(5);
  });

  it("answers If-None-Match with 304", async () => {
    const first = await fetch(`${origin.httpUrl}/resolve?name=mail.example.test&type=A`);
    const etag = first.headers.get("etag")!;
    const again = await fetch(`${origin.httpUrl}/resolve?name=mail.example.test&type=A`, {
      headers: { "if-none-match": etag },
    });
    expect(again.status).toBe(304);
    expect(again.headers.get("x-serial")).toBe(first.headers.get("x-serial"));
  });
});

describe("X-Min-Serial", () => {
  it("412 with a reason, never stored, when the serial is ahead of the zone; a reached serial answers", async () => {
    const url = `${origin.httpUrl}/resolve?name=www.example.test&type=A`;
    const current = Number((await fetch(url)).headers.get("x-serial"));
    const ahead = await fetch(url, { headers: { "x-min-serial": String(current + 4000) } });
    expect(ahead.status).toBe(412);
    expect(ahead.headers.get("cache-control")).toBe("no-store");
    expect((await ahead.json()).reason).toBe(
      `X-Min-Serial ${current + 4000} is ahead of zone example.test at serial ${current}; send the serial a write returned`,
    );
    const doh = await dohGet(query("www.example.test", "A"), {
      "x-min-serial": String(current + 1),
    });
    expect(doh.status).toBe(412);
    const reached = await fetch(url, { headers: { "x-min-serial": String(current) } });
    expect(reached.status).toBe(200);
  });

  it("a read with the serial a write returned always answers (read-your-writes)", async () => {
    for (let i = 0; i < 5; i++) {
      const put = await fetch(`${origin.httpUrl}/v1/zones/example.test/rrsets/ryw/TXT`, {
        method: "PUT",
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ ttl: 60, data: [`v${i}`] }),
      });
      const { serial } = (await put.json()) as { serial: number };
      const res = await fetch(`${origin.httpUrl}/resolve?name=ryw.example.test&type=TXT`, {
        headers: { "x-min-serial": String(serial) },
      });
      expect(res.status).toBe(200);
      expect(res.headers.get("x-serial")).toBe(String(serial));
    }
  });
});
