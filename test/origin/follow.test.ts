/**
 * The origin follows a real Knot primary: AXFR load, NOTIFY + IXFR, the 409 on
 * API writes, and NOTIFYs it must refuse.
 */
import dgram from "node:dgram";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import dnsPacket from "dns-packet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  parseTsigKeys,
  readTsig,
  signMessage,
  type TsigKey,
  verifyMessage,
} from "../../core/tsig.ts";
import { main } from "../../origin/main.ts";
import { type RunningOrigin, startOrigin } from "../../origin/server.ts";
import type { CommittedChange } from "../../origin/store.ts";
import { dig } from "../support/dig.ts";
import { scrape } from "../support/prom.ts";
import { waitFor } from "../support/wait.ts";
import { type Knot, startKnot, tsigKeygen } from "./follow-knot.ts";

const ZONE_A = `$ORIGIN a.test.
$TTL 60
@     SOA ns1.a.test. hostmaster.a.test. 1 3600 600 86400 30
@     NS ns1
ns1   A 192.0.2.53
www   A 192.0.2.1
mail  MX 10 mx.a.test.
txt   TXT "hello world" "second"
alias CNAME www
info  HINFO "x86" "linux"
host  SSHFP 1 1 0123456789abcdef0123456789abcdef01234567
`;
const ZONE_B = `$ORIGIN b.test.
$TTL 300
@     SOA ns1.b.test. hostmaster.b.test. 2024010101 3600 600 86400 30
@     NS ns1
ns1   A 192.0.2.54
api   AAAA 2001:db8::1
`;

const ZONE_T = `$ORIGIN t.test.
$TTL 60
@     SOA ns1.t.test. hostmaster.t.test. 7 3600 600 86400 30
@     NS ns1
ns1   A 192.0.2.55
`;
const ZONE_W = ZONE_T.replaceAll("t.test.", "w.test.");

let knot: Knot;
let key: TsigKey;
let origin: RunningOrigin;
let dataDir: string;
let dnsPort = 0;
const logs: string[] = [];
const commits: CommittedChange[] = [];

const until = <T>(what: string, fn: () => T | undefined | Promise<T | undefined>, ms = 10_000) =>
  waitFor(() => `${what}; log:\n${logs.join("\n")}`, fn, ms);

const serialOf = (zone: string) => origin.store.findState(zone)?.zone.serial;
const status = (zone: string) => origin.follower!.status().find((z) => z.zone === zone)!;
/** The samples, `name{labels}` without the node label. */
const metrics = async () => (await scrape(`${origin.httpUrl}/metrics`)).samples;
const digOrigin = async (name: string, type: string) =>
  (await dig(["@127.0.0.1", "-p", String(dnsPort), name, type, "+short"])).trim();

beforeAll(async () => {
  const good = await tsigKeygen("follow-key");
  const other = await tsigKeygen("other-key");
  key = parseTsigKeys(good.file)[0]!;
  knot = await startKnot([
    { name: "a.test", file: ZONE_A },
    { name: "b.test", file: ZONE_B },
    { name: "t.test", file: ZONE_T, key: good.key },
    { name: "w.test", file: ZONE_W, key: good.key },
  ]);
  dataDir = await mkdtemp(join(tmpdir(), "propagate-follow-"));
  await writeFile(join(dataDir, "keys.conf"), good.file + other.file);
  origin = await start();
  // Knot learns where to NOTIFY once the origin has its port (a restart reuses it).
  dnsPort = origin.dns.port;
  await knot.notifyTo(["a.test", "b.test", "t.test"], dnsPort);
  origin.store.onCommit((c) => commits.push(c));
  await until(
    "the zones loaded",
    () => serialOf("a.test") && serialOf("b.test") && serialOf("t.test"),
  );
}, 30_000);

function start(): Promise<RunningOrigin> {
  return startOrigin(
    {
      http: { host: "127.0.0.1", port: 0 },
      dns: { host: "127.0.0.1", port: dnsPort },
      dataDir,
      follow: [
        { primary: `dns://127.0.0.1:${knot.port}`, zones: ["a.test", "b.test"] },
        { primary: `dns://127.0.0.1:${knot.port}`, zones: ["t.test"], key: "follow-key" },
        { primary: `dns://127.0.0.1:${knot.port}`, zones: ["w.test"], key: "other-key" },
      ],
      tsigKeys: join(dataDir, "keys.conf"),
    },
    { log: (m) => logs.push(m) },
  );
}

afterAll(async () => {
  await origin?.close();
  await knot?.close();
  await rm(dataDir, { recursive: true, force: true });
});

