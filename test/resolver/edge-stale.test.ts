/**
 * Serve-stale behind an edge, live: res-1 -> edge-1 -> origin. With the
 * origin gone, edge-1 answers from its stale copy (RFC 5861 stale-if-error,
 * Age past the TTL); res-1 takes that as a failed refresh (RFC 8767): dig
 * shows the old answer with TTL 30 and EDE 3, and res-1 asks edge-1 once per
 * 30 s (the stale TTL). The zone advertises stale-while-revalidate=0, so edge-1 goes straight
 * to stale-if-error once the record expires.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { node, putA, startTopology } from "../e2e/support.ts";
import { dig } from "../support/dig.ts";
import { scrape, total } from "../support/prom.ts";
import { waitFor } from "../support/wait.ts";

let running: Awaited<ReturnType<typeof startTopology>>;

beforeAll(async () => {
  running = await startTopology({
    name: "edge-stale",
    origin: { sample: false },
    defaults: { pollIntervalMs: 60_000, link: { latency: { kind: "fixed", ms: 0 } } },
    edges: [{ id: "edge-1", parent: "origin" }],
    resolvers: [{ id: "res-1", upstream: "edge-1" }],
  });
  const res = await fetch(`${running.originUrl}/v1/zones/example.test`, {
    method: "PUT",
    headers: { authorization: `Bearer ${running.token}`, "content-type": "application/json" },
    body: JSON.stringify({ staleWhileRevalidate: 0, staleIfError: 3600 }),
  });
  expect(res.status, await res.text()).toBeLessThan(300);
});

afterAll(async () => {
  await running?.close();
});

async function metrics(): Promise<Map<string, number>> {
  const { samples } = await scrape(`${node(running, "res-1").extra.admin}/metrics`, {
    headers: { authorization: `Bearer ${node(running, "res-1").token}` },
  });
  return samples;
}

describe("res-1 behind edge-1 when the origin is down", () => {
  it("answers the edge's stale copy as stale (TTL 30, EDE 3) and asks upstream once", async () => {
    const [host, port] = node(running, "res-1").address.split(":") as [string, string];
    const q = () => dig([`@${host}`, "-p", port, "flaky.example.test", "A"]);
    // TTL 2, not 1: RFC 9111 §4.2.3 ages a fill conservatively (the origin's whole-second
    // Date adds up to 1 s), so on a loaded machine a TTL-1 fill can arrive already past
    // its TTL; res-1 answers it with TTL 0 and keeps nothing (edge-1's Cache-Status shows
    // it refreshed: resolver/policy.ts `servedOnError`), and the first answer is not kept.
    await putA(running, "flaky", "192.0.2.66", 2);
    expect(await q()).toMatch(/^flaky\.example\.test\.\s+[012]\s+IN\s+A\s+192\.0\.2\.66$/m);

    const origin = node(running, "origin");
    await origin.close();
    origin.close = async () => {}; // closed once; the topology's close() must not close it again
    const start = await metrics();
    // Until the copies (TTL 2) expire, res-1 answers from its cache; the first query after
    // asks edge-1 once, gets its stale copy, and answers stale.
    await waitFor(
      "res-1 to answer stale",
      async () => /EDE: 3 \(Stale Answer\)/.test(await q()),
      10_000,
      100,
    );
    const before = await metrics();
    for (let i = 0; i < 4; i++) {
      const out = await q();
      expect(out).toMatch(/status: NOERROR/);
      expect(out).toMatch(/^flaky\.example\.test\.\s+30\s+IN\s+A\s+192\.0\.2\.66$/m);
      expect(out).toMatch(/EDE: 3 \(Stale Answer\)/);
    }
    const after = await metrics();
    const delta = (m: string, from = before) => total(after, m) - total(from, m);
    expect(delta("resolver_upstream_stale_total", start)).toBe(1);
    expect(delta("resolver_upstream_queries_total")).toBe(0);
    expect(delta("resolver_stale_answers_total")).toBe(4);
  });
});
