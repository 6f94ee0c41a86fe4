/**
 * Zone transfers out of a real origin (RFC 5936 AXFR, RFC 1995 IXFR) read by
 * kdig, with TSIG (RFC 8945); and every bad request answered by its RCODE, a
 * counter, a log line, and no change.
 */
import { execFile } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import dnsPacket from "dns-packet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryTcp, queryUdp } from "../../core/dns-transport.ts";
import {
  parseTsigKeys,
  readTsig,
  signMessage,
  type TsigKey,
  verifyMessage,
} from "../../core/tsig.ts";
import { type RunningOrigin, startOrigin } from "../../origin/server.ts";
import { originApi } from "../support/api.ts";
import { kdigText, transferTcp } from "../support/dns-daemons.ts";
import { scrape } from "../support/prom.ts";

const run = promisify(execFile);
const TOKEN = "xfr-test-token-1234";
let origin: RunningOrigin;
let port = 0;
let key: TsigKey;
let other: TsigKey;
const logs: string[] = [];

const ZONE = [
  "$ORIGIN x.test.",
  "$TTL 300",
  "@ IN SOA ns.x.test. host.x.test. 1 60 30 600 60",
  "@ IN NS ns",
  "ns IN A 192.0.2.53",
  "www IN A 192.0.2.1",
  ...Array.from({ length: 3000 }, (_, i) => `t${i} IN TXT "${"y".repeat(60)} ${i}"`),
  "",
].join("\n");

const api = (method: string, path: string, body?: unknown, type?: string) =>
  originApi(origin.httpUrl, TOKEN, method, path, body, type);

const y = (k: TsigKey) => `${k.algorithm}:${k.name}:${k.secret.toString("base64")}`;
const at = () => ["@127.0.0.1", "-p", String(port)];
const serial = () => origin.store.getZone("x.test").zone.serial;
const now = () => Date.now() / 1000;

beforeAll(async () => {
  const dir = await mkdtemp(join(tmpdir(), "propagate-xfr-"));
  const keyText =
    (await run("tsig-keygen", ["-a", "hmac-sha256", "xfr-key"])).stdout +
    (await run("tsig-keygen", ["-a", "hmac-sha512", "other-key"])).stdout;
  await writeFile(join(dir, "keys.conf"), keyText);
  [key, other] = parseTsigKeys(keyText) as [TsigKey, TsigKey];
  origin = await startOrigin(
    {
      http: { host: "127.0.0.1", port: 0 },
      dns: { host: "127.0.0.1", port: 0 },
      dataDir: join(dir, "data"),
      token: TOKEN,
      tsigKeys: join(dir, "keys.conf"),
      allowTransfer: { "x.test": ["key:xfr-key"], "*": ["192.0.2.0/24"] },
    },
    { log: (m) => logs.push(m) },
  );
  port = origin.dns.port;
  expect((await api("PUT", "/v1/zones/x.test", ZONE, "text/dns")).status).toBe(201);
});
afterAll(() => origin?.close());

function records(out: string): string[] {
  return out.split("\n").filter((l) => /\tIN\t/.test(l));
}

