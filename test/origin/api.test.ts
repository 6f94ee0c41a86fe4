import { mkdtemp, readFile, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningOrigin, startOrigin } from "../../origin/server.ts";
import { dig } from "../support/dig.ts";

let origin: RunningOrigin;
let dataDir: string;
const TOKEN = "test-token-123456";

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "propagate-api-"));
  origin = await startOrigin(
    {
      http: { host: "127.0.0.1", port: 0 },
      dns: { host: "127.0.0.1", port: 0 },
      dataDir,
      token: TOKEN,
      changeLogLimit: 3,
      maxBodyBytes: 4096,
    },
    { log: () => {} },
  );
});
afterAll(() => origin.close());

async function call(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  const init: RequestInit = { method, headers: { authorization: `Bearer ${TOKEN}`, ...headers } };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)["content-type"] ??=
      typeof body === "string" ? "text/dns" : "application/json";
  }
  const res = await fetch(`${origin.httpUrl}${path}`, init);
  const text = await res.text();
  const json = res.headers.get("content-type")?.includes("json") ? JSON.parse(text) : undefined;
  return { status: res.status, headers: res.headers, json, text };
}

async function createZone(name: string, body: unknown = { ttl: 300 }) {
  const r = await call("PUT", `/v1/zones/${name}`, body);
  expect(r.status).toBe(201);
  return r;
}

/** Owner, type, data as written, the data GET answers (normalised), and what dig prints for it. */
const RECORDS: [string, string, unknown[], unknown[], string[]][] = [
  [
    "a",
    "A",
    ["192.0.2.1", "192.0.2.2", "192.0.2.1"],
    ["192.0.2.1", "192.0.2.2"],
    ["192.0.2.1", "192.0.2.2"],
  ],
  ["aaaa", "AAAA", ["2001:db8::1"], ["2001:db8::1"], ["2001:db8::1"]],
  ["alias", "CNAME", ["Target.RT.test."], ["target.rt.test"], ["target.rt.test."]],
  [
    "@",
    "MX",
    [{ preference: 10, exchange: "MAIL.rt.test" }],
    [{ preference: 10, exchange: "mail.rt.test" }],
    ["10 mail.rt.test."],
  ],
  [
    "txt",
    "TXT",
    ["v=spf1 -all", ['say "hi"', "two\\parts; here"]],
    ["v=spf1 -all", ['say "hi"', "two\\parts; here"]], // read back as written
    ['"v=spf1 -all"', '"say \\"hi\\"" "two\\\\parts; here"'],
  ],
  ["sub", "NS", ["ns.elsewhere.test."], ["ns.elsewhere.test"], ["ns.elsewhere.test."]],
  [
    "_sip._tcp",
    "SRV",
    [{ priority: 1, weight: 2, port: 5060, target: "sip.rt.test." }],
    [{ priority: 1, weight: 2, port: 5060, target: "sip.rt.test" }],
    ["1 2 5060 sip.rt.test."],
  ],
  [
    "@",
    "CAA",
    [{ flags: 0, tag: "issue", value: "ca.example.net" }],
    [{ flags: 0, tag: "issue", value: "ca.example.net" }],
    ['0 issue "ca.example.net"'],
  ],
  ["1", "PTR", ["host.rt.test"], ["host.rt.test"], ["host.rt.test."]],
];

