/**
 * A catalog zone (RFC 9432 v2): a Knot secondary configured with nothing but
 * the origin's catalog picks up a zone created through the API, and drops a
 * deleted one, without being reconfigured.
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
import { type Daemon, kdigText, soaSerial, startDaemon, waitFor } from "../support/dns-daemons.ts";
import { knotCatalogConsumer } from "../support/secondary-configs.ts";

const run = promisify(execFile);
const TOKEN = "catalog-token-12345";
let origin: RunningOrigin;
let key: TsigKey;
let knot: Daemon;

async function api(method: string, path: string, body?: string) {
  const res = await fetch(`${origin.httpUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "text/dns" },
    ...(body !== undefined && { body }),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

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
  knot = await startDaemon("knot", (d, p) =>
    knotCatalogConsumer(d, p, origin.dns.port, key, "catalog.test"),
  );
  const r = await fetch(`${origin.httpUrl}/v1/secondaries/knot-catalog`, {
    method: "PUT",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ dns: `127.0.0.1:${knot.port}`, key: "cat-key" }),
  });
  expect(r.status).toBe(200);
}, 30_000);

afterAll(async () => {
  await knot?.stop();
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

  it("Knot, which knows only the catalog, serves a zone created through the API, and drops a deleted one", async () => {
    await waitFor(
      "knot to serve first.test from the catalog",
      async () => (await soaSerial(knot.port, "first.test")) === 1,
    );
    const created = await api("PUT", "/v1/zones/added.test", zoneFile("added.test"));
    expect(created.status).toBe(201);
    await waitFor(
      "knot to serve added.test",
      async () => (await soaSerial(knot.port, "added.test")) === 1,
    );
    const { stdout } = await run("dig", [
      "@127.0.0.1",
      "-p",
      String(knot.port),
      "www.added.test",
      "A",
      "+short",
    ]);
    expect(stdout.trim()).toBe("192.0.2.1");
    expect((await api("DELETE", "/v1/zones/first.test")).status).toBe(200);
    await waitFor(
      "knot to drop first.test",
      async () => (await soaSerial(knot.port, "first.test")) === undefined,
    );
  });
});
