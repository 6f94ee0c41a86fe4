/**
 * Real secondaries follow the origin: knotd, named and nsd, each configured by
 * this test on free loopback ports, take zones by AXFR with TSIG, follow 20
 * changes by NOTIFY + IXFR, and turn INSYNC in GET /v1/changes/{id}. Knot also
 * takes a 20,000-RRset zone intact, is refused without the key or with a wrong
 * one, and converges by its SOA refresh when every NOTIFY is lost.
 */
import { execFile } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseTsigKeys, type TsigKey } from "../../core/tsig.ts";
import { type RunningOrigin, startOrigin } from "../../origin/server.ts";
import { originApi } from "../support/api.ts";
import { type Daemon, kdigText, soaSerial, startDaemon, waitFor } from "../support/dns-daemons.ts";
import { scrape } from "../support/prom.ts";
import { bindSecondary, knotSecondary, nsdSecondary } from "../support/secondary-configs.ts";

const run = promisify(execFile);
const TOKEN = "secondaries-token-1234";
let origin: RunningOrigin;
let key: TsigKey;
let knot: Daemon;
let bind: Daemon;
let nsd: Daemon;
const logs: string[] = [];

function zoneFile(zone: string, refresh: number, lines: string[] = []): string {
  return [
    `$ORIGIN ${zone}.`,
    "$TTL 300",
    `@ IN SOA ns.${zone}. host.${zone}. 1 ${refresh} 1 600 60`,
    "@ IN NS ns",
    "ns IN A 192.0.2.53",
    "www IN A 192.0.2.1",
    ...lines,
    "",
  ].join("\n");
}

const api = (method: string, path: string, body?: unknown, type?: string) =>
  originApi(origin.httpUrl, TOKEN, method, path, body, type);

const serialOf = (zone: string) => origin.store.getZone(zone).zone.serial;

beforeAll(async () => {
  const dir = await mkdtemp(join(tmpdir(), "propagate-secondaries-"));
  const keyText = (await run("tsig-keygen", ["-a", "hmac-sha256", "xfr-key"])).stdout;
  await writeFile(join(dir, "keys.conf"), keyText);
  key = parseTsigKeys(keyText)[0]!;
  origin = await startOrigin(
    {
      http: { host: "127.0.0.1", port: 0 },
      dns: { host: "127.0.0.1", port: 0 },
      dataDir: join(dir, "data"),
      token: TOKEN,
      tsigKeys: join(dir, "keys.conf"),
      allowTransfer: { "*": ["key:xfr-key"] },
    },
    { log: (m) => logs.push(m) },
  );
  const big = Array.from({ length: 19_997 }, (_, i) => `n${i} IN TXT "big zone record ${i}"`);
  for (const [zone, refresh, lines] of [
    ["s.test", 3600, []],
    ["lossy.test", 2, []],
    ["nokey.test", 3600, []],
    ["badkey.test", 3600, []],
    ["big.test", 3600, big],
  ] as const)
    expect(
      (await api("PUT", `/v1/zones/${zone}`, zoneFile(zone, refresh, [...lines]), "text/dns"))
        .status,
    ).toBe(201);
  const op = origin.dns.port;
  [knot, bind, nsd] = await Promise.all([
    startDaemon("knot", (d, p) =>
      knotSecondary(d, p, op, key, [
        { zone: "s.test" },
        { zone: "lossy.test" },
        { zone: "big.test" },
        { zone: "nokey.test", as: "nokey" },
        { zone: "badkey.test", as: "badkey" },
      ]),
    ),
    startDaemon("bind", (d, p) => bindSecondary(d, p, op, key, ["s.test"])),
    startDaemon("nsd", (d, p) => nsdSecondary(d, p, op, key, ["s.test"])),
  ]);
  // Registered over the API: NOTIFY targets and receipts.
  for (const [id, d, zones, link] of [
    ["knot", knot, ["s.test", "big.test"], undefined],
    ["knot-lossy", knot, ["lossy.test"], { loss: 1 }],
    ["bind", bind, ["s.test"], undefined],
    ["nsd", nsd, ["s.test"], undefined],
  ] as const) {
    const r = await api("PUT", `/v1/secondaries/${id}`, {
      dns: `127.0.0.1:${d.port}`,
      zones,
      key: "xfr-key",
      ...(link && { link }),
    });
    expect(r.status).toBe(200);
  }
}, 60_000);

afterAll(async () => {
  await Promise.all([knot?.stop(), bind?.stop(), nsd?.stop()]);
  await origin?.close();
});