describe("zones and RRsets", () => {
  it("round-trips every record type through PUT, GET JSON and the zone-file export and re-import", async () => {
    await createZone("rt.test");
    let serial = 1;
    for (const [name, type, data, normalised] of RECORDS) {
      const r = await call("PUT", `/v1/zones/rt.test/rrsets/${name}/${type}`, { ttl: 120, data });
      expect(r.status, JSON.stringify(r.json)).toBe(200);
      expect(r.json).toMatchObject({
        zone: "rt.test",
        serial: ++serial,
        changeId: expect.stringMatching(/^chg_/),
      });
      const got = await call("GET", `/v1/zones/rt.test/rrsets/${name}/${type}`);
      const owner = name === "@" ? "rt.test" : `${name}.rt.test`;
      expect(got.json).toEqual({ name: owner, type, ttl: 120, data: normalised, version: serial });
    }
    const zone = await call("GET", "/v1/zones/rt.test");
    expect(zone.json).toMatchObject({ zone: "rt.test", serial, staleWhileRevalidate: 30 });
    const file = await call("GET", "/v1/zones/rt.test", undefined, { accept: "text/dns" });
    expect(file.headers.get("content-type")).toMatch(/^text\/dns/);
    expect(file.text).toContain('"say \\"hi\\""');
    // Re-import the export as a new zone: the same RRsets, names and all.
    await createZone("copy.test", file.text.replaceAll("rt.test.", "copy.test."));
    const copied = await call("GET", "/v1/zones/copy.test");
    const canonical = (sets: { version?: number }[], from: string) =>
      sets.map(({ version: _v, ...s }) => JSON.stringify(s).replaceAll(from, "ZONE")).sort();
    expect(canonical(copied.json.rrsets, "copy.test")).toEqual(
      canonical(zone.json.rrsets, "rt.test"),
    );
    expect(copied.json.rrsets).toHaveLength(RECORDS.length + 1);
  });

  it("serves every type written through the API to the real dig, as written", async () => {
    await createZone("dig.test");
    for (const [name, type, data] of RECORDS) {
      const r = await call("PUT", `/v1/zones/dig.test/rrsets/${name}/${type}`, { ttl: 120, data });
      expect(r.status, JSON.stringify(r.json)).toBe(200);
    }
    const [host, port] = origin.dnsAddr.split(":") as [string, string];
    await Promise.all(
      RECORDS.map(async ([name, type, , , shown]) => {
        const owner = name === "@" ? "dig.test." : `${name}.dig.test.`;
        // The NS below the apex is a delegation: dig finds it in the authority section.
        const out = await dig([
          `@${host}`,
          "-p",
          port,
          "+norec",
          "+noall",
          "+answer",
          "+authority",
          owner,
          type,
        ]);
        const records = out
          .trim()
          .split("\n")
          .map((line) => /^(\S+)\s+(\d+)\s+IN\s+(\S+)\s+(.*)$/.exec(line))
          .filter((m) => m?.[3] === type);
        expect(
          records.map((m) => [m![1], m![2], m![4]]),
          `${owner} ${type}`,
        ).toEqual(shown.map((rdata) => [owner, "120", rdata]));
      }),
    );
  });

  it("lists zones with serials and counts, deletes RRsets and zones", async () => {
    await createZone("del.test", { rrsets: [{ name: "www", type: "A", data: ["192.0.2.7"] }] });
    const list = await call("GET", "/v1/zones");
    expect(list.json.zones).toContainEqual({ zone: "del.test", serial: 1, rrsets: 2, records: 2 });
    expect((await call("DELETE", "/v1/zones/del.test/rrsets/www/A")).json.serial).toBe(2);
    const again = await call("DELETE", "/v1/zones/del.test/rrsets/www/A");
    expect(again.status).toBe(404);
    expect(again.json.reason).toMatch(/no A RRset at "www.del.test"/);
    expect((await call("DELETE", "/v1/zones/del.test")).status).toBe(200);
    expect((await call("GET", "/v1/zones/del.test")).status).toBe(404);
  });

  it("applies a PATCH batch under one serial, and nothing of a batch with one bad entry", async () => {
    await createZone("batch.test");
    const ok = await call("PATCH", "/v1/zones/batch.test/rrsets", {
      rrsets: [
        { name: "a", type: "A", changetype: "REPLACE", records: ["192.0.2.1"] },
        { name: "b.batch.test.", type: "TXT", changetype: "REPLACE", data: ["x"] },
      ],
    });
    expect(ok.json.serial).toBe(2);
    const bad = await call("PATCH", "/v1/zones/batch.test/rrsets", {
      rrsets: [
        { name: "a", type: "A", changetype: "DELETE" },
        { name: "c", type: "MX", changetype: "REPLACE", data: [{ preference: 10 }] },
      ],
    });
    expect(bad.status).toBe(400);
    expect(bad.json.field).toBe("rrsets[1].data[0]");
    const zone = await call("GET", "/v1/zones/batch.test");
    expect(zone.json.serial).toBe(2);
    expect(zone.json.rrsets.map((s: { name: string }) => s.name)).toContain("a.batch.test");
  });

  it("serves the change feed since a serial and 410 once compacted", async () => {
    await createZone("feed.test");
    for (const ip of ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"]) {
      await call("PUT", "/v1/zones/feed.test/rrsets/www/A", { data: [ip] });
    }
    const feed = await call("GET", "/v1/zones/feed.test/changes?since=3");
    expect(feed.json.serial).toBe(5);
    expect(feed.json.changes.map((c: { serial: number }) => c.serial)).toEqual([4, 5]);
    const gone = await call("GET", "/v1/zones/feed.test/changes?since=1");
    expect(gone.status).toBe(410);
    expect(gone.json.reason).toMatch(/journal compacted; resync by GET \/v1\/zones\/feed.test/);
    expect((await call("GET", "/v1/zones/feed.test/changes?since=x")).json.field).toBe("since");
  });
});

