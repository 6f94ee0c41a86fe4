/**
 * The IXFR history survives a restart of the origin: Knot follows a zone,
 * the origin stops and starts again on the same data directory and ports,
 * and the next change reaches Knot by an incremental IXFR (RFC 1995 §4),
 * not by the whole zone in IXFR form. And the secondaries' metrics: the
 * serial lag of each (0 once in sync, 1 for a zone whose NOTIFYs are all
 * lost) and the NOTIFY->INSYNC histogram, scraped from /metrics; and
 * `propagate measure` reports a registered secondary as one.
 */
import { execFile } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseTsigKeys } from "../../core/tsig.ts";
import { measure } from "../../infra/measure.ts";
import { type RunningOrigin, startOrigin } from "../../origin/server.ts";
import { originApi } from "../support/api.ts";
import { type Daemon, kdigText, soaSerial, startDaemon, waitFor } from "../support/dns-daemons.ts";
import { scrape as scrapeUrl } from "../support/prom.ts";
import { knotSecondary } from "../support/secondary-configs.ts";

const run = promisify(execFile);
const TOKEN = "secondaries-restart-token";
let dir: string;
let origin: RunningOrigin;
let knot: Daemon;
const logs: string[] = [];

const zoneFile = (zone: string) =>
  [
    `$ORIGIN ${zone}.`,
    "$TTL 300",
    `@ IN SOA ns.${zone}. host.${zone}. 1 3600 1 600 60`,
    "@ IN NS ns",
    "ns IN A 192.0.2.53",
    "www IN A 192.0.2.1",
    "",
  ].join("\n");

function start(dnsPort: number, httpPort: number): Promise<RunningOrigin> {
  return startOrigin(
    {
      http: { host: "127.0.0.1", port: httpPort },
      dns: { host: "127.0.0.1", port: dnsPort },
      dataDir: join(dir, "data"),
      token: TOKEN,
      tsigKeys: join(dir, "keys.conf"),
      allowTransfer: { "*": ["key:xfr-key"] },
    },
    { log: (m) => logs.push(m) },
  );
}

const api = (method: string, path: string, body?: unknown, type?: string) =>
  originApi(origin.httpUrl, TOKEN, method, path, body, type);

async function scrape() {
  return (await scrapeUrl(`${origin.httpUrl}/metrics`)).samples;
}

const secondary = { dns: "", zones: ["r.test"], key: "xfr-key" };
const serial = () => origin.store.getZone("r.test").zone.serial;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "propagate-secondaries-restart-"));
  const keyText = (await run("tsig-keygen", ["-a", "hmac-sha256", "xfr-key"])).stdout;
  await writeFile(join(dir, "keys.conf"), keyText);
  const key = parseTsigKeys(keyText)[0]!;
  origin = await start(0, 0);
  for (const zone of ["r.test", "l.test"])
    expect((await api("PUT", `/v1/zones/${zone}`, zoneFile(zone), "text/dns")).status).toBe(201);
  knot = await startDaemon("knot", (d, p) =>
    knotSecondary(d, p, origin.dns.port, key, [{ zone: "r.test" }, { zone: "l.test" }]),
  );
  secondary.dns = `127.0.0.1:${knot.port}`;
  expect((await api("PUT", "/v1/secondaries/knot", secondary)).status).toBe(200);
}, 60_000);

afterAll(async () => {
  await knot?.stop();
  await origin?.close();
});

