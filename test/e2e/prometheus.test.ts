/**
 * A real Prometheus (Debian's `prometheus`) scrapes a topology started with
 * `propagate up --prometheus FILE`: every node's target turns up, and a
 * counter moved by a change (changes applied, summed over the nodes) is
 * queried back through its HTTP API.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../support/net.ts";
import { type Running, startPropagate } from "../support/process.ts";
import { waitFor } from "../support/wait.ts";

const GRAFANA = new URL("../../infra/grafana/propagate.json", import.meta.url);
let dir: string;
let up: Running;
let prom: ChildProcess;
let promUrl: string;
let promLog = "";

const any = "127.0.0.1:0";
const topology = {
  name: "prom",
  origin: { http: any, dns: any, sample: true },
  edges: [
    { id: "regional-1", tier: "regional", parent: "origin", http: any },
    { id: "edge-1", parent: "regional-1", http: any },
  ],
  resolvers: [{ id: "res-1", upstream: "edge-1", dns: any, admin: any }],
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "propagate-prom-"));
  const file = join(dir, "topology.json");
  await writeFile(file, JSON.stringify(topology));
  const config = join(dir, "prometheus.yml");
  up = await startPropagate([
    "up",
    "--topology",
    file,
    "--data",
    join(dir, "origin"),
    "--prometheus",
    config,
  ]);
  // The ready line comes after the config is written.
  expect(await readFile(config, "utf8")).toMatch(/job_name: "propagate"/);
  promUrl = `http://127.0.0.1:${await freePort()}`;
  prom = spawn(
    "prometheus",
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, "tsdb")}`,
      `--web.listen-address=${new URL(promUrl).host}`,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  prom.stderr?.on("data", (c: Buffer) => {
    promLog += c.toString();
  });
}, 30_000);

afterAll(async () => {
  if (prom && prom.exitCode === null) {
    const exited = new Promise((r) => prom.once("exit", r));
    prom.kill("SIGTERM");
    await exited;
  }
  await up?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function api<T>(path: string): Promise<T | undefined> {
  try {
    const res = await fetch(`${promUrl}${path}`);
    if (!res.ok) return undefined;
    return ((await res.json()) as { data: T }).data;
  } catch {
    return undefined; // not listening yet
  }
}

/** Polls `probe` until it returns a value, or fails naming `what` with Prometheus's log. */
const until = <T>(what: string, probe: () => Promise<T | undefined>) =>
  waitFor(() => `${what}; prometheus said:\n${promLog.slice(-2000)}`, probe, 40_000, 250);

interface Target {
  labels: Record<string, string>;
  health: string;
  lastError: string;
}

describe("propagate up --prometheus", () => {
  it("Prometheus scrapes every node, and sees the counters a change moved", async () => {
    const targets = await until("every target up", async () => {
      const d = await api<{ activeTargets: Target[] }>("/api/v1/targets");
      const active = d?.activeTargets ?? [];
      return active.length === 4 && active.every((t) => t.health === "up") ? active : undefined;
    });
    expect(targets.map((t) => t.labels.id).sort()).toEqual([
      "edge-1",
      "origin",
      "regional-1",
      "res-1",
    ]);

    const put = await fetch(`${up.ready.origin}/v1/zones/example.test/rrsets/www/A`, {
      method: "PUT",
      headers: { authorization: `Bearer ${up.ready.token}`, "content-type": "application/json" },
      body: JSON.stringify({ ttl: 60, data: ["192.0.2.55"] }),
    });
    expect(put.status).toBe(200);

    // Each of the three cache nodes applies the change; Prometheus sees the sum move.
    const query = encodeURIComponent("sum(propagate_purges_applied_total)");
    const applied = await until("the change counted by every node", async () => {
      const d = await api<{ result: { value: [number, string] }[] }>(
        `/api/v1/query?query=${query}`,
      );
      const v = Number(d?.result[0]?.value[1] ?? 0);
      return v >= 3 ? v : undefined;
    });
    expect(applied).toBeGreaterThanOrEqual(3);
    const receipts = encodeURIComponent('propagate_receipt_seconds_count{node="origin"}');
    const r = await until("receipts at the origin", async () => {
      const d = await api<{ result: { value: [number, string] }[] }>(
        `/api/v1/query?query=${receipts}`,
      );
      const v = Number(d?.result[0]?.value[1] ?? 0);
      return v >= 3 ? v : undefined;
    });
    expect(r).toBeGreaterThanOrEqual(3);
  }, 90_000);

  it("every query of the Grafana dashboard is PromQL this Prometheus accepts", async () => {
    const board = JSON.parse(await readFile(GRAFANA, "utf8")) as {
      panels: { title: string; targets: { expr: string }[] }[];
    };
    const exprs = board.panels.flatMap((p) => p.targets.map((t) => t.expr));
    expect(exprs.length).toBeGreaterThan(8);
    for (const expr of exprs) {
      // Grafana fills $__rate_interval in; a literal range stands for it here.
      const q = encodeURIComponent(expr.replaceAll("$__rate_interval", "10s"));
      const res = await fetch(`${promUrl}/api/v1/query?query=${q}`);
      expect(res.status, `${expr}: ${await res.clone().text()}`).toBe(200);
    }
  });
});
