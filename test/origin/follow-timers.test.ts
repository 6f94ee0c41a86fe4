/**
 * The SOA timers of a followed zone (RFC 1035 §4.3.5) on the virtual clock,
 * against a real Knot primary that sends no NOTIFY: the refresh timer alone
 * brings a change; a primary that is down is retried every RETRY and the
 * zone expires after EXPIRE and is answered SERVFAIL; it is fresh again
 * (and answered) when the primary returns.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import dnsPacket from "dns-packet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VirtualClock } from "../../core/clock.ts";
import { queryUdp } from "../../core/dns-transport.ts";
import type { FollowedZone } from "../../origin/follow.ts";
import { type RunningOrigin, startOrigin } from "../../origin/server.ts";
import { freePort } from "../support/net.ts";
import { scrape } from "../support/prom.ts";
import { waitFor } from "../support/wait.ts";
import { type Knot, startKnot } from "./follow-knot.ts";

// REFRESH 60 s, RETRY 10 s, EXPIRE 120 s.
const ZONE = `$ORIGIN c.test.
$TTL 60
@    SOA ns1.c.test. hostmaster.c.test. 100 60 10 120 30
@    NS ns1
ns1  A 192.0.2.53
www  A 192.0.2.1
`;

let knot: Knot;
let origin: RunningOrigin;
let dataDir: string;
let deadPort: number;
const clock = new VirtualClock(Date.now());
const logs: string[] = [];

const until = <T>(what: string, fn: () => T | undefined | false) =>
  waitFor(() => `${what}:\n${logs.join("\n")}`, fn, 10_000, 10);

const state = (zone: string): FollowedZone =>
  origin.follower!.status().find((z) => z.zone === zone)!;
const serial = () => origin.store.findState("c.test")?.zone.serial;

/** What the origin's DNS answers for www.c.test A: RCODE (from the header), AA and the answers. */
async function askWww() {
  const q = dnsPacket.encode({
    type: "query",
    id: 7,
    questions: [{ name: "www.c.test", type: "A" }],
  });
  const wire = await queryUdp("127.0.0.1", origin.dns.port, q, 2000);
  const r = dnsPacket.decode(wire);
  const rcode = ["NOERROR", "FORMERR", "SERVFAIL"][wire.readUInt8(3) & 0x0f] ?? "other";
  return { rcode, aa: r.flag_aa, answers: r.answers?.length ?? 0 };
}

/** The same question over the origin's HTTP reads: DoH (RFC 8484) and DNS JSON. */
async function askWwwHttp() {
  const q = dnsPacket.encode({
    type: "query",
    id: 0,
    questions: [{ name: "www.c.test", type: "A" }],
  });
  const doh = await fetch(
    `${origin.httpUrl}/dns-query?dns=${q.toString("base64url").replace(/=+$/, "")}`,
    {
      headers: { accept: "application/dns-message" },
    },
  );
  const wire = Buffer.from(await doh.arrayBuffer());
  const json = await fetch(`${origin.httpUrl}/resolve?name=www.c.test&type=A`);
  const body = (await json.json()) as { Status: number; Answer?: unknown[] };
  return {
    doh: { rcode: wire.readUInt8(3) & 0x0f, answers: dnsPacket.decode(wire).answers?.length ?? 0 },
    dohCache: doh.headers.get("cache-control"),
    json: { status: body.Status, answers: body.Answer?.length ?? 0 },
    jsonCache: json.headers.get("cache-control"),
  };
}

/** The origin following c.test from Knot and never.test from a port where nothing answers. */
function startFollower(): Promise<RunningOrigin> {
  return startOrigin(
    {
      http: { host: "127.0.0.1", port: 0 },
      dns: { host: "127.0.0.1", port: 0 },
      dataDir,
      follow: [
        { primary: `dns://127.0.0.1:${knot.port}`, zones: ["c.test"] },
        { primary: `dns://127.0.0.1:${deadPort}`, zones: ["never.test"] },
      ],
    },
    { clock, log: (m) => logs.push(m) },
  );
}

beforeAll(async () => {
  knot = await startKnot([{ name: "c.test", file: ZONE }]);
  deadPort = await freePort();
  dataDir = await mkdtemp(join(tmpdir(), "propagate-follow-timers-"));
  origin = await startFollower();
  await until("c.test loaded", () => serial() === 100);
  await until("never.test failed", () => state("never.test").failures === 1);
}, 30_000);

afterAll(async () => {
  await origin?.close();
  await knot?.close();
  await rm(dataDir, { recursive: true, force: true });
});

