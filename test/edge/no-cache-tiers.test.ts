/**
 * A request with Cache-Control: no-cache (a resolver's prefetch) revalidates
 * every tier up to the origin (RFC 9111 §5.2.1.4), so it gets a copy fresher
 * than the one about to expire. Without forwarding the directive the regional
 * would answer 304 from its own copy, which expires when the edge's does.
 */
import { describe, expect, it } from "vitest";
import { VirtualClock } from "../../core/clock.ts";
import { FakeParent, get, makeEdge, START, settle } from "./support.ts";

describe("no-cache through the tiers", () => {
  it("an edge's no-cache request revalidates the regional too; the answer is fresh again", async () => {
    const clock = new VirtualClock(START);
    const origin = new FakeParent(clock);
    const regional = makeEdge(clock, origin.fetch, { id: "regional-1" });
    const edge = makeEdge(clock, (r) => regional.handle(r), { id: "edge-1" });

    await (await settle(clock, edge.handle(get()))).arrayBuffer();
    expect(origin.calls).toBe(1);
    await clock.advance(55_000);
    const plain = await settle(clock, edge.handle(get()));
    expect(Number(plain.headers.get("age"))).toBeGreaterThanOrEqual(55);
    expect(origin.calls).toBe(1);

    const prefetch = await settle(
      clock,
      edge.handle(get(undefined, { "cache-control": "no-cache" })),
    );
    expect(prefetch.status).toBe(200);
    // Fresh from the origin: only the conservative age of RFC 9111 §4.2.3 (the origin's
    // whole-second Date, up to 1 s a tier), not the 55 s the tiers' copies had.
    expect(Number(prefetch.headers.get("age") ?? 0)).toBeLessThanOrEqual(2);
    expect(origin.calls).toBe(2); // the regional asked the origin (a conditional request)
    expect(origin.requests[1]!.headers.get("if-none-match")).toBe('"1"');
    // Both tiers now hold the revalidated copy: a plain request is fresh for another minute.
    await clock.advance(30_000);
    const later = await settle(clock, edge.handle(get()));
    expect(Number(later.headers.get("age"))).toBeLessThanOrEqual(32);
    expect(origin.calls).toBe(2);
  });
});
