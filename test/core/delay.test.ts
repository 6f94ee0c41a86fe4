import { describe, expect, it } from "vitest";
import { VirtualClock } from "../../core/clock.ts";
import {
  DelayModelError,
  delayed,
  type FetchLike,
  type Latency,
  LinkDelay,
  LinkDropError,
  parseLinkModel,
  wrapFetch,
} from "../../core/delay.ts";

const N = 10_000;

/** Delivered latencies of N messages, sorted. */
function samples(link: LinkDelay, n = N): number[] {
  const xs: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = link.sample();
    if (!s.dropped) xs.push(s.delayMs);
  }
  return xs.sort((a, b) => a - b);
}

/** Kolmogorov-Smirnov statistic of sorted samples against a CDF. */
function ks(sorted: number[], cdf: (x: number) => number): number {
  let d = 0;
  for (const [i, x] of sorted.entries()) {
    const f = cdf(x);
    d = Math.max(d, Math.abs(f - i / sorted.length), Math.abs((i + 1) / sorted.length - f));
  }
  return d;
}

/** KS critical value at alpha = 0.001: 1.95 / sqrt(n). */
const KS_CRITICAL = 1.95 / Math.sqrt(N);

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

function linkOf(latency: Latency, seed = 1, clock = new VirtualClock()): LinkDelay {
  return new LinkDelay({ latency }, seed, clock);
}

describe("link model schema", () => {
  it("fills defaults: fixed 0 ms, no loss, no partitions", () => {
    expect(parseLinkModel({})).toEqual({
      latency: { kind: "fixed", ms: 0 },
      loss: 0,
      partitions: [],
    });
    expect(parseLinkModel(undefined).latency).toEqual({ kind: "fixed", ms: 0 });
  });

  it("names the bad field in its error", () => {
    const bad = (input: unknown) => () => parseLinkModel(input, 'link "edge-1"');
    expect(bad({ latency: { kind: "lognormal", medianMs: -1, sigma: 0.5 } })).toThrow(
      /link "edge-1": invalid delay model: latency\.medianMs/,
    );
    expect(bad({ latency: { kind: "uniform", minMs: 10, maxMs: 5 } })).toThrow(
      /latency\.maxMs: maxMs must be >= minMs/,
    );
    expect(bad({ loss: 1.5 })).toThrow(/loss:/);
    expect(bad({ partitions: [{ startMs: 10, endMs: 10 }] })).toThrow(/partitions\[0\]\.endMs/);
    expect(bad({ latency: { kind: "gamma" } })).toThrow(/latency\.kind/);
    expect(bad({ latncy: {} })).toThrow(/latncy/);
    expect(bad({ loss: 2 })).toThrow(DelayModelError);
  });
});