describe("serial wrap (RFC 1982)", () => {
  it("keeps ETag and X-Serial on the newest version when the serial passes 2^32 - 1", async () => {
    await createZone("wrap.test", { soa: { serial: 2 ** 32 - 2 } });
    const put = (name: string, type: string, data: unknown[]) =>
      call("PUT", `/v1/zones/wrap.test/rrsets/${name}/${type}`, { data });
    expect((await put("alias", "CNAME", ["www.wrap.test."])).json.serial).toBe(2 ** 32 - 1);
    expect((await put("www", "A", ["192.0.2.1"])).json.serial).toBe(0);
    expect((await put("www", "A", ["192.0.2.2"])).json.serial).toBe(1);
    const chain = await call("GET", "/resolve?name=alias.wrap.test&type=A");
    expect(chain.json.Answer.map((a: { data: string }) => a.data)).toEqual([
      "www.wrap.test.",
      "192.0.2.2",
    ]);
    expect(chain.headers.get("etag")).toBe('"1"');
    expect(chain.headers.get("x-serial")).toBe("1");
    const missing = await call("GET", "/resolve?name=nope.wrap.test&type=A");
    expect(missing.headers.get("etag")).toBe('"1"');
    const cname = await call("GET", "/resolve?name=alias.wrap.test&type=CNAME");
    expect(cname.headers.get("etag")).toBe(`"${2 ** 32 - 1}"`);
  });
});

