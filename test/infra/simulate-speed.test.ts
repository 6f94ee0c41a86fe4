import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { fuzzCase, fuzzOptions } from "../../infra/sim/fuzz.ts";
import { generateTopology } from "../../infra/sim/generate.ts";
import { type SimOptions, type SimResult, simulate } from "../../infra/sim/run.ts";
import { loadTopology } from "../../infra/topology.ts";

const path = fileURLToPath(new URL("../../infra/topologies/default.json", import.meta.url));
const internet = fileURLToPath(new URL("../../infra/topologies/internet.json", import.meta.url));
/** Every shortcut off: what --slow-path runs. */
const SLOW = {
  lazyPolls: false,
  lazyClients: false,
  lightHops: false,
  settleInTurn: false,
} as const;
const strip = (r: SimResult) => ({
  nodes: r.nodes,
  load: r.originLoad,
  events: r.events,
  failures: r.failures,
  simulatedMs: r.simulatedMs,
  violation: r.violation,
});

describe("simulate: polls that find nothing are computed, not fired", () => {
  it("gives the same result as the slow path, in every purge mode and on a fixed schedule", async () => {
    const topology = generateTopology(await loadTopology(path), 8, 80);
    const base: SimOptions = {
      topology,
      mode: "invalidate",
      changes: 3,
      seed: 4,
      zone: { ttl: 30, staleWhileRevalidate: 10, staleIfError: 86_400 },
      clientQps: 0.2,
    };
    for (const o of [
      base,
      { ...base, mode: "push" as const, everyMs: 20_000 },
      { ...base, mode: "soft" as const, topology: { ...topology, bus: "off" } },
    ]) {
      const slow = await simulate({
        ...o,
        lazyPolls: false,
        lightHops: false,
        settleInTurn: false,
      });
      const fast = await simulate(o);
      expect(strip(fast), o.mode).toEqual(strip(slow));
      expect(slow.pollsComputed).toBe(0);
      expect(fast.pollsComputed, o.mode).toBeGreaterThan(0);
      expect(fast.violation).toBeUndefined();
    }
  }, 120_000);
});

describe("simulate: client queries that meet a fresh answer are counted, not fired", () => {
  it("gives the same result as the slow path, with populations and with purges", async () => {
    const zone = { ttl: 20, staleWhileRevalidate: 10, staleIfError: 86_400 };
    for (const file of [internet, path]) {
      const topology = generateTopology(await loadTopology(file), 6, 120);
      const o: SimOptions = {
        topology,
        mode: "invalidate",
        changes: 3,
        seed: 11,
        zone,
        everyMs: 30_000,
        clientQps: 0.5,
      };
      const slow = await simulate({ ...o, ...SLOW });
      const fast = await simulate(o);
      expect(strip(fast), topology.name).toEqual(strip(slow));
      expect(slow.hitsComputed).toBe(0);
      expect(slow.lightHops).toBe(0);
      expect(fast.lightHops, topology.name).toBeGreaterThan(0);
      expect(slow.answersReused).toBe(0);
      expect(fast.answersReused, topology.name).toBeGreaterThan(0);
      // Most questions meet a fresh answer: they are answered without the engine,
      // and many of the clients' are counted without being fired (sim/clients.ts).
      expect(fast.hitsComputed, topology.name).toBeGreaterThan(slow.events / 10);
      expect(slow.arrivalsHeld).toBe(0);
      expect(fast.arrivalsHeld, topology.name).toBeGreaterThan(0);
      expect(fast.violation).toBeUndefined();
    }
  }, 120_000);

  it("gives the same result as the slow path under faults (fuzz cases: loss, partitions, outages)", async () => {
    let faulty = 0;
    for (let seed = 1; seed <= 10; seed++) {
      const o = fuzzOptions(fuzzCase(seed));
      if (fuzzCase(seed).faulty) faulty++;
      const slow = await simulate({ ...o, ...SLOW });
      const fast = await simulate(o);
      expect(strip(fast), `fuzz seed ${seed}`).toEqual(strip(slow));
    }
    expect(faulty).toBeGreaterThan(0);
  }, 120_000);
});