describe("LinkDelay sampling matches the configured distribution (seed 1, N = 10,000)", () => {
  const cases: Latency[] = [
    { kind: "uniform", minMs: 5, maxMs: 15 },
    { kind: "normal", meanMs: 20, stddevMs: 5 },
    { kind: "normal", meanMs: 2, stddevMs: 5 }, // truncation at 0 matters here
    { kind: "lognormal", medianMs: 20, sigma: 0.5 },
    { kind: "lognormal", medianMs: 1, sigma: 1.5 },
  ];
  for (const latency of cases) {
    it(`${JSON.stringify(latency)}: KS, mean and quantiles`, () => {
      const link = linkOf(latency);
      const xs = samples(link);
      expect(xs.length).toBe(N);
      expect(xs[0]!).toBeGreaterThanOrEqual(0);
      expect(ks(xs, (x) => link.cdf(x))).toBeLessThan(KS_CRITICAL);
      const m = mean(xs);
      expect(Math.abs(m - link.expectedMs()) / link.expectedMs()).toBeLessThan(0.05);
      for (const p of [0.5, 0.9, 0.99]) {
        const empirical = xs[Math.floor(p * N)]!;
        // The empirical quantile sits where the CDF is within a few standard errors of p.
        expect(Math.abs(link.cdf(empirical) - p)).toBeLessThan(
          4 * Math.sqrt((p * (1 - p)) / N) + 1e-3,
        );
      }
    });
  }

  it("the KS check rejects a wrong model (negative control)", () => {
    const xs = samples(linkOf({ kind: "lognormal", medianMs: 20, sigma: 0.5 }));
    const wrong = linkOf({ kind: "normal", meanMs: 20, stddevMs: 5 });
    expect(ks(xs, (x) => wrong.cdf(x))).toBeGreaterThan(KS_CRITICAL);
  });

  it("fixed latency is exact", () => {
    const link = linkOf({ kind: "fixed", ms: 12 });
    expect(samples(link, 100).every((x) => x === 12)).toBe(true);
    expect(link.expectedMs()).toBe(12);
    expect(link.quantileMs(0.99)).toBe(12);
  });

  it("has closed-form means and quantiles", () => {
    expect(linkOf({ kind: "uniform", minMs: 5, maxMs: 15 }).quantileMs(0.25)).toBe(7.5);
    const ln = linkOf({ kind: "lognormal", medianMs: 20, sigma: 0.5 });
    expect(ln.quantileMs(0.5)).toBeCloseTo(20, 6);
    expect(ln.expectedMs()).toBeCloseTo(20 * Math.exp(0.125), 6);
    expect(ln.quantileMs(0.99)).toBeCloseTo(20 * Math.exp(0.5 * 2.326348), 3);
    // Far from 0 the truncated normal is the normal.
    const n = linkOf({ kind: "normal", meanMs: 100, stddevMs: 10 });
    expect(n.expectedMs()).toBeCloseTo(100, 6);
    expect(n.quantileMs(0.975)).toBeCloseTo(119.6, 1);
    // Half-normal: mean = sigma * sqrt(2/pi), median = sigma * 0.6745.
    const half = linkOf({ kind: "normal", meanMs: 0, stddevMs: 10 });
    expect(half.expectedMs()).toBeCloseTo(10 * Math.sqrt(2 / Math.PI), 5);
    expect(half.quantileMs(0.5)).toBeCloseTo(6.745, 2);
  });
});

