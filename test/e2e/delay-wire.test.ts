/**
 * The delay model, measured on the wire: requests to a real origin over
 * loopback pass through a seeded lognormal link, and the times a client
 * measures follow the model's distribution (Kolmogorov-Smirnov).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RealClock } from "../../core/clock.ts";
import { LinkDelay, wrapFetch } from "../../core/delay.ts";
import { type RunningOrigin, startOrigin } from "../../origin/server.ts";

let dir: string;
let origin: RunningOrigin;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "delay-wire-"));
  origin = await startOrigin(
    {
      http: { host: "127.0.0.1", port: 0 },
      dns: { host: "127.0.0.1", port: 0 },
      dataDir: dir,
      sample: true,
    },
    { log: () => {} },
  );
});
afterAll(async () => {
  await origin?.close();
  await rm(dir, { recursive: true, force: true });
});

/** Times (ms) of `n` GETs through `doFetch`, `batch` at a time. */
async function time(doFetch: typeof fetch, n: number, batch: number): Promise<number[]> {
  const url = `${origin.httpUrl}/resolve?name=www.example.test&type=A`;
  const out: number[] = [];
  for (let i = 0; i < n; i += batch) {
    await Promise.all(
      Array.from({ length: Math.min(batch, n - i) }, async () => {
        const t0 = performance.now();
        await (await doFetch(url)).arrayBuffer();
        out.push(performance.now() - t0);
      }),
    );
  }
  return out.sort((a, b) => a - b);
}

describe("link delay on the wire", () => {
  it("measured request times follow the configured lognormal model", async () => {
    const clock = new RealClock();
    const link = new LinkDelay(
      { latency: { kind: "lognormal", medianMs: 40, sigma: 0.5 } },
      "wire-test",
      clock,
    );
    const n = 200;
    await time(fetch, 10, 1); // warm up the connection and the code paths
    const base = await time(fetch, 30, 1);
    const overhead = base[Math.floor(base.length / 2)]!; // the loopback round trip itself
    const measured = (await time(wrapFetch(fetch, link, clock) as typeof fetch, n, 10)).map(
      (t) => t - overhead,
    );

    // KS statistic: the largest gap between the measured ECDF and the model's CDF.
    let d = 0;
    for (const [i, t] of measured.entries()) {
      const f = link.cdf(t);
      d = Math.max(d, Math.abs((i + 1) / n - f), Math.abs(i / n - f));
    }
    // Critical value at alpha = 0.001 is 1.95 / sqrt(n) ~ 0.14; allow for timer
    // and scheduling noise of a shared machine on top.
    expect(d).toBeLessThan(0.2);
    const median = measured[Math.floor(n / 2)]!;
    expect(median).toBeGreaterThan(40 * 0.8);
    expect(median).toBeLessThan(40 * 1.4);
  });

  it("a lossy link fails about the configured share of requests", async () => {
    const link = new LinkDelay({ loss: 0.3 }, "wire-loss", new RealClock());
    const lossy = wrapFetch(fetch, link, new RealClock());
    let failed = 0;
    for (let i = 0; i < 200; i++) {
      try {
        await (await lossy(`${origin.httpUrl}/healthz`)).arrayBuffer();
      } catch {
        failed++;
      }
    }
    // Binomial(200, 0.3): mean 60, sd 6.5; 4 sd either side.
    expect(failed).toBeGreaterThan(34);
    expect(failed).toBeLessThan(86);
  });
});
