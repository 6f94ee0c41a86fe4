/** Test doubles for the edge: a scriptable parent on the virtual clock, and edge builders. */
import { sleep, type VirtualClock } from "../../core/clock.ts";
import { Edge, type ParentFetch } from "../../edge/cache.ts";
import { LruStorage } from "../../edge/storage-lru.ts";

export const START = Date.UTC(2026, 0, 1, 12, 0, 0);

/** An origin double: counts requests, answers 304 to a matching If-None-Match. */
export class FakeParent {
  calls = 0;
  requests: Request[] = [];
  serial = 1;
  etag = '"1"';
  body = "v1";
  cacheControl = "max-age=60";
  /** Added to the clock for the Date header (origin clock skew). */
  skewMs = 0;
  /** Time (ms) before the parent answers. */
  delayMs = 0;
  fail: number | "down" | undefined;
  keys = "www.example.test zone:example.test";
  extra: Record<string, string> = {};

  constructor(private readonly clock: VirtualClock) {}

  readonly fetch: ParentFetch = async (req) => {
    this.calls++;
    this.requests.push(req);
    if (this.delayMs > 0) await sleep(this.clock, this.delayMs);
    if (this.fail === "down") throw new TypeError("fetch failed: connect ECONNREFUSED");
    if (this.fail !== undefined) return new Response("boom", { status: this.fail });
    const headers = {
      date: new Date(this.clock.now() + this.skewMs).toUTCString(),
      "cache-control": this.cacheControl,
      etag: this.etag,
      "x-serial": String(this.serial),
      "x-zone": "example.test",
      "surrogate-key": this.keys,
      "content-type": "application/dns-json",
      ...this.extra,
    };
    if (req.headers.get("if-none-match") === this.etag) {
      return new Response(null, { status: 304, headers });
    }
    return new Response(this.body, { headers });
  };
}

export function makeEdge(
  clock: VirtualClock,
  fetch: ParentFetch,
  opts: { id?: string; maxBytes?: number; origin?: string; floorRetries?: number } = {},
): Edge {
  return new Edge({
    id: opts.id ?? "edge-1",
    parent: "http://parent.test",
    origin: opts.origin,
    fetch,
    clock,
    storage: new LruStorage(opts.maxBytes),
    floorRetries: opts.floorRetries,
  });
}

export function get(path = "/resolve?name=www.example.test&type=A", headers: HeadersInit = {}) {
  return new Request(`http://edge.test${path}`, { headers });
}

/** Awaits a promise while moving the virtual clock, for work that sleeps on it. */
export async function settle<T>(clock: VirtualClock, p: Promise<T>, stepMs = 10): Promise<T> {
  let done = false;
  const watched = p.finally(() => {
    done = true;
  });
  for (let i = 0; !done && i < 100_000; i++) await clock.advance(stepMs);
  return watched;
}

export async function text(res: Response | Promise<Response>): Promise<string> {
  return (await res).text();
}