describe("LinkDelay seeding, loss and partitions", () => {
  it("replays the same outcomes for the same seed, and the model's seed wins", () => {
    const model = { latency: { kind: "lognormal", medianMs: 20, sigma: 0.5 }, loss: 0.1 } as const;
    const run = (seed: number | string, m: object = model) => {
      const link = new LinkDelay(m, seed, new VirtualClock());
      return Array.from({ length: 200 }, () => link.sample());
    };
    expect(run(5)).toEqual(run(5));
    expect(run(5)).not.toEqual(run(6));
    expect(run(5, { ...model, seed: "fixed" })).toEqual(run(6, { ...model, seed: "fixed" }));
    expect(new LinkDelay({ ...model, seed: "fixed" }, 5, new VirtualClock()).seed).toBe("fixed");
  });

  it("parses a model object once for every link made from it, and refuses a bad one each time", () => {
    const model = { latency: { kind: "uniform", minMs: 5, maxMs: 15 } } as const;
    const a = new LinkDelay(model, 1, new VirtualClock());
    const b = new LinkDelay(model, 2, new VirtualClock());
    expect(b.model).toBe(a.model);
    expect(a.model.latency).toEqual({ kind: "uniform", minMs: 5, maxMs: 15 });
    // Another object with the same fields is parsed for itself.
    const c = new LinkDelay({ ...model }, 1, new VirtualClock());
    expect(c.model).not.toBe(a.model);
    expect(c.model).toEqual(a.model);
    // Each link keeps its own stream on the shared model.
    expect(a.sample()).not.toEqual(b.sample());
    const bad = { latency: { kind: "fixed", ms: -1 } };
    for (let k = 0; k < 2; k++)
      expect(() => new LinkDelay(bad as never, 1, new VirtualClock())).toThrow(
        /invalid delay model/,
      );
  });

  it("loses the configured fraction of messages", () => {
    const link = new LinkDelay({ loss: 0.1 }, 3, new VirtualClock());
    let lost = 0;
    for (let i = 0; i < N; i++) {
      const s = link.sample();
      if (s.dropped) {
        expect(s.reason).toBe("loss");
        lost++;
      }
    }
    // 1000 expected, sigma 30.
    expect(Math.abs(lost - 1000)).toBeLessThan(120);
  });

  it("drops what is sent during a partition window, relative to the run's start", async () => {
    const clock = new VirtualClock(1_000_000);
    const link = new LinkDelay({ partitions: [{ startMs: 100, endMs: 200 }] }, 1, clock);
    expect(link.sample()).toEqual({ dropped: false, delayMs: 0 });
    await clock.advance(100);
    expect(link.isPartitioned()).toBe(true);
    expect(link.sample()).toEqual({ dropped: true, reason: "partition" });
    await clock.advance(99);
    expect(link.sample().dropped).toBe(true);
    await clock.advance(1);
    expect(link.isPartitioned()).toBe(false);
    expect(link.sample().dropped).toBe(false);
    expect(link.isPartitioned(1_000_150)).toBe(true);
    const late = new LinkDelay({ partitions: [{ startMs: 100, endMs: 200 }] }, 1, clock, {
      startMs: 0,
    });
    expect(late.isPartitioned()).toBe(false);
  });

  it("a partition does not shift the sequence of later samples", async () => {
    const a = new LinkDelay(
      { latency: { kind: "uniform", minMs: 0, maxMs: 10 } },
      9,
      new VirtualClock(),
    );
    const clock = new VirtualClock();
    const b = new LinkDelay(
      { latency: { kind: "uniform", minMs: 0, maxMs: 10 }, partitions: [{ startMs: 0, endMs: 5 }] },
      9,
      clock,
    );
    for (let i = 0; i < 5; i++) a.sample();
    for (let i = 0; i < 5; i++) expect(b.sample().dropped).toBe(true);
    await clock.advance(5);
    expect(b.sample()).toEqual(a.sample());
  });

  it("describes itself for the start-up banner", () => {
    const clock = new VirtualClock();
    expect(
      new LinkDelay(
        {
          latency: { kind: "lognormal", medianMs: 20, sigma: 0.5 },
          loss: 0.01,
          partitions: [{ startMs: 0, endMs: 1 }],
        },
        1,
        clock,
      ).describe(),
    ).toBe("lognormal(median 20 ms, sigma 0.5), loss 1%, 1 partition");
    expect(new LinkDelay({}, 1, clock).describe()).toBe("fixed 0 ms, no loss");
    expect(
      new LinkDelay({ latency: { kind: "uniform", minMs: 5, maxMs: 15 } }, 1, clock).describe(),
    ).toBe("uniform(5..15 ms), no loss");
    expect(
      new LinkDelay({ latency: { kind: "normal", meanMs: 20, stddevMs: 5 } }, 1, clock).describe(),
    ).toBe("normal(mean 20 ms, stddev 5 ms, truncated at 0), no loss");
  });
});

describe("delayed", () => {
  it("runs fn after the sampled delay on the clock", async () => {
    const clock = new VirtualClock();
    const link = new LinkDelay({ latency: { kind: "fixed", ms: 50 } }, 1, clock);
    let ran = false;
    const p = delayed(clock, link, () => {
      ran = true;
      return "ok";
    });
    await clock.advance(49);
    expect(ran).toBe(false);
    await clock.advance(1);
    expect(await p).toEqual({ dropped: false, delayMs: 50, value: "ok" });
  });

  it("never runs fn when the link drops the message", async () => {
    const clock = new VirtualClock();
    let ran = false;
    const out = await delayed(clock, new LinkDelay({ loss: 1 }, 1, clock), () => {
      ran = true;
    });
    expect(out).toEqual({ dropped: true, reason: "loss" });
    expect(ran).toBe(false);
    expect(clock.pending).toBe(0);
  });

  it("runs at once without a link", async () => {
    expect(await delayed(new VirtualClock(), undefined, async () => 7)).toEqual({
      dropped: false,
      delayMs: 0,
      value: 7,
    });
  });
});