describe("AXFR (RFC 5936)", () => {
  it("sends the zone signed, SOA first and last, over several compressed messages", async () => {
    const out = await kdigText([...at(), "-y", y(key), "x.test", "AXFR"]);
    const rr = records(out);
    expect(rr[0]).toMatch(/^x\.test\.\s+300\s+IN\s+SOA/);
    expect(rr.at(-1)).toMatch(/^x\.test\.\s+300\s+IN\s+SOA/);
    expect(rr).toHaveLength(3000 + 3 + 2);
    expect(out).not.toMatch(/WARNING|failed/);
    const m = /Received (\d+) B \((\d+) messages/.exec(out)!;
    expect(Number(m[2])).toBeGreaterThan(3);
    // Uncompressed, every owner would cost its full name: compression saves at least the zone suffix.
    const uncompressed = rr.length * "t1234.x.test.".length;
    expect(Number(m[1])).toBeLessThan(3000 * 90 + uncompressed - 3000 * 7);
    // Every message of the stream verifies (kdig checks the chain); the first echoes the question.
    const msgs = await transferTcp(
      port,
      signMessage(query("x.test", "AXFR"), key, { now: now() }).wire,
    );
    expect(dnsPacket.decode(msgs[0]!).questions?.[0]?.name).toBe("x.test");
    expect(msgs.every((b) => b.length <= 65_535)).toBe(true);
  });

  it("refuses unsigned requests and other keys (REFUSED, logged, counted); allows listed addresses", async () => {
    const unsigned = await kdigText([...at(), "x.test", "AXFR"]);
    expect(unsigned).toMatch(/REFUSED/);
    const otherKey = await kdigText([...at(), "-y", y(other), "x.test", "AXFR"]);
    expect(otherKey).toMatch(/REFUSED/);
    expect(
      logs.some((l) => /xfr: REFUSED to 127\.0\.0\.1 \(tcp, unsigned\): AXFR of x\.test/.test(l)),
    ).toBe(true);
    expect(await metric('origin_xfr_total{type="AXFR",result="refused"}')).toBeGreaterThanOrEqual(
      2,
    );
    // The API's list replaces the zone's own: the loopback address, no key needed.
    expect(
      (await api("PUT", "/v1/zones/x.test/transfer", { allowTransfer: ["127.0.0.0/8"] })).status,
    ).toBe(200);
    expect(records(await kdigText([...at(), "x.test", "AXFR"])).length).toBe(3005);
    expect((await api("GET", "/v1/zones/x.test/transfer")).json).toMatchObject({
      allowTransfer: ["127.0.0.0/8"],
    });
    const bad = await api("PUT", "/v1/zones/x.test/transfer", { allowTransfer: ["300.1.1.1"] });
    expect(bad).toMatchObject({ status: 400, json: { field: "allowTransfer" } });
    expect(
      (await api("PUT", "/v1/zones/x.test/transfer", { allowTransfer: ["key:xfr-key"] })).status,
    ).toBe(200);
  });
});

describe("IXFR (RFC 1995)", () => {
  it("sends the differences serial by serial, one SOA when current, the SOA alone over UDP", async () => {
    const from = serial();
    await api("PUT", "/v1/zones/x.test/rrsets/www/A", { ttl: 300, data: ["192.0.2.2"] });
    await api("PUT", "/v1/zones/x.test/rrsets/new/TXT", { ttl: 60, data: [["hello"]] });
    await api("DELETE", "/v1/zones/x.test/rrsets/t7/TXT");
    const out = await kdigText([...at(), "-y", y(key), "x.test", `IXFR=${from}`]);
    const rr = records(out);
    expect(out).not.toMatch(/WARNING|failed/);
    expect(rr.map((l) => l.replace(/\s+/g, " "))).toEqual([
      expect.stringMatching(new RegExp(`SOA .* ${from + 3} `)),
      expect.stringMatching(new RegExp(`SOA .* ${from} `)),
      "www.x.test. 300 IN A 192.0.2.1",
      expect.stringMatching(new RegExp(`SOA .* ${from + 1} `)),
      "www.x.test. 300 IN A 192.0.2.2",
      expect.stringMatching(new RegExp(`SOA .* ${from + 1} `)),
      expect.stringMatching(new RegExp(`SOA .* ${from + 2} `)),
      'new.x.test. 60 IN TXT "hello"',
      expect.stringMatching(new RegExp(`SOA .* ${from + 2} `)),
      expect.stringMatching(/^t7\.x\.test\. 300 IN TXT/),
      expect.stringMatching(new RegExp(`SOA .* ${from + 3} `)),
      expect.stringMatching(new RegExp(`SOA .* ${from + 3} `)),
    ]);
    const current = records(await kdigText([...at(), "-y", y(key), "x.test", `IXFR=${from + 3}`]));
    expect(current).toHaveLength(1);
    const udp = records(
      await kdigText([...at(), "+notcp", "-y", y(key), "x.test", `IXFR=${from}`]),
    );
    expect(udp).toHaveLength(1);
    // A serial the history does not hold: the whole zone, in IXFR form (AXFR-style).
    const full = records(await kdigText([...at(), "-y", y(key), "x.test", "IXFR=0"]));
    expect(full).toHaveLength(3000 + 3 + 2 + 1 - 1);
  });
});

/** A query as bytes; `type` may be AXFR/IXFR. */
function query(name: string, type: string, id = 77): Buffer {
  return dnsPacket.encode({ type: "query", id, questions: [{ name, type: type as "A" }] });
}

/** One sample, `name{labels}` without the node label; 0 when it was never counted. */
async function metric(name: string): Promise<number> {
  return (await scrape(`${origin.httpUrl}/metrics`)).samples.get(name) ?? 0;
}

const rcode = (b: Buffer) => b.readUInt16BE(2) & 0xf;

describe("bad input: the RFC's rcode, a counter, a log line, nothing changes", () => {
  it("AXFR over UDP: FORMERR (RFC 5936 §4.2)", async () => {
    const before = serial();
    const r = await queryUdp(
      "127.0.0.1",
      port,
      signMessage(query("x.test", "AXFR"), key, { now: now() }).wire,
    );
    expect(rcode(r)).toBe(1);
    expect(logs.some((l) => /AXFR of x\.test over UDP/.test(l))).toBe(true);
    expect(await metric('origin_xfr_total{type="AXFR",result="udp"}')).toBe(1);
    expect(serial()).toBe(before);
  });

  it("a zone we do not serve: NOTAUTH", async () => {
    const r = await queryTcp(
      "127.0.0.1",
      port,
      signMessage(query("nope.test", "AXFR"), key, { now: now() }).wire,
    );
    expect(rcode(r)).toBe(9);
    expect(logs.some((l) => /AXFR of nope\.test, a zone this origin does not serve/.test(l))).toBe(
      true,
    );
    expect(await metric('origin_xfr_total{type="AXFR",result="notauth"}')).toBe(1);
  });

  it("malformed and truncated requests: FORMERR (or nothing for a runt)", async () => {
    const ixfrNoSoa = query("x.test", "IXFR");
    expect(rcode(await queryTcp("127.0.0.1", port, ixfrNoSoa))).toBe(1);
    expect(logs.some((l) => /IXFR request needs the client's SOA/.test(l))).toBe(true);
    const signed = signMessage(query("x.test", "AXFR"), key, { now: now() }).wire;
    const cut = signed.subarray(0, signed.length - 5);
    expect(rcode(await queryTcp("127.0.0.1", port, cut))).toBe(1);
    expect(logs.some((l) => /malformed TSIG/.test(l))).toBe(true);
    expect(await metric('origin_dns_refused_total{rcode="FORMERR"}')).toBeGreaterThanOrEqual(1);
    expect(await metric('origin_xfr_total{type="bad",result="formerr"}')).toBeGreaterThanOrEqual(1);
  });

  it("forged, unknown-key and stale TSIG: NOTAUTH with BADSIG, BADKEY, BADTIME (signed, our time)", async () => {
    const before = serial();
    const forgedKey: TsigKey = { ...key, secret: Buffer.alloc(32, 9) };
    const forged = await queryTcp(
      "127.0.0.1",
      port,
      signMessage(query("x.test", "AXFR"), forgedKey, { now: now() }).wire,
    );
    expect(rcode(forged)).toBe(9);
    expect(readTsig(forged)!.record).toMatchObject({ error: 16, mac: Buffer.alloc(0) });
    const stranger: TsigKey = { ...key, name: "stranger" };
    const unknown = await queryTcp(
      "127.0.0.1",
      port,
      signMessage(query("x.test", "AXFR"), stranger, { now: now() }).wire,
    );
    expect(readTsig(unknown)!.record.error).toBe(17);
    const staleReq = signMessage(query("x.test", "AXFR"), key, { now: now() - 3600 });
    const stale = await queryTcp("127.0.0.1", port, staleReq.wire);
    expect(rcode(stale)).toBe(9);
    const found = readTsig(stale)!;
    expect(found.record.error).toBe(18);
    expect(Math.abs(found.record.otherData.readUIntBE(0, 6) - now())).toBeLessThan(5);
    // Signed with the shared key over our request's MAC, so the client can trust the time.
    const v = verifyMessage(found, () => key, { now: now() - 3600, requestMac: staleReq.mac });
    expect(v.ok).toBe(true);
    for (const e of ["BADSIG", "BADKEY", "BADTIME"]) {
      expect(await metric(`origin_tsig_errors_total{error="${e}"}`)).toBe(1);
      expect(logs.some((l) => l.startsWith(`dns: TSIG ${e} from 127.0.0.1`))).toBe(true);
    }
    expect(serial()).toBe(before);
  });

  it("a NOTIFY to the origin (it follows no one): REFUSED", async () => {
    const notify = Buffer.from(query("x.test", "SOA"));
    notify.writeUInt16BE(4 << 11, 2);
    expect(rcode(await queryUdp("127.0.0.1", port, notify))).toBe(5);
    expect(logs.some((l) => /REFUSED NOTIFY for x\.test from 127\.0\.0\.1/.test(l))).toBe(true);
    expect(await metric('origin_notify_in_total{result="refused"}')).toBe(1);
  });

  it("signed ordinary queries get signed answers (dig verifies)", async () => {
    const { stdout } = await run("dig", [...at(), "-y", y(key), "www.x.test", "A"]);
    expect(stdout).toMatch(/status: NOERROR/);
    expect(stdout).toMatch(/192\.0\.2\.2/);
    expect(stdout).not.toMatch(/Couldn't verify|failure/);
  });
});

describe("the primary's settings over the API", () => {
  it("refuses bad secondaries with the field, needs the token, and 404s unknown ones", async () => {
    const bad = await api("PUT", "/v1/secondaries/s1", { dns: "nowhere" });
    expect(bad).toMatchObject({ status: 400, json: { field: "dns" } });
    const noKey = await api("PUT", "/v1/secondaries/s1", { dns: "127.0.0.1:9", key: "nope" });
    expect(noKey).toMatchObject({ status: 400, json: { field: "key" } });
    expect(noKey.json.reason).toMatch(/not in the TSIG key file/);
    const anon = await fetch(`${origin.httpUrl}/v1/secondaries/s1`, { method: "PUT", body: "{}" });
    expect(anon.status).toBe(401);
    expect((await api("DELETE", "/v1/secondaries/nope")).status).toBe(404);
    expect((await api("GET", "/v1/zones/nope.test/transfer")).status).toBe(404);
  });

  it("keeps what the API set across a restart (DATA/primary.json)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "propagate-xfr-restart-"));
    const cfg = {
      http: { host: "127.0.0.1", port: 0 },
      dns: { host: "127.0.0.1", port: 0 },
      dataDir: dir,
      token: TOKEN,
      sample: true,
    };
    const first = await startOrigin(cfg, { log: () => {} });
    const put = (path: string, body: unknown) =>
      fetch(`${first.httpUrl}${path}`, {
        method: "PUT",
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    expect(
      (await put("/v1/zones/example.test/transfer", { allowTransfer: ["10.0.0.0/8"] })).status,
    ).toBe(200);
    expect(
      (await put("/v1/secondaries/far", { dns: "127.0.0.1:9", zones: ["example.test"] })).status,
    ).toBe(200);
    await first.close();
    const second = await startOrigin(cfg, { log: () => {} });
    try {
      const t = await (await fetch(`${second.httpUrl}/v1/zones/example.test/transfer`)).json();
      expect(t).toMatchObject({ allowTransfer: ["10.0.0.0/8"], secondaries: ["far"] });
      expect(second.receipts.node("far")).toMatchObject({
        tier: "secondary",
        address: "127.0.0.1:9",
      });
    } finally {
      await second.close();
    }
  });
});
