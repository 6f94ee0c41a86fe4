/**
 * A catalog zone (RFC 9432 v2): Knot and BIND secondaries configured with
 * nothing but the origin's catalog pick up a zone created through the API, and
 * drop a deleted one, without being reconfigured; their receipts follow.
 */
import { execFile } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseTsigKeys, type TsigKey } from "../../core/tsig.ts";
import { memberId } from "../../origin/catalog.ts";
import { type RunningOrigin, startOrigin } from "../../origin/server.ts";
import { originApi } from "../support/api.ts";
import { type Daemon, kdigText, soaSerial, startDaemon, waitFor } from "../support/dns-daemons.ts";
import { bindCatalogConsumer, knotCatalogConsumer } from "../support/secondary-configs.ts";

const run = promisify(execFile);
const TOKEN = "catalog-token-12345";
let origin: RunningOrigin;
let key: TsigKey;
let knot: Daemon;
let bind: Daemon;

/** Zone files are the bodies here. */
const api = (method: string, path: string, body?: string) =>
  originApi(origin.httpUrl, TOKEN, method, path, body, "text/dns");

const zoneFile = (zone: string) =>
  `$ORIGIN ${zone}.\n$TTL 300\n@ SOA ns host 1 3600 60 600 60\n@ NS ns\nns A 192.0.2.53\nwww A 192.0.2.1\n`;

beforeAll(async () => {
  const dir = await mkdtemp(join(tmpdir(), "propagate-catalog-"));
  const keyText = (await run("tsig-keygen", ["-a", "hmac-sha256", "cat-key"])).stdout;
  await writeFile(join(dir, "keys.conf"), keyText);
  key = parseTsigKeys(keyText)[0]!;
  origin = await startOrigin(
    {
      http: { host: "127.0.0.1", port: 0 },
      dns: { host: "127.0.0.1", port: 0 },
      dataDir: join(dir, "data"),
      token: TOKEN,
      tsigKeys: join(dir, "keys.conf"),
      allowTransfer: { "*": ["key:cat-key"] },
      catalog: "catalog.test",
    },
    { log: () => {} },
  );
  expect((await api("PUT", "/v1/zones/first.test", zoneFile("first.test"))).status).toBe(201);
  [knot, bind] = await Promise.all([
    startDaemon("knot", (d, p) => knotCatalogConsumer(d, p, origin.dns.port, key, "catalog.test")),
    startDaemon("bind", (d, p) => bindCatalogConsumer(d, p, origin.dns.port, key, "catalog.test")),
  ]);
  for (const d of [knot, bind]) {
    const r = await fetch(`${origin.httpUrl}/v1/secondaries/${d.kind}-catalog`, {
      method: "PUT",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ dns: `127.0.0.1:${d.port}`, key: "cat-key" }),
    });
    expect(r.status).toBe(200);
  }
}, 30_000);

afterAll(async () => {
  await Promise.all([knot?.stop(), bind?.stop()]);
  await origin?.close();
});

describe("catalog zone (RFC 9432 v2)", () => {
  it("lists every zone as a PTR under zones., with version 2", async () => {
    const y = `${key.algorithm}:${key.name}:${key.secret.toString("base64")}`;
    const out = await kdigText([
      "@127.0.0.1",
      "-p",
      String(origin.dns.port),
      "-y",
      y,
      "catalog.test",
      "AXFR",
    ]);
    expect(out).toMatch(/version\.catalog\.test\.\s+0\s+IN\s+TXT\s+"2"/);
    expect(out).toMatch(
      new RegExp(
        `${memberId("first.test")}\\.zones\\.catalog\\.test\\.\\s+0\\s+IN\\s+PTR\\s+first\\.test\\.`,
      ),
    );
    expect(out).toMatch(/catalog\.test\.\s+0\s+IN\s+NS\s+invalid\./);
  });

  it("Knot and BIND, which know only the catalog, serve a zone created through the API and drop a deleted one; receipts follow", async () => {
    const daemons = [knot, bind];
    for (const d of daemons)
      await waitFor(
        `${d.kind} to serve first.test from the catalog`,
        async () => (await soaSerial(d.port, "first.test")) === 1,
      );
    const created = await api("PUT", "/v1/zones/added.test", zoneFile("added.test"));
    expect(created.status).toBe(201);
    for (const d of daemons) {
      await waitFor(
        `${d.kind} to serve added.test`,
        async () => (await soaSerial(d.port, "added.test")) === 1,
      );
      const { stdout } = await run("dig", [
        "@127.0.0.1",
        "-p",
        String(d.port),
        "www.added.test",
        "A",
        "+short",
      ]);
      expect(stdout.trim()).toBe("192.0.2.1");
    }
    const deleted = await api("DELETE", "/v1/zones/first.test");
    expect(deleted.status).toBe(200);
    for (const d of daemons)
      await waitFor(
        `${d.kind} to drop first.test`,
        async () => (await soaSerial(d.port, "first.test")) === undefined,
      );
    // In sync with the create once each serves the zone, with the delete once each dropped it.
    for (const r of [created, deleted]) {
      const id = r.json.changeId as string;
      await waitFor(`receipts of ${id}`, async () => {
        const s = (await (await fetch(`${origin.httpUrl}/v1/changes/${id}`)).json()) as {
          nodes: { id: string; status: string }[];
        };
        return ["knot-catalog", "bind-catalog"].every((n) =>
          s.nodes.some((x) => x.id === n && x.status === "INSYNC"),
        );
      });
    }
  });
});
