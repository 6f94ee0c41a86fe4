/** Helpers for whole-topology tests: a topology on free ports, writes, receipts, dig. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseTopology } from "../../infra/topology.ts";
import { type RunningTopology, up } from "../../infra/up.ts";
import { dig } from "../support/dig.ts";

export async function startTopology(
  spec: Record<string, unknown>,
): Promise<RunningTopology & { dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), "propagate-e2e-"));
  const t = parseTopology(spec);
  const running = await up(t, { dataDir: dir, anyPort: true, log: () => {} });
  return {
    ...running,
    dir,
    close: async () => {
      await running.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function putA(t: RunningTopology, name: string, address: string, ttl = 60) {
  const res = await fetch(`${t.originUrl}/v1/zones/example.test/rrsets/${name}/A`, {
    method: "PUT",
    headers: { authorization: `Bearer ${t.token}`, "content-type": "application/json" },
    body: JSON.stringify({ ttl, data: [address] }),
  });
  if (!res.ok) throw new Error(`PUT failed: ${res.status} ${await res.text()}`);
  return (await res.json()) as { serial: number; changeId: string };
}

export interface ChangeStatus {
  kind: "change" | "purge";
  status: "PENDING" | "INSYNC";
  committedAt: number;
  convergedAt?: number;
  nodes: { id: string; status: string; latencyMs?: number }[];
}

export async function changeStatus(t: RunningTopology, id: string): Promise<ChangeStatus> {
  const res = await fetch(`${t.originUrl}/v1/changes/${id}`);
  return (await res.json()) as ChangeStatus;
}

/** Polls the receipts until the change converges or `timeoutMs` passes. */
export async function waitConverged(
  t: RunningTopology,
  id: string,
  timeoutMs: number,
): Promise<ChangeStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await changeStatus(t, id);
    if (s.status === "INSYNC" || Date.now() > deadline) return s;
    await new Promise((r) => setTimeout(r, 25));
  }
}

export function node(t: RunningTopology, id: string) {
  const n = t.nodes.find((x) => x.id === id);
  if (!n) throw new Error(`no node ${id}`);
  return n;
}

/** A small topology: origin, a regional edge, two edges, two resolvers. */
export function smallTopology(extra: Record<string, unknown> = {}) {
  return {
    name: "small",
    edges: [
      { id: "regional-1", tier: "regional", parent: "origin" },
      { id: "edge-1", parent: "regional-1" },
      { id: "edge-2", parent: "regional-1" },
    ],
    resolvers: [
      { id: "res-1", upstream: "edge-1" },
      { id: "res-2", upstream: "origin" },
    ],
    ...extra,
  };
}

/** The A records of `name` as `dig +short` prints them, asked of the resolver at `addr` (HOST:PORT). */
export async function digShort(addr: string, name: string): Promise<string> {
  const i = addr.lastIndexOf(":");
  return (await dig([`@${addr.slice(0, i)}`, "-p", addr.slice(i + 1), name, "A", "+short"])).trim();
}