describe("following a Knot primary", () => {
  it("loads each zone by AXFR at the primary's serial, keeping the types the project serves", async () => {
    expect(serialOf("a.test")).toBe(await knot.serial("a.test"));
    expect(serialOf("b.test")).toBe(2024010101);
    const a = origin.store.getZone("a.test").zone;
    expect(a.get("www.a.test", "A")?.data).toEqual(["192.0.2.1"]);
    expect(a.get("mail.a.test", "MX")?.data).toEqual([{ preference: 10, exchange: "mx.a.test" }]);
    expect(a.get("txt.a.test", "TXT")?.data).toEqual([["hello world", "second"]]);
    expect(a.get("alias.a.test", "CNAME")?.data).toEqual(["www.a.test"]);
    expect(await digOrigin("api.b.test", "AAAA")).toBe("2001:db8::1");
    // HINFO and SSHFP are not modelled: dropped, counted by type and logged.
    expect(a.at("info.a.test")).toEqual([]);
    const m = await metrics();
    expect(m.get('origin_follow_records_dropped_total{type="HINFO"}')).toBe(1);
    expect(m.get('origin_follow_records_dropped_total{type="SSHFP"}')).toBe(1);
    expect(m.get('origin_follow_transfers_total{type="AXFR",result="full"}')).toBe(3);
    expect(logs.join("\n")).toMatch(
      /a\.test: dropped records the origin does not serve: 1 HINFO, 1 SSHFP/,
    );
    const health = (await (await fetch(`${origin.httpUrl}/healthz`)).json()) as {
      follow: { zone: string; serial: number; primary: string }[];
    };
    expect(health.follow.map((z) => z.zone)).toEqual(["a.test", "b.test", "t.test", "w.test"]);
    expect(health.follow[0]!.primary).toBe(`dns://127.0.0.1:${knot.port}`);
  });

  it("takes each change at Knot by NOTIFY and IXFR, as one committed change at Knot's serial", async () => {
    const before = commits.length;
    const checks = status("a.test").checks;
    await knot.change(
      "a.test",
      [
        ["www", "60", "A", "192.0.2.2"],
        ["new", "120", "TXT", '"fresh"'],
      ],
      [["www", "A"]],
    );
    const serial = await knot.serial("a.test");
    const change = await until("the IXFR commit", () => commits.find((c) => c.serial === serial));
    expect(change.op).toBe("update");
    expect(change.changes.map((c) => `${c.name} ${c.type}`).sort()).toEqual([
      "a.test SOA",
      "new.a.test TXT",
      "www.a.test A",
    ]);
    expect(status("a.test").checks).toBeGreaterThan(checks);
    expect(await digOrigin("www.a.test", "A")).toBe("192.0.2.2");

    // A deletion, a TTL change and a CNAME retarget in one transaction.
    await knot.change(
      "a.test",
      [
        ["ns1", "30", "A", "192.0.2.53"],
        ["alias", "60", "CNAME", "mail"],
      ],
      [
        ["new", "TXT"],
        ["ns1", "A"],
        ["alias", "CNAME"],
      ],
    );
    const serial2 = await knot.serial("a.test");
    await until("the second IXFR", () => serialOf("a.test") === serial2 || undefined);
    const a = origin.store.getZone("a.test").zone;
    expect(a.get("new.a.test", "TXT")).toBeUndefined();
    expect(a.get("ns1.a.test", "A")).toMatchObject({ ttl: 30, data: ["192.0.2.53"] });
    expect(a.get("alias.a.test", "CNAME")?.data).toEqual(["mail.a.test"]);
    expect(commits.slice(before).map((c) => c.serial)).toEqual([serial, serial2]);
    const m = await metrics();
    expect(
      m.get('origin_follow_transfers_total{type="IXFR",result="incremental"}'),
    ).toBeGreaterThanOrEqual(2);
    expect(m.get('origin_follow_notifies_total{result="accepted"}')).toBeGreaterThanOrEqual(2);
  });

  it("refuses API writes to a followed zone with 409 naming the primary", async () => {
    const headers = { authorization: `Bearer ${origin.token}`, "content-type": "application/json" };
    const primary = `dns://127.0.0.1:${knot.port}`;
    const attempts = [
      fetch(`${origin.httpUrl}/v1/zones/a.test/rrsets/www/A`, {
        method: "PUT",
        headers,
        body: JSON.stringify({ data: ["192.0.2.9"] }),
      }),
      fetch(`${origin.httpUrl}/v1/zones/a.test/rrsets`, {
        method: "PATCH",
        headers,
        body: JSON.stringify({ rrsets: [{ name: "x", type: "A", changetype: "DELETE" }] }),
      }),
      fetch(`${origin.httpUrl}/v1/zones/B.TEST.`, { method: "DELETE", headers }),
      fetch(`${origin.httpUrl}/v1/zones/b.test`, { method: "PUT", headers, body: "{}" }),
    ];
    for (const res of await Promise.all(attempts)) {
      expect(res.status).toBe(409);
      const body = (await res.json()) as { error: string; primary: string; reason: string };
      expect(body.error).toBe("zone followed");
      expect(body.primary).toBe(primary);
      expect(body.reason).toContain(primary);
    }
    expect(await digOrigin("www.a.test", "A")).toBe("192.0.2.2");
    // Without the token it is still 401: the zone's state is not told to strangers.
    const anon = await fetch(`${origin.httpUrl}/v1/zones/a.test`, { method: "DELETE" });
    expect(anon.status).toBe(401);
    // Other zones are written as before.
    const created = await fetch(`${origin.httpUrl}/v1/zones/c.test`, {
      method: "PUT",
      headers,
      body: "{}",
    });
    expect(created.status).toBe(201);
  });

  it("refuses a NOTIFY from an address that is not the primary, and for a zone it does not follow", async () => {
    const checks = status("a.test").checks;
    const serial = serialOf("a.test");
    const refused = await notify("a.test", "127.0.0.2");
    expect(refused.rcode).toBe(5);
    expect(refused.opcode).toBe(4);
    expect(refused.qr).toBe(true);
    expect(refused.question).toBe("a.test");
    const other = await notify("c.test", "127.0.0.1");
    expect(other.rcode).toBe(5);
    expect(status("a.test").checks).toBe(checks);
    expect(serialOf("a.test")).toBe(serial);
    expect((await metrics()).get('origin_follow_notifies_total{result="refused"}')).toBe(2);
    expect(logs.join("\n")).toMatch(
      /NOTIFY for a\.test from 127\.0\.0\.2 refused: only its primary 127\.0\.0\.1 may notify/,
    );
  });

  it("answers a malformed NOTIFY (no question, or cut short) with FORMERR", async () => {
    const header = Buffer.from([0x12, 0x34, 0x20, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]);
    const reply = await send(header, "127.0.0.1");
    expect(reply.readUInt16BE(0)).toBe(0x1234);
    expect(reply.readUInt16BE(2)).toBe(0x8000 | (4 << 11) | 1);
    const runt = await send(header.subarray(0, 5), "127.0.0.1");
    expect(runt.readUInt16BE(0)).toBe(0x1234);
    expect(runt.readUInt16BE(2) & 0x800f).toBe(0x8001);
    expect((await metrics()).get('origin_notify_in_total{result="formerr"}')).toBe(1);
  });
});

