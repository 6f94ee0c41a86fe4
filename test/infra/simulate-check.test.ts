import { afterEach, describe, expect, it } from "vitest";
import { Checker } from "../../infra/sim/checker.ts";
import { type FuzzOutcome, fuzz, fuzzCase, fuzzLine, fuzzOptions } from "../../infra/sim/fuzz.ts";
import { simulate } from "../../infra/sim/run.ts";
import { counterexample } from "../../infra/simulate.ts";
import { ResolverCache, type Served } from "../../resolver/cache.ts";

const realLookup = ResolverCache.prototype.lookup;

/**
 * Breaks the resolver on purpose: once per run, a resolver that has already
 * served a newer answer from its cache serves the first answer it ever gave
 * instead (an older version, not marked stale).
 */
function serveAnOlderVersionOnce(): void {
  const first = new WeakMap<ResolverCache, Served>();
  const servedNewer = new WeakSet<ResolverCache>();
  let done = false;
  ResolverCache.prototype.lookup = function (this: ResolverCache, key, wireName, qtype) {
    const served = realLookup.call(this, key, wireName, qtype);
    if (served instanceof Promise || done) return served;
    const oldest = first.get(this);
    if (!oldest) first.set(this, served);
    else if (!served.stale && !oldest.answer.wire.equals(served.answer.wire)) {
      if (!servedNewer.has(this)) servedNewer.add(this);
      else {
        done = true;
        return oldest;
      }
    }
    return served;
  };
}

afterEach(() => {
  ResolverCache.prototype.lookup = realLookup;
});

/**
 * The fuzz case of `seed` on the slow path: the engine is patched under the
 * simulator, so every question must reach it (the fast path answers fresh
 * hits from a memo of what the unpatched engine does, sim/clients.ts).
 */
async function fuzzSlow(seed: number): Promise<FuzzOutcome> {
  const c = fuzzCase(seed);
  return { case: c, result: await simulate({ ...fuzzOptions(c), lazyClients: false }) };
}

/** The first fuzz seed from 1 whose case has resolvers and a purge mode. */
const SEED = (() => {
  for (let s = 1; ; s++) {
    const c = fuzzCase(s);
    if (c.topology.resolvers.length > 0 && c.mode !== "ttl" && !c.faulty) return s;
  }
})();