describe("wrapFetch", () => {
  const okFetch = (calls: string[], clock: VirtualClock): FetchLike => {
    return async (input) => {
      calls.push(`${String(input)}@${clock.now()}`);
      return new Response("hi");
    };
  };

  /** A fetch over a link of a fixed delay, and the requests it sent (URL@instant). */
  const overFixedLink = (ms: number) => {
    const clock = new VirtualClock();
    const calls: string[] = [];
    const f = wrapFetch(
      okFetch(calls, clock),
      new LinkDelay({ latency: { kind: "fixed", ms } }, 1, clock),
      clock,
    );
    return { clock, calls, f };
  };

  it("sends the request after the link's delay", async () => {
    const { clock, calls, f } = overFixedLink(30);
    const p = f("http://up/x");
    await clock.advance(29);
    expect(calls).toEqual([]);
    await clock.advance(1);
    expect(await (await p).text()).toBe("hi");
    expect(calls).toEqual(["http://up/x@30"]);
  });

  it("fails a dropped request like a network error, after dropAfterMs, without sending it", async () => {
    const clock = new VirtualClock();
    const calls: string[] = [];
    const link = new LinkDelay({ partitions: [{ startMs: 0, endMs: 1000 }] }, 1, clock);
    const f = wrapFetch(okFetch(calls, clock), link, clock, { dropAfterMs: 500 });
    const p = f("http://up/x");
    const settled = p.then(
      () => "resolved",
      (e: unknown) => e,
    );
    await clock.advance(499);
    expect(calls).toEqual([]);
    await clock.advance(1);
    const err = await settled;
    expect(err).toBeInstanceOf(LinkDropError);
    expect(err).toBeInstanceOf(TypeError);
    expect((err as LinkDropError).reason).toBe("partition");
    expect((err as Error).message).toMatch(/http:\/\/up\/x.*partition/);
    expect(calls).toEqual([]);
  });

  it("rejects, not throws, when its signal is already aborted", async () => {
    const { clock, calls, f } = overFixedLink(10);
    const p = f("http://a/", { signal: AbortSignal.abort(new Error("gone already")) });
    await expect(p).rejects.toThrow("gone already");
    expect(calls).toEqual([]);
    expect(clock.pending).toBe(0);
  });

  it("settles in as many promise turns as an async function awaiting the delay would", async () => {
    // The simulator orders the chains of one instant by their turns
    // (infra/sim/hop.ts): the wrapper must take those of
    // `async () => { await delay; return fetch() }`, for an answer and a drop.
    const turnsOf = async (start: (clock: VirtualClock) => Promise<unknown>): Promise<number> => {
      const clock = new VirtualClock();
      let turn = 0;
      let at = -1;
      const settled = () => {
        at = turn;
      };
      start(clock).then(settled, settled);
      clock.advanceSyncTo(10);
      for (; turn < 20; turn++) await Promise.resolve();
      return at;
    };
    const answer = () => Promise.resolve(new Response("x"));
    const reference = (drop: boolean) => async (clock: VirtualClock) => {
      await new Promise<void>((resolve) => clock.setTimeout(resolve, 10));
      if (drop) throw new TypeError("dropped");
      return answer();
    };
    const link = (clock: VirtualClock, drop: boolean) =>
      new LinkDelay(drop ? { loss: 1 } : { latency: { kind: "fixed", ms: 10 } }, 1, clock);
    for (const drop of [false, true]) {
      const wrapped = await turnsOf((clock) =>
        wrapFetch(answer, link(clock, drop), clock, { dropAfterMs: 10 })("http://a/"),
      );
      expect(wrapped).toBeGreaterThan(0);
      expect(wrapped).toBe(await turnsOf(reference(drop)));
    }
  });

  it("rejects at once by default, and honours an AbortSignal during the delay", async () => {
    const clock = new VirtualClock();
    const calls: string[] = [];
    await expect(
      wrapFetch(okFetch(calls, clock), new LinkDelay({ loss: 1 }, 1, clock), clock)("http://a/"),
    ).rejects.toThrow(LinkDropError);
    const slow = wrapFetch(
      okFetch(calls, clock),
      new LinkDelay({ latency: { kind: "fixed", ms: 100 } }, 1, clock),
      clock,
    );
    const ac = new AbortController();
    const p = slow("http://a/", { signal: ac.signal });
    ac.abort(new Error("client gave up"));
    await expect(p).rejects.toThrow("client gave up");
    await clock.advance(200);
    expect(calls).toEqual([]);
    expect(clock.pending).toBe(0);
  });
});