describe("following with TSIG (RFC 8945)", () => {
  it("takes the zone and its changes with signed transfers and signed NOTIFYs", async () => {
    expect(serialOf("t.test")).toBe(7);
    await knot.change("t.test", [["www", "60", "A", "192.0.2.77"]]);
    const serial = await knot.serial("t.test");
    await until("the signed IXFR", () => serialOf("t.test") === serial || undefined);
    expect(await digOrigin("www.t.test", "A")).toBe("192.0.2.77");
    expect(logs.join("\n")).not.toMatch(/t\.test.*(failed|refused)/);
  });

  it("a transfer signed with a key the primary does not know is refused and logged; nothing loads", async () => {
    const w = await until("a refused transfer of w.test", () =>
      status("w.test").failures > 0 ? status("w.test") : undefined,
    );
    expect(w.lastError).toMatch(/NOTAUTH/);
    expect(w.lastError).toMatch(/BADKEY/);
    expect(origin.store.findState("w.test")?.zone.name).toBeUndefined();
    expect(logs.join("\n")).toMatch(
      /refresh of w\.test from dns:\/\/127\.0\.0\.1:\d+ failed: .*NOTAUTH/,
    );
  });

  it("refuses an unsigned NOTIFY for a zone with a key, and answers a forged one NOTAUTH (BADSIG)", async () => {
    const checks = status("t.test").checks;
    expect((await notify("t.test", "127.0.0.1")).rcode).toBe(5);
    const forged = { ...key, secret: Buffer.alloc(32, 7) };
    const query = dnsPacket.encode({
      type: "query",
      id: 99,
      flags: 4 << 11,
      questions: [{ name: "t.test", type: "SOA", class: "IN" }],
    });
    const signed = signMessage(query, forged, { now: Date.now() / 1000 }).wire;
    const reply = await send(signed, "127.0.0.1");
    expect(reply.readUInt16BE(2) & 0xf).toBe(9);
    expect(readTsig(reply)?.record.error).toBe(16);
    // Signed with the right key: accepted, and the answer is signed for Knot to check.
    const good = signMessage(query, key, { now: Date.now() / 1000 });
    const ok = await send(good.wire, "127.0.0.1");
    expect(ok.readUInt16BE(2) & 0xf).toBe(0);
    const verified = verifyMessage(readTsig(ok)!, () => key, {
      now: Date.now() / 1000,
      requestMac: good.mac,
    });
    expect(verified.ok).toBe(true);
    expect(status("t.test").checks).toBe(checks + 1);
    expect((await metrics()).get('origin_tsig_errors_total{error="BADSIG"}')).toBe(1);
  });
});

