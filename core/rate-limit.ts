/**
 * Rate limits, pure on an injected clock: a token bucket per key (per-client
 * limits on the HTTP APIs), and response rate limiting for DNS fronts in the
 * spirit of BIND's RRL: identical responses to one client netblock beyond a
 * rate are dropped, except every `slip`-th, which is sent truncated (TC) so a
 * real client behind a spoofed address retries over TCP (RFC 7766), which
 * cannot be spoofed. UDP only: TCP answers are never limited.
 */
import type { Clock } from "./clock.ts";

interface Bucket {
  tokens: number;
  at: number;
}

/** A token bucket per key: `perSecond` refill, up to `burst` at once. Keys are bounded. */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly clock: Clock,
    readonly perSecond: number,
    readonly burst: number,
    private readonly maxKeys = 100_000,
  ) {
    if (!(perSecond > 0) || !(burst >= 1)) {
      throw new RangeError(`rate ${perSecond}/s with burst ${burst}: both must be positive`);
    }
  }

  /** Takes one token for `key`; false when its bucket is empty. */
  allow(key: string): boolean {
    const now = this.clock.now();
    let b = this.buckets.get(key);
    if (b === undefined) {
      if (this.buckets.size >= this.maxKeys) this.evictOldest();
      b = { tokens: this.burst, at: now };
      this.buckets.set(key, b);
    } else {
      b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.perSecond);
      b.at = now;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Seconds until `key` has a token again (for Retry-After). */
  retryAfter(key: string): number {
    const b = this.buckets.get(key);
    if (!b || b.tokens >= 1) return 0;
    return Math.ceil((1 - b.tokens) / this.perSecond);
  }

  private evictOldest(): void {
    const oldest = this.buckets.keys().next().value;
    if (oldest !== undefined) this.buckets.delete(oldest);
  }
}

export interface RrlOptions {
  /** Identical responses per second to one client netblock. */
  responsesPerSecond: number;
  /** Every slip-th response over the limit is sent truncated (TC); 0: drop them all. Default 2. */
  slip?: number;
}

export type RrlVerdict = "send" | "drop" | "slip";

/** BIND-style response rate limiting: per (client /24 or /56, question, rcode). */
export class ResponseRateLimiter {
  private readonly limiter: RateLimiter;
  private readonly slip: number;
  private over = 0;
  readonly counts = { sent: 0, dropped: 0, slipped: 0 };

  constructor(clock: Clock, o: RrlOptions) {
    this.limiter = new RateLimiter(clock, o.responsesPerSecond, o.responsesPerSecond);
    this.slip = o.slip ?? 2;
  }

  /** What to do with `response` (a DNS message) to a UDP client at `address`. */
  judge(address: string, response: Buffer): RrlVerdict {
    if (response.length < 12) return "send";
    const key = `${netblock(address)}|${response[3]! & 0x0f}|${questionKey(response)}`;
    if (this.limiter.allow(key)) {
      this.counts.sent++;
      return "send";
    }
    this.over++;
    if (this.slip > 0 && this.over % this.slip === 0) {
      this.counts.slipped++;
      return "slip";
    }
    this.counts.dropped++;
    return "drop";
  }
}

/** IPv4 /24, IPv6 /56: the netblock a spoofer's victims share (BIND's defaults). */
export function netblock(address: string): string {
  const v4 = /^(?:::ffff:)?(\d+\.\d+\.\d+)\.\d+$/i.exec(address);
  if (v4) return `${v4[1]}.0/24`;
  const g = expandV6(address);
  return g ? `${g[0]}:${g[1]}:${g[2]}:${g[3]!.slice(0, 2)}00::/56` : address;
}

function expandV6(address: string): string[] | undefined {
  if (!address.includes(":")) return undefined;
  const [head, tail] = address.split("::") as [string, string | undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const fill = Array(Math.max(0, 8 - h.length - t.length)).fill("0");
  return [...h, ...(tail !== undefined ? fill : []), ...t].map((g) =>
    g.padStart(4, "0").toLowerCase(),
  );
}

/** The question section, lower-cased (RFC 1035 §4.1.2), or "" when it cannot be read. */
function questionKey(msg: Buffer): string {
  const end = questionEnd(msg);
  return end === undefined ? "" : msg.subarray(12, end).toString("latin1").toLowerCase();
}

function questionEnd(msg: Buffer): number | undefined {
  if (msg.readUInt16BE(4) === 0) return 12;
  let i = 12;
  while (i < msg.length) {
    const len = msg[i]!;
    if (len === 0) return i + 5 <= msg.length ? i + 5 : undefined;
    if (len >= 0xc0) return i + 6 <= msg.length ? i + 6 : undefined; // a pointer ends the name
    i += len + 1;
  }
  return undefined;
}

/**
 * The response cut to its header and question, with TC set (RFC 1035 §4.1.1):
 * what a slip sends, so that the client retries over TCP.
 */
export function truncatedResponse(response: Buffer): Buffer {
  const end = questionEnd(response) ?? 12;
  const out = Buffer.from(response.subarray(0, end));
  out[2] = out[2]! | 0x02;
  if (end === 12) out.writeUInt16BE(0, 4);
  out.writeUInt16BE(0, 6);
  out.writeUInt16BE(0, 8);
  out.writeUInt16BE(0, 10);
  return out;
}
