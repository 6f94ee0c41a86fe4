/**
 * A topology file lists a real secondary (knotd) with its link model: the
 * launcher's origin NOTIFYs it through that link (300 ms fixed), TSIG-signed,
 * and its receipt turns INSYNC only after the link's delay.
 */
import { execFile } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseTsigKeys } from "../../core/tsig.ts";
import { parseTopology } from "../../infra/topology.ts";
import { type RunningTopology, up } from "../../infra/up.ts";
import { type Daemon, freePort, soaSerial, startDaemon, waitFor } from "../support/dns-daemons.ts";
import { scrape } from "../support/prom.ts";
import { knotSecondary } from "../support/secondary-configs.ts";

const run = promisify(execFile);
let topo: RunningTopology;
let knot: Daemon;
let dnsPort = 0;

beforeAll(async () => {
  const dir = await mkdtemp(join(tmpdir(), "propagate-topo-secondary-"));
  const keyText = (await run("tsig-keygen", ["-a", "hmac-sha512", "topo-key"])).stdout;
  await writeFile(join(dir, "keys.conf"), keyText);
  const key = parseTsigKeys(keyText)[0]!;
  const [httpPort, knotPort] = [await freePort(), await freePort()];
  dnsPort = await freePort();
  const t = parseTopology({
    bus: "memory",
    origin: {
      http: `127.0.0.1:${httpPort}`,
      dns: `127.0.0.1:${dnsPort}`,
      tsigKeys: join(dir, "keys.conf"),
      sample: true,
    },
    secondaries: [
      {
        id: "knot-1",
        dns: `127.0.0.1:${knotPort}`,
        zones: ["example.test"],
        key: "topo-key",
        link: { latency: { kind: "fixed", ms: 300 } },
      },
    ],
  });
  topo = await up(t, { dataDir: join(dir, "data"), log: () => {} });
  knot = await startDaemon(
    "knot",
    (d, p) => knotSecondary(d, p, dnsPort, key, [{ zone: "example.test" }]),
    knotPort,
  );
}, 30_000);

afterAll(async () => {
  await knot?.stop();
  await topo?.close();
});

describe("a topology's secondaries", () => {
  it("are NOTIFYed through their link's delay model; receipts wait for it", async () => {
    await waitFor(
      "knot to take example.test",
      async () => (await soaSerial(knot.port, "example.test")) !== undefined,
    );
    // The zone's creation was NOTIFYed through the same 300 ms link: wait until that
    // NOTIFY was answered, or it would reach Knot just after the change below and
    // carry the change with it, sooner than the link allows.
    await waitFor("the creation's NOTIFY answered", async () => {
      const { samples } = await scrape(`${topo.originUrl}/metrics`);
      return (samples.get('origin_notify_out_total{result="answered"}') ?? 0) >= 1;
    });
    const before = (await soaSerial(knot.port, "example.test"))!;
    const res = await fetch(`${topo.originUrl}/v1/zones/example.test/rrsets/topo/TXT`, {
      method: "PUT",
      headers: { authorization: `Bearer ${topo.token}`, "content-type": "application/json" },
      body: JSON.stringify({ data: [["via the topology"]] }),
    });
    const { changeId, serial } = (await res.json()) as { changeId: string; serial: number };
    expect(serial).toBe(before + 1);
    type Status = { status: string; nodes: { id: string; tier: string; latencyMs?: number }[] };
    let status: Status | undefined;
    await waitFor("knot-1 in sync", async () => {
      status = (await (await fetch(`${topo.originUrl}/v1/changes/${changeId}`)).json()) as Status;
      return status.status === "INSYNC";
    });
    const node = status!.nodes.find((n) => n.id === "knot-1")!;
    expect(node.tier).toBe("secondary");
    expect(node.latencyMs, JSON.stringify(status)).toBeGreaterThanOrEqual(300);
    expect(await soaSerial(knot.port, "example.test")).toBe(serial);
  });

  it("are checked like every node: an id used twice or a bad address is refused", () => {
    expect(() =>
      parseTopology({
        edges: [{ id: "x", parent: "origin" }],
        secondaries: [{ id: "x", dns: "127.0.0.1:53" }],
      }),
    ).toThrow(/node "x" .* is defined twice/);
    expect(() => parseTopology({ secondaries: [{ id: "k", dns: "nowhere" }] })).toThrow(
      /secondaries(\.0|\[0\])\.dns: expected HOST:PORT/,
    );
  });
});