describe("when the primary has no differences to send", () => {
  it("takes an IXFR answered AXFR-style (a zone file reloaded at Knot) as one change to the new content", async () => {
    // Knot loads a whole new zone file with no journal of differences for it.
    const file = ZONE_B.replace("2024010101", "2024010105").replace(
      "api   AAAA 2001:db8::1",
      "web   A 192.0.2.80",
    );
    await writeFile(join(knot.dir, "b.test.zone"), file);
    const before = commits.length;
    await knot.knotc("zone-reload", "b.test");
    await until("b.test at 2024010105", () => serialOf("b.test") === 2024010105 || undefined);
    const b = origin.store.getZone("b.test").zone;
    expect(b.get("api.b.test", "AAAA")).toBeUndefined();
    expect(b.get("web.b.test", "A")?.data).toEqual(["192.0.2.80"]);
    const change = commits.slice(before);
    expect(change).toHaveLength(1);
    expect(
      change[0]!.changes.map((c) => `${c.name} ${c.type} ${c.rrset ? "set" : "deleted"}`).sort(),
    ).toEqual(["api.b.test AAAA deleted", "b.test SOA set", "web.b.test A set"]);
    expect((await metrics()).get('origin_follow_transfers_total{type="IXFR",result="full"}')).toBe(
      1,
    );
  });
});

describe("--follow on the command line", () => {
  it("refuses bad follow settings before it listens, naming the problem", async () => {
    const run = (...flags: string[]) =>
      main([
        "--data",
        join(dataDir, "cli"),
        "--http",
        "127.0.0.1:0",
        "--dns",
        "127.0.0.1:0",
        ...flags,
      ]);
    await expect(run("--follow", "dns://127.0.0.1:53")).rejects.toThrow(/go together/);
    await expect(run("--follow", "ns1.example:53", "--follow-zones", "a.test")).rejects.toThrow(
      /use dns:\/\/IP:PORT/,
    );
    await expect(
      run("--follow", "dns://127.0.0.1:53", "--follow-zones", "a.test", "--follow-key", "nope"),
    ).rejects.toThrow(/TSIG key nope .* needs a key file \(--tsig-keys FILE/);
    await expect(
      run(
        "--follow",
        "dns://127.0.0.1:53",
        "--follow-zones",
        "a.test",
        "--follow-key",
        "nope",
        "--tsig-keys",
        join(dataDir, "keys.conf"),
      ),
    ).rejects.toThrow(/TSIG key nope for dns:\/\/127\.0\.0\.1:53 is not in/);
    await expect(
      run("--follow", "dns://127.0.0.1:53", "--follow-zones", "a.test,bad..name"),
    ).rejects.toThrow(/empty label/);
  });
});

describe("restarting the follower", () => {
  it("continues from the journaled serial by IXFR, taking what changed while it was down", async () => {
    await origin.close();
    await knot.change("b.test", [["late", "300", "A", "192.0.2.99"]]);
    const serial = await knot.serial("b.test");
    origin = await start();
    await until("b.test caught up", () => serialOf("b.test") === serial || undefined);
    expect(origin.store.getZone("b.test").zone.get("late.b.test", "A")?.data).toEqual([
      "192.0.2.99",
    ]);
    expect(serialOf("a.test")).toBe(await knot.serial("a.test"));
    const m = await metrics();
    expect([...m.keys()].filter((k) => k.includes('result="full"'))).toEqual([]);
    expect(m.get('origin_follow_transfers_total{type="IXFR",result="incremental"}')).toBe(1);
  });
});

/** Sends a NOTIFY for `zone` from `source` (a loopback address) and decodes the answer. */
async function notify(zone: string, source: string) {
  const query = dnsPacket.encode({
    type: "query",
    id: 4242,
    flags: 4 << 11,
    questions: [{ name: zone, type: "SOA", class: "IN" }],
  });
  const reply = await send(query, source);
  const flags = reply.readUInt16BE(2);
  return {
    rcode: flags & 0xf,
    opcode: (flags >> 11) & 0xf,
    qr: (flags & 0x8000) !== 0,
    question: dnsPacket.decode(reply).questions?.[0]?.name,
  };
}

function send(msg: Buffer, source: string): Promise<Buffer> {
  const sock = dgram.createSocket("udp4");
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sock.close();
      reject(new Error("no answer to the NOTIFY within 5 s"));
    }, 5000);
    sock.on("message", (reply) => {
      clearTimeout(timer);
      sock.close();
      resolve(reply);
    });
    sock.on("error", reject);
    sock.bind(0, source, () => sock.send(msg, dnsPort, "127.0.0.1"));
  });
}