describe("IXFR history across a restart", () => {
  it("Knot, behind by changes made before the restart, catches up by incremental IXFR", async () => {
    await waitFor("Knot to load r.test", async () => (await soaSerial(knot.port, "r.test")) === 1);
    // Knot is told nothing of the next changes (no NOTIFY, refresh 3600 s):
    // after the restart, its IXFR asks for differences made before it.
    expect((await api("DELETE", "/v1/secondaries/knot")).status).toBe(200);
    for (const [method, path, body] of [
      ["PUT", "/v1/zones/r.test/rrsets/a/TXT", { ttl: 300, data: [["before 1"]] }],
      ["PUT", "/v1/zones/r.test/rrsets/www/A", { ttl: 300, data: ["192.0.2.2"] }],
      ["PUT", "/v1/zones/r.test/rrsets/b/TXT", { ttl: 300, data: [["before 3"]] }],
      ["DELETE", "/v1/zones/r.test/rrsets/a/TXT", undefined],
    ] as const)
      expect((await api(method, path, body)).status).toBe(200);
    expect(await soaSerial(knot.port, "r.test")).toBe(1);

    const { port: dnsPort } = origin.dns;
    const httpPort = Number(new URL(origin.httpUrl).port);
    await origin.close();
    origin = await start(dnsPort, httpPort);

    expect((await api("PUT", "/v1/secondaries/knot", secondary)).status).toBe(200);
    expect(
      (await api("PUT", "/v1/zones/r.test/rrsets/www/A", { ttl: 300, data: ["192.0.2.3"] })).status,
    ).toBe(200);
    const after = serial();
    await waitFor("Knot at the serial after the restart", async () => {
      return (await soaSerial(knot.port, "r.test")) === after;
    });
    const samples = await scrape();
    expect(samples.get('origin_xfr_total{type="IXFR",result="ixfr"}')).toBeGreaterThanOrEqual(1);
    expect(samples.get('origin_xfr_total{type="IXFR",result="ixfr-full"}')).toBeUndefined();
    expect(samples.get('origin_xfr_total{type="AXFR",result="axfr"}')).toBeUndefined();
    expect(
      logs.some((l) =>
        /xfr: IXFR of r\.test from serial 1 to 127\.0\.0\.1 .*: ixfr at serial/.test(l),
      ),
    ).toBe(true);
    // What Knot serves is the origin's zone: www replaced twice, a deleted, b added.
    const dig = (name: string, type: string) =>
      kdigText(["@127.0.0.1", "-p", String(knot.port), "+short", name, type]);
    expect((await dig("www.r.test", "A")).trim()).toBe("192.0.2.3");
    expect((await dig("a.r.test", "TXT")).trim()).toBe("");
    expect((await dig("b.r.test", "TXT")).trim()).toBe('"before 3"');
  }, 60_000);
});

describe("secondaries' metrics", () => {
  it("serial lag per secondary and zone, and NOTIFY->INSYNC time, on /metrics", async () => {
    // Every NOTIFY for l.test to this registration is lost (loss = 1) and
    // Knot's refresh is 3600 s: it stays one serial behind.
    expect(
      (
        await api("PUT", "/v1/secondaries/knot-lost", {
          dns: `127.0.0.1:${knot.port}`,
          zones: ["l.test"],
          key: "xfr-key",
          link: { loss: 1 },
        })
      ).status,
    ).toBe(200);
    await waitFor("Knot to load l.test", async () => (await soaSerial(knot.port, "l.test")) === 1);
    expect(
      (await api("PUT", "/v1/zones/l.test/rrsets/x/TXT", { ttl: 300, data: [["lost"]] })).status,
    ).toBe(200);
    expect(
      (await api("PUT", "/v1/zones/r.test/rrsets/m/TXT", { ttl: 300, data: [["m"]] })).status,
    ).toBe(200);
    await waitFor("Knot at r.test's serial", async () => {
      return (await soaSerial(knot.port, "r.test")) === serial();
    });
    let samples = await scrape();
    await waitFor("both lags scraped", async () => {
      samples = await scrape();
      return (
        samples.get('origin_secondary_serial_lag{secondary="knot",zone="r.test"}') === 0 &&
        samples.get('origin_secondary_serial_lag{secondary="knot-lost",zone="l.test"}') === 1
      );
    });
    expect(samples.get("origin_secondary_insync_seconds_count")).toBeGreaterThanOrEqual(1);
    const sum = samples.get("origin_secondary_insync_seconds_sum")!;
    expect(sum).toBeGreaterThan(0);
    expect(sum).toBeLessThan(30);
    expect(await soaSerial(knot.port, "l.test")).toBe(1);
  }, 60_000);
});

describe("propagate measure with a secondary registered", () => {
  it("labels it tier and kind secondary, with its time to serve each change", async () => {
    // Only the secondaries are registered at this origin: measure asks them.
    expect((await api("DELETE", "/v1/secondaries/knot-lost")).status).toBe(200);
    const m = await measure({
      originUrl: origin.httpUrl,
      token: TOKEN,
      zone: "r.test",
      label: "_measure",
      ttl: 60,
      samples: 2,
      intervalMs: 20,
      timeoutMs: 15_000,
    });
    expect(m.nodes.map((n) => [n.nodeId, n.tier, n.kind])).toEqual([
      ["knot", "secondary", "secondary"],
    ]);
    // It served both changes (its receipt may come a little after measure reads them).
    expect(m.nodes[0]!.timesMs).toHaveLength(2);
    expect(m.nodes[0]!.unconverged).toBe(0);
  }, 60_000);
});