describe("SOA timers of a followed zone, on the virtual clock", () => {
  it("a zone that never loaded is tried again after the initial retry (10 s), not before", async () => {
    const start = clock.now();
    expect(state("never.test").nextCheck).toBe(start + 10_000);
    await clock.advance(9_999);
    expect(state("never.test").checks).toBe(1);
    await clock.advance(1);
    await until("the second try", () => state("never.test").failures === 2);
    expect(state("never.test").lastError).toMatch(/ECONNREFUSED|closed the connection/);
  });

  it("without NOTIFY, a change at the primary arrives when REFRESH (60 s) expires, not before", async () => {
    const loadedAt = state("c.test").lastRefresh!;
    expect(state("c.test").nextCheck).toBe(loadedAt + 60_000);
    await knot.change("c.test", [["www", "60", "A", "192.0.2.2"]], [["www", "A"]]);
    const checks = state("c.test").checks;
    await clock.advance(loadedAt + 59_999 - clock.now());
    expect(state("c.test").checks).toBe(checks);
    expect(serial()).toBe(100);
    await clock.advance(1);
    await until("the refresh's IXFR", () => serial() === 101);
    expect(origin.store.getZone("c.test").zone.get("www.c.test", "A")?.data).toEqual(["192.0.2.2"]);
    const after = state("c.test");
    expect(after.nextCheck).toBe(after.lastRefresh! + 60_000);
  });

  it("a primary that is down is retried every RETRY (10 s) and the zone expires after EXPIRE (120 s)", async () => {
    await knot.stop();
    const lastRefresh = state("c.test").lastRefresh!;
    await clock.advance(state("c.test").nextCheck! - clock.now());
    await until("the first failed refresh", () => state("c.test").failures === 1);
    // RFC 1035 §4.3.5: after a failure, the next try is RETRY later.
    expect(state("c.test").nextCheck).toBe(clock.now() + 10_000);
    expect(await askWww()).toMatchObject({ rcode: "NOERROR", aa: true });
    expect(await askWwwHttp()).toMatchObject({
      doh: { rcode: 0, answers: 1 },
      json: { status: 0, answers: 1 },
    });
    while (clock.now() - lastRefresh < 120_000) {
      expect(state("c.test").expired).toBe(false);
      const failures = state("c.test").failures;
      await clock.advance(10_000);
      await until("a retry", () => state("c.test").failures === failures + 1);
    }
    expect(state("c.test").expired).toBe(true);
    expect(logs.join("\n")).toMatch(
      /c\.test expired: no refresh from dns:\/\/127\.0\.0\.1:\d+ for 120 s/,
    );
    const { samples } = await scrape(`${origin.httpUrl}/metrics`);
    expect(samples.get('origin_follow_zone_expired{zone="c.test"}')).toBe(1);
    // The data stays as it was: nothing is committed while the primary is away.
    expect(serial()).toBe(101);
    // RFC 1035 §4.3.5: but it is no longer answered authoritatively.
    expect(await askWww()).toEqual({ rcode: "SERVFAIL", aa: false, answers: 0 });
    // Over every transport: a resolver asking by DoH (as every resolver in a topology
    // does) or a client by JSON gets SERVFAIL too, and nothing it may cache.
    expect(await askWwwHttp()).toEqual({
      doh: { rcode: 2, answers: 0 },
      dohCache: "no-store",
      json: { status: 2, answers: 0 },
      jsonCache: "no-store",
    });
    const after = (await scrape(`${origin.httpUrl}/metrics`)).samples;
    expect(after.get('origin_dns_queries_total{transport="udp",rcode="SERVFAIL"}')).toBe(1);

    await knot.restart();
    await clock.advance(10_000);
    await until("fresh again", () => !state("c.test").expired && state("c.test").failures === 0);
    expect(logs.join("\n")).toMatch(/c\.test is fresh again/);
    expect((await askWww()).rcode).toBe("NOERROR");
  });

  it("a zone held from before a restart expires EXPIRE (120 s) after the start when its primary stays away", async () => {
    await origin.close();
    await knot.stop();
    origin = await startFollower();
    const start = clock.now();
    // Served from the journal (the time of its last refresh is not kept).
    await until("the first failed refresh", () => state("c.test").failures === 1);
    expect(serial()).toBe(101);
    expect(state("c.test").lastRefresh).toBeUndefined();
    expect((await askWww()).rcode).toBe("NOERROR");
    while (clock.now() - start < 120_000) {
      expect(state("c.test").expired).toBe(false);
      const failures = state("c.test").failures;
      await clock.advance(10_000);
      await until("a retry", () => state("c.test").failures === failures + 1);
    }
    expect(state("c.test").expired).toBe(true);
    expect((await askWww()).rcode).toBe("SERVFAIL");
  });
});