describe("simulate: checkers", () => {
  it("a short fuzz run is clean", async () => {
    const outcomes = await fuzz(1, 25);
    const broken = outcomes.filter((o) => o.result.violation).map(fuzzLine);
    expect(broken).toEqual([]);
    // The cases cover every mode and fault kind.
    const summaries = outcomes.map((o) => o.case.summary).join("\n");
    for (const word of ["ttl", "invalidate", "soft", "push", "origin restart", "bus outage"]) {
      expect(summaries).toContain(word);
    }
    expect(outcomes.some((o) => o.case.faulty && /link faults/.test(o.case.summary))).toBe(true);
    // And resolver populations (TTL stretching, serve-stale or not, purges or TTLs only).
    const pops = outcomes.flatMap((o) => o.case.topology.populations);
    expect(pops.length).toBeGreaterThan(0);
    expect(pops.some((p) => p.minTtl > 0) && pops.some((p) => p.purges)).toBe(true);
  }, 60_000);

  it("on a fixed schedule, a case with faults the predictor does not model is not held to the bound", async () => {
    // Each window is cut by the next change (--every): what is owed there is
    // what checkBound says, as for a window that runs its course.
    const faulty = [7, 21, 38, 42, 51].map(fuzzCase).filter((c) => c.faulty);
    expect(faulty.length).toBeGreaterThan(2);
    for (const c of faulty) {
      const r = await simulate({ ...fuzzOptions(c), everyMs: 20_000 });
      expect(r.violation, `seed ${c.seed}`).toBeUndefined();
    }
  }, 60_000);

  it("a lossy link may drop a refresh several times in a row: the window allows for it", async () => {
    // Case 232 run in ttl mode: res-2's refresh is lost twice in a row (10 % loss), each
    // loss followed by the resolver's 30 s recheck (RFC 8767 stale-refresh-time).
    const c = fuzzCase(232);
    expect(c.faulty).toBe(true);
    const r = await simulate({ ...fuzzOptions(c), mode: "ttl" });
    expect(r.violation).toBeUndefined();
  }, 60_000);

  it("a resolver whose refresh expired on the way converges within its bound (fuzz seeds 118066, 118345)", async () => {
    // No faults, stale-while-revalidate 0: a resolver asked its edge as the
    // edge's copy ended; the regional's fresh hit (ttl=0) revalidated it, and
    // the Age each tier rounds up put the answer a second past its TTL. The
    // resolver took that for a stale-if-error copy and served stale without
    // asking for its 30 s failure recheck: not fresh within the window.
    for (const seed of [118066, 118345]) {
      const [o] = await fuzz(seed, 1);
      expect(o!.case.faulty, `seed ${seed}`).toBe(false);
      expect(o!.case.topology.populations, `seed ${seed}`).toEqual([]);
      expect(o!.result.violation, `seed ${seed}`).toBeUndefined();
    }
  }, 30_000);

  it("a population that stretches TTLs and follows purges is held by its minimum TTL in ttl mode (fuzz seeds 1297, 3753, 4836)", async () => {
    // The predictor stretched the bound of populations that follow no purges
    // only; in a ttl-mode run none is sent, so every population's minimum TTL holds.
    for (const seed of [1297, 3753, 4836]) {
      const [o] = await fuzz(seed, 1);
      expect(o!.case.mode, `seed ${seed}`).toBe("ttl");
      expect(
        o!.case.topology.populations.some((p) => p.purges && p.minTtl > o!.case.zone.ttl),
        `seed ${seed}`,
      ).toBe(true);
      expect(o!.result.violation, `seed ${seed}`).toBeUndefined();
    }
  }, 30_000);

  it("catches a resolver that serves an older version once, with the seed that replays it", async () => {
    serveAnOlderVersionOnce();
    const first = await fuzzSlow(SEED);
    const x = first!.result.violation;
    expect(x?.rule).toBe("monotonic-reads");
    expect(x?.nodeId).toMatch(/^res-/);
    expect(x?.detail).toMatch(/served version \d+ after serving version \d+/);
    const line = fuzzLine(first!);
    expect(line).toContain(`replay: propagate simulate --fuzz 1 --seed ${SEED}`);
    // Same seed, same counterexample.
    serveAnOlderVersionOnce();
    const again = await fuzzSlow(SEED);
    expect(again!.result.violation).toEqual(x);
    // The run stopped there: unbroken, the same case runs on, and clean.
    ResolverCache.prototype.lookup = realLookup;
    const clean = await fuzzSlow(SEED);
    expect(clean!.result.violation).toBeUndefined();
    expect(clean!.result.simulatedMs).toBeGreaterThan(first!.result.simulatedMs);
  }, 60_000);

  it("catches a receipt that claims a version the node does not serve", () => {
    let now = 0;
    const c = new Checker(
      1,
      () => "edge-1",
      () => now,
    );
    c.changed(1);
    c.changed(2);
    c.served(0, 1, false);
    now = 50;
    c.acked(0, 2);
    now = 70;
    c.served(0, 1, true); // a marked stale answer (stale-if-error) is allowed
    expect(c.violation).toBeUndefined();
    c.served(0, 1, false);
    expect(c.violation).toEqual({
      rule: "true-receipts",
      nodeId: "edge-1",
      atMs: 70,
      detail: "served version 1 after acking serial 2 (version 2) at 50.000 ms",
    });
  });

  it("names the rule, the node and the replay command in the CLI's counterexample", async () => {
    serveAnOlderVersionOnce();
    const c = fuzzCase(SEED);
    const r = await simulate({
      topology: c.topology,
      mode: c.mode,
      changes: c.changes,
      seed: 9,
      zone: c.zone,
      clientQps: c.clientQps,
      lazyClients: false,
    });
    expect(r.violation?.rule).toBe("monotonic-reads");
    const text = counterexample(r, "9", ["--changes", "3", "--seed", "4", "--mode", "all"]);
    expect(text).toMatch(/^VIOLATION monotonic-reads \(\w+, seed 9\): node res-\d+ at [\d.]+ ms/);
    expect(text).toContain(`replay: propagate simulate --changes 3 --mode ${c.mode} --seed 9`);
  }, 60_000);
});