describe("errors, each with its reason", () => {
  it("401 without a token, 403 with a wrong one, reads open", async () => {
    const none = await fetch(`${origin.httpUrl}/v1/zones/x.test`, { method: "DELETE" });
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toMatch(/^Bearer/);
    expect((await none.json()).reason).toMatch(/Authorization: Bearer/);
    const wrong = await call("DELETE", "/v1/zones/x.test", undefined, {
      authorization: "Bearer nope",
    });
    expect(wrong.status).toBe(403);
    expect(wrong.json.reason).toMatch(/not this origin's token/);
    expect((await fetch(`${origin.httpUrl}/v1/zones`)).status).toBe(200);
  });

  it.each([
    [
      "a bad address",
      "/v1/zones/err.test/rrsets/www/A",
      { data: ["300.1.1.1"] },
      "data[0]",
      /IPv4/,
    ],
    [
      "a name outside the zone",
      "/v1/zones/err.test/rrsets/www.other.test./A",
      { data: ["192.0.2.1"] },
      "name",
      /outside zone/,
    ],
    [
      "an SOA below the apex",
      "/v1/zones/err.test/rrsets/www/SOA",
      {
        data: [{ mname: "a", rname: "b", serial: 1, refresh: 1, retry: 1, expire: 1, minimum: 1 }],
      },
      "name",
      /apex/,
    ],
    [
      "a CNAME beside other data",
      "/v1/zones/err.test/rrsets/www/CNAME",
      { data: ["x.test."] },
      "type",
      /CNAME cannot coexist/,
    ],
    [
      "a wrong ttl type",
      "/v1/zones/err.test/rrsets/www/A",
      { ttl: "60", data: ["192.0.2.1"] },
      "ttl",
      /number/,
    ],
    [
      "a bad label",
      "/v1/zones/err.test/rrsets/bad..name/A",
      { data: ["192.0.2.1"] },
      "name",
      /empty label/,
    ],
  ])("400 for %s naming the field", async (_label, path, body, field, reason) => {
    if ((await call("GET", "/v1/zones/err.test")).status === 404) {
      await createZone("err.test", { rrsets: [{ name: "www", type: "A", data: ["192.0.2.1"] }] });
    }
    const r = await call("PUT", path, body);
    expect(r.status).toBe(400);
    expect(r.json.field).toBe(field || "body");
    expect(r.json.reason).toMatch(reason);
  });

  it("400 for malformed JSON and for a zone file error naming the line", async () => {
    const json = await call("PUT", "/v1/zones/j.test", "{nope", {
      "content-type": "application/json",
    });
    expect(json.status).toBe(400);
    expect(json.json).toMatchObject({
      field: "body",
      reason: expect.stringMatching(/not valid JSON/),
    });
    const zf = await call(
      "PUT",
      "/v1/zones/zf.test",
      "$TTL 60\n@ IN SOA ns1 host 1 2 3 4 5\nwww IN A 1.2.3\n",
    );
    expect(zf.status).toBe(400);
    expect(zf.json).toMatchObject({ field: "body", line: 3 });
  });

  it("404 for an unknown zone with a hint", async () => {
    const r = await call("PUT", "/v1/zones/missing.test/rrsets/www/A", { data: ["192.0.2.1"] });
    expect(r.status).toBe(404);
    expect(r.json.reason).toBe(
      'zone "missing.test" not found; create it with PUT /v1/zones/missing.test',
    );
  });

  it("412 on an If-Match that is not the serial (RFC 9110 §13.1.1), with the current serial; 409 on re-create", async () => {
    await createZone("cas.test");
    const stale = await call(
      "PUT",
      "/v1/zones/cas.test/rrsets/www/A",
      { data: ["192.0.2.1"] },
      { "if-match": '"7"' },
    );
    expect(stale.status).toBe(412);
    expect(stale.json).toMatchObject({ serial: 1, reason: expect.stringMatching(/not 7/) });
    const fresh = await call(
      "PUT",
      "/v1/zones/cas.test/rrsets/www/A",
      { data: ["192.0.2.1"] },
      { "if-match": "1" },
    );
    expect(fresh.json.serial).toBe(2);
    const dup = await call("PUT", "/v1/zones/cas.test", {});
    expect(dup.status).toBe(409);
    expect(dup.json.reason).toMatch(/already exists/);
  });

  it("413 over the body limit, 415 on a wrong content type", async () => {
    const big = await call("PUT", "/v1/zones/big.test", {
      rrsets: [{ name: "t", type: "TXT", data: ["x".repeat(5000)] }],
    });
    expect(big.status).toBe(413);
    expect(big.json.reason).toMatch(/4096 bytes/);
    const form = await call("PUT", "/v1/zones/form.test", "a=b", {
      "content-type": "application/x-www-form-urlencoded",
    });
    expect(form.status).toBe(415);
    expect(form.json.reason).toMatch(/application\/json or text\/dns/);
  });
});

describe("token", () => {
  it("generates a token into DATA/token with mode 0600 and reuses it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "propagate-token-"));
    const opts = {
      http: { host: "127.0.0.1", port: 0 },
      dns: { host: "127.0.0.1", port: 0 },
      dataDir: dir,
    };
    const a = await startOrigin(opts, { log: () => {} });
    await a.close();
    expect(a.tokenCreated).toBe(true);
    expect((await stat(join(dir, "token"))).mode & 0o777).toBe(0o600);
    expect((await readFile(join(dir, "token"), "utf8")).trim()).toBe(a.token);
    const b = await startOrigin(opts, { log: () => {} });
    await b.close();
    expect(b.token).toBe(a.token);
    expect(b.tokenCreated).toBe(false);
  });
});

describe("openapi.json", () => {
  it("describes every route the API serves", async () => {
    const spec = JSON.parse(
      await readFile(new URL("../../origin/openapi.json", import.meta.url), "utf8"),
    );
    expect(spec.openapi).toBe("3.1.0");
    expect(Object.keys(spec.paths).sort()).toEqual(
      [
        "/dns-query",
        "/healthz",
        "/metrics",
        "/resolve",
        "/v1/zones",
        "/v1/zones/{zone}",
        "/v1/zones/{zone}/changes",
        "/v1/zones/{zone}/rrsets",
        "/v1/zones/{zone}/rrsets/{name}/{type}",
        "/v1/nodes",
        "/v1/nodes/{id}",
        "/v1/nodes/{id}/acks",
        "/v1/changes/{id}",
        "/v1/purge",
        "/v1/secondaries",
        "/v1/secondaries/{id}",
        "/v1/zones/{zone}/transfer",
      ].sort(),
    );
  });
});
