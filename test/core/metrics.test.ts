/**
 * core/metrics.ts and core/prom.ts: the same families render the same names
 * through TextRegistry (workerd) and PromRegistry (prom-client); the fabric's
 * apply and bus-lag metrics on the virtual clock; label escaping.
 */
import { describe, expect, it } from "vitest";
import { VirtualClock } from "../../core/clock.ts";
import {
  FabricMetrics,
  FixedHistogram,
  type MetricsRegistry,
  TextRegistry,
  timed,
} from "../../core/metrics.ts";
import { PromRegistry } from "../../core/prom.ts";
import type { PurgeEvent, PurgeTarget } from "../../core/purge.ts";
import { parseExposition } from "../support/prom.ts";

function declare(r: MetricsRegistry, counts: { hits: number }) {
  r.sampled({ name: "x_hits_total", help: "hits", type: "counter", read: () => counts.hits });
  r.sampled({
    name: "x_by_reason_total",
    help: "by reason",
    type: "counter",
    labelNames: ["reason"],
    read: () => [[{ reason: 'say "hi"\\now' }, 2]],
  });
  const h = r.histogram({ name: "x_latency_seconds", help: "latency", buckets: [0.1, 1] });
  h.observe(0.05);
  h.observe(0.5);
  h.observe(5);
}

describe("TextRegistry and PromRegistry", () => {
  it("render the same samples, with the node label and escaped label values", async () => {
    const counts = { hits: 0 };
    const text = new TextRegistry("edge-1");
    const prom = new PromRegistry("edge-1");
    declare(text, counts);
    declare(prom, counts);
    counts.hits = 7;
    const a = parseExposition(await text.render());
    const b = parseExposition(await prom.render());
    for (const e of [a, b]) {
      expect([...e.nodes]).toEqual(["edge-1"]);
      expect(e.samples.get("x_hits_total")).toBe(7);
      expect(e.samples.get('x_by_reason_total{reason="say \\"hi\\"\\\\now"}')).toBe(2);
      expect(e.samples.get('x_latency_seconds_bucket{le="0.1"}')).toBe(1);
      expect(e.samples.get('x_latency_seconds_bucket{le="1"}')).toBe(2);
      expect(e.samples.get('x_latency_seconds_bucket{le="+Inf"}')).toBe(3);
      expect(e.samples.get("x_latency_seconds_count")).toBe(3);
      expect(e.samples.get("x_latency_seconds_sum")).toBeCloseTo(5.55);
      expect(e.types.get("x_latency_seconds")).toBe("histogram");
      expect(e.types.get("x_hits_total")).toBe("counter");
    }
    // Read at scrape time: the next scrape sees the new value.
    counts.hits = 9;
    expect(parseExposition(await text.render()).samples.get("x_hits_total")).toBe(9);
    expect(parseExposition(await prom.render()).samples.get("x_hits_total")).toBe(9);
  });

  it("a FixedHistogram counts each value in its first bucket, beyond the last only in count", () => {
    const h = new FixedHistogram([1, 2]);
    for (const v of [1, 1.5, 2, 3]) h.observe(v);
    expect([...h.counts]).toEqual([1, 2]);
    expect(h.count).toBe(4);
    expect(h.sum).toBe(7.5);
  });
});

describe("FabricMetrics on the virtual clock", () => {
  const event = (mode: PurgeEvent["mode"], ts: number): PurgeEvent => ({
    changeId: `chg_${mode}`,
    zone: "example.test",
    serial: 2,
    keys: ["www.example.test"],
    mode,
    ts,
  });

  it("counts applies by mode, times commit to apply, and keeps the bus lag", async () => {
    const clock = new VirtualClock(10_000);
    const registry = new TextRegistry("res-1");
    const fabric = new FabricMetrics(registry, clock);
    const applied: string[] = [];
    const target = fabric.observe({
      id: "res-1",
      applyPurge: (e: PurgeEvent) => {
        applied.push(e.changeId);
      },
    });
    clock.advanceSync(250);
    fabric.busEvent(event("invalidate", 10_000));
    target.applyPurge(event("invalidate", 10_000));
    target.applyPurge(event("soft", 10_200));
    fabric.purged("hard");
    const m = parseExposition(await registry.render()).samples;
    expect(applied).toEqual(["chg_invalidate", "chg_soft"]);
    expect(m.get('propagate_purges_applied_total{mode="invalidate"}')).toBe(1);
    expect(m.get('propagate_purges_applied_total{mode="soft"}')).toBe(1);
    expect(m.get('propagate_purges_applied_total{mode="hard"}')).toBe(1);
    expect(m.get("propagate_change_apply_seconds_count")).toBe(2);
    expect(m.get("propagate_change_apply_seconds_sum")).toBeCloseTo(0.25 + 0.05);
    expect(m.get('propagate_change_apply_seconds_bucket{le="0.05"}')).toBe(1);
    expect(m.get("propagate_bus_lag_seconds")).toBe(0.25);
  });

  it("an async apply is counted once it is done", async () => {
    const clock = new VirtualClock(0);
    const registry = new TextRegistry("edge-1");
    const fabric = new FabricMetrics(registry, clock);
    const slow: PurgeTarget = {
      id: "edge-1",
      applyPurge: () => new Promise<void>((r) => clock.setTimeout(r, 1_000)),
    };
    const target = fabric.observe(slow);
    const done = target.applyPurge(event("ttl", 0));
    let m = parseExposition(await registry.render()).samples;
    expect(m.get("propagate_change_apply_seconds_count")).toBe(0);
    await clock.advance(1_000);
    await done;
    m = parseExposition(await registry.render()).samples;
    expect(m.get('propagate_purges_applied_total{mode="ttl"}')).toBe(1);
    expect(m.get("propagate_change_apply_seconds_sum")).toBe(1);
  });

  it("timed() observes each call's duration, failures too", async () => {
    const clock = new VirtualClock(0);
    const h = new FixedHistogram([1, 10]);
    const slow = timed(
      (fail: boolean) =>
        new Promise<number>((resolve, reject) =>
          clock.setTimeout(() => (fail ? reject(new Error("down")) : resolve(1)), 2_000),
        ),
      h,
      clock,
    );
    const ok = slow(false);
    const bad = slow(true);
    await clock.advance(2_000);
    expect(await ok).toBe(1);
    await expect(bad).rejects.toThrow("down");
    expect(h.count).toBe(2);
    expect(h.sum).toBe(4);
  });
});
