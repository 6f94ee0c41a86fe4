/**
 * Rate limits: BIND-style response rate limiting on the origin's UDP front
 * (drop, every slip-th truncated so a real client retries over TCP), and a
 * per-client token bucket on the HTTP API (429 with Retry-After). The rules on
 * the virtual clock, then the wire with dig and fetch.
 */
import dgram from "node:dgram";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VirtualClock } from "../../core/clock.ts";
import {
  netblock,
  RateLimiter,
  ResponseRateLimiter,
  truncatedResponse,
} from "../../core/rate-limit.ts";
import { type RunningOrigin, startOrigin } from "../../origin/server.ts";
import { dig } from "../support/dig.ts";
import { waitFor } from "../support/wait.ts";

/** An answer-shaped message: header, question www.example.test/A, rcode `rcode`. */
function response(rcode = 0): Buffer {
  const q = Buffer.concat([
    Buffer.from("\x03www\x07example\x04test\x00", "latin1"),
    Buffer.of(0, 1, 0, 1),
  ]);
  const head = Buffer.of(0x12, 0x34, 0x84, rcode, 0, 1, 0, 1, 0, 0, 0, 0);
  return Buffer.concat([head, q, Buffer.alloc(16, 0xaa)]);
}

describe("rate limit rules (virtual clock)", () => {
  it("a token bucket per key refills at its rate and says when to retry", () => {
    const clock = new VirtualClock(0);
    const l = new RateLimiter(clock, 2, 3);
    expect([1, 2, 3, 4].map(() => l.allow("a"))).toEqual([true, true, true, false]);
    expect(l.allow("b")).toBe(true);
    expect(l.retryAfter("a")).toBe(1);
    clock.advanceSync(500);
    expect([l.allow("a"), l.allow("a")]).toEqual([true, false]);
    expect(() => new RateLimiter(clock, 0, 1)).toThrow(/positive/);
  });

  it("RRL: identical responses to one /24 beyond the rate are dropped, every 2nd slips (TC)", () => {
    const clock = new VirtualClock(0);
    const rrl = new ResponseRateLimiter(clock, { responsesPerSecond: 5, slip: 2 });
    const verdicts = Array.from({ length: 15 }, () => rrl.judge("192.0.2.7", response()));
    expect(verdicts.slice(0, 5)).toEqual(Array(5).fill("send"));
    expect(verdicts.slice(5)).toEqual([
      "drop",
      "slip",
      "drop",
      "slip",
      "drop",
      "slip",
      "drop",
      "slip",
      "drop",
      "slip",
    ]);
    // Another address of the same /24 shares the budget; another /24, another rcode do not.
    expect(rrl.judge("192.0.2.200", response())).not.toBe("send");
    expect(rrl.judge("198.51.100.1", response())).toBe("send");
    expect(rrl.judge("192.0.2.7", response(3))).toBe("send");
    clock.advanceSync(1_000);
    expect(rrl.judge("192.0.2.7", response())).toBe("send");
    expect(rrl.counts).toMatchObject({ dropped: 6, slipped: 5 });
  });

  it("netblocks: IPv4 /24, IPv6 /56", () => {
    expect(netblock("192.0.2.77")).toBe("192.0.2.0/24");
    expect(netblock("::ffff:192.0.2.77")).toBe("192.0.2.0/24");
    expect(netblock("2001:db8:1:2345::1")).toBe("2001:0db8:0001:2300::/56");
  });

  it("a slip is the header and question with TC set and no records", () => {
    const tc = truncatedResponse(response());
    expect(tc.length).toBe(12 + 22);
    expect(tc[2]! & 0x02).toBe(0x02);
    expect([tc.readUInt16BE(4), tc.readUInt16BE(6), tc.readUInt16BE(10)]).toEqual([1, 0, 0]);
  });
});

describe("rate limits on the wire", () => {
  let dir: string;
  let origin: RunningOrigin;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "propagate-rrl-"));
    origin = await startOrigin(
      {
        http: { host: "127.0.0.1", port: 0 },
        dns: { host: "127.0.0.1", port: 0 },
        dataDir: dir,
        sample: true,
        token: "rate-limit-token",
        rrl: { responsesPerSecond: 5, slip: 2 },
        apiRateLimit: { perSecond: 1, burst: 3 },
      },
      { log: () => {} },
    );
  });
  afterAll(async () => {
    await origin?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("RRL on UDP: a flood gets 5 answers and truncated slips; dig still gets its answer over TCP", async () => {
    const [host, port] = origin.dnsAddr.split(":") as [string, string];
    const sock = dgram.createSocket("udp4");
    const replies: Buffer[] = [];
    sock.on("message", (m) => replies.push(m));
    await new Promise<void>((r) => sock.bind(0, "127.0.0.1", r));
    const q = Buffer.concat([
      Buffer.of(0, 7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0),
      Buffer.from("\x03www\x07example\x04test\x00", "latin1"),
      Buffer.of(0, 1, 0, 1),
    ]);
    for (let i = 0; i < 40; i++) sock.send(q, Number(port), host);
    // 5 answers and about 17 slips come back; then wait until the replies stop growing.
    await waitFor("the flood's replies", () => replies.length >= 20, 5_000);
    let seen = -1;
    while (seen !== replies.length) {
      seen = replies.length;
      await new Promise((r) => setTimeout(r, 200));
    }
    sock.close();
    const full = replies.filter((r) => (r[2]! & 0x02) === 0);
    const truncated = replies.filter((r) => (r[2]! & 0x02) !== 0);
    expect(full.length).toBeLessThanOrEqual(6); // 5 per second, one more if a second turned
    expect(truncated.length).toBeGreaterThan(10);
    expect(full.length + truncated.length).toBeLessThan(40); // the rest were dropped
    // dig takes the TC slip and asks again over TCP, which is never limited.
    const out = await dig([`@${host}`, "-p", port, "www.example.test", "A"]);
    expect(out).toMatch(/^www\.example\.test\.\s+\d+\s+IN\s+A\s+192\.0\.2\.10$/m);
  });

  it("the HTTP API limits each client: 429 with Retry-After and a reason; cache reads are not limited", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await fetch(`${origin.httpUrl}/v1/zones`)).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const refused = await fetch(`${origin.httpUrl}/v1/zones`);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(await refused.json()).toMatchObject({
      error: "too many requests",
      reason: expect.stringMatching(/3 requests at once or 1\/s from 127\.0\.0\.1/),
    });
    for (let i = 0; i < 10; i++) {
      const read = await fetch(`${origin.httpUrl}/resolve?name=www.example.test&type=A`);
      expect(read.status).toBe(200);
      await read.arrayBuffer();
    }
  });
});