describe("Knot, BIND and NSD as secondaries", () => {
  it("take the zone by AXFR with TSIG", async () => {
    for (const d of [knot, bind, nsd])
      await waitFor(
        `${d.kind} to serve s.test`,
        async () => (await soaSerial(d.port, "s.test")) === serialOf("s.test"),
      );
    expect(
      logs.some((l) => /xfr: AXFR of s\.test to 127\.0\.0\.1 \(tcp, key xfr-key\): axfr/.test(l)),
    ).toBe(true);
  });

  it("follow 20 changes by NOTIFY + IXFR; dig at each shows every change; receipts INSYNC", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await api("PUT", `/v1/zones/s.test/rrsets/c${i}/TXT`, {
        ttl: 300,
        data: [[`change ${i}`]],
      });
      expect(r.status).toBe(200);
      ids.push(r.json.changeId as string);
    }
    const last = serialOf("s.test");
    for (const d of [knot, bind, nsd])
      await waitFor(
        `${d.kind} at serial ${last}`,
        async () => (await soaSerial(d.port, "s.test")) === last,
      );
    const batch = join(knot.dir, "..", `dig-batch-${process.pid}`);
    await writeFile(
      batch,
      Array.from({ length: 20 }, (_, i) => `c${i}.s.test TXT +short`).join("\n"),
    );
    for (const d of [knot, bind, nsd]) {
      const { stdout } = await run("dig", ["@127.0.0.1", "-p", String(d.port), "-f", batch]);
      expect(stdout.trim().split("\n"), d.kind).toEqual(
        Array.from({ length: 20 }, (_, i) => `"change ${i}"`),
      );
    }
    expect(
      logs.some((l) =>
        /xfr: IXFR of s\.test from serial \d+ to 127\.0\.0\.1 \(tcp, key xfr-key\): ixfr at/.test(
          l,
        ),
      ),
    ).toBe(true);
    for (const id of ids) {
      await waitFor(
        `receipts of ${id}`,
        async () => (await api("GET", `/v1/changes/${id}`)).json.status === "INSYNC",
      );
      const status = (await api("GET", `/v1/changes/${id}`)).json as {
        nodes: { id: string; tier: string; status: string }[];
      };
      expect(status.nodes.map((n) => [n.id, n.tier, n.status]).sort()).toEqual([
        ["bind", "secondary", "INSYNC"],
        ["knot", "secondary", "INSYNC"],
        ["nsd", "secondary", "INSYNC"],
      ]);
    }
    const listed = (await api("GET", "/v1/secondaries")).json.secondaries as {
      id: string;
      serials: Record<string, number>;
    }[];
    expect(listed.find((s) => s.id === "nsd")?.serials["s.test"]).toBe(last);
  });

  it("a zone of 20,000 RRsets transfers intact (Knot's AXFR equals ours)", async () => {
    await waitFor(
      "knot to serve big.test",
      async () => (await soaSerial(knot.port, "big.test")) === serialOf("big.test"),
    );
    const y = `${key.algorithm}:${key.name}:${key.secret.toString("base64")}`;
    const lines = (out: string) =>
      out
        .split("\n")
        .filter((l) => /\tIN\t/.test(l))
        .map((l) => l.replace(/\s+/g, " "))
        .sort();
    const ours = lines(
      await kdigText(["@127.0.0.1", "-p", String(origin.dns.port), "-y", y, "big.test", "AXFR"]),
    );
    const theirs = lines(
      await kdigText(["@127.0.0.1", "-p", String(knot.port), "big.test", "AXFR"]),
    );
    expect(ours.length).toBe(20_000 + 2);
    expect(theirs).toEqual(ours);
  });

  it("a transfer without the key, or with a wrong one, is refused and logged", async () => {
    await waitFor(
      "both refusals in the log",
      () =>
        logs.some((l) =>
          /xfr: REFUSED to 127\.0\.0\.1 \(tcp, unsigned\): (AXFR|IXFR) of nokey\.test/.test(l),
        ) && logs.some((l) => /dns: TSIG BADKEY from 127\.0\.0\.1 .*key xfr-key\.wrong/.test(l)),
    );
    expect(await soaSerial(knot.port, "nokey.test")).toBeUndefined();
    expect(await soaSerial(knot.port, "badkey.test")).toBeUndefined();
  });

  it("with every NOTIFY lost (loss = 1), Knot still converges by its SOA refresh (2 s)", async () => {
    await waitFor(
      "knot to serve lossy.test",
      async () => (await soaSerial(knot.port, "lossy.test")) === serialOf("lossy.test"),
    );
    const start = Date.now();
    const r = await api("PUT", "/v1/zones/lossy.test/rrsets/www/A", {
      ttl: 300,
      data: ["192.0.2.99"],
    });
    const id = r.json.changeId as string;
    await waitFor(
      "the lossy receipt",
      async () => (await api("GET", `/v1/changes/${id}`)).json.status === "INSYNC",
      10_000,
    );
    // SOA refresh 2 s + retry 1 s bound the wait; a loaded machine gets a little slack.
    expect(Date.now() - start).toBeLessThan(2000 + 1000 + 2000);
    const { stdout } = await run("dig", [
      "@127.0.0.1",
      "-p",
      String(knot.port),
      "www.lossy.test",
      "A",
      "+short",
    ]);
    expect(stdout.trim()).toBe("192.0.2.99");
    const { samples } = await scrape(`${origin.httpUrl}/metrics`);
    const notifies = [...samples].filter(([k]) => k.startsWith("origin_notify_out_total"));
    expect(
      samples.get('origin_notify_out_total{result="lost-loss"}'),
      `${notifies}`,
    ).toBeGreaterThan(0);
    expect(
      samples.get('origin_notify_out_total{result="answered"}'),
      `${notifies}`,
    ).toBeGreaterThan(0);
  });
});
