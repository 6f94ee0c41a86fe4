import { beforeAll, describe, expect, it } from "vitest";
import { VirtualClock } from "../../core/clock.ts";
import { bodyBytes, DNS_MESSAGE, DOH_PATH, H } from "../../core/http.ts";
import { Edge, type EdgeOptions } from "../../edge/cache.ts";
import { fillRequestHeaders } from "../../edge/fields.ts";
import { LruStorage } from "../../edge/storage-lru.ts";
import {
  calibrateHops,
  HopFields,
  HopHeaders,
  HopRequest,
  HopResponse,
  hopRequestOf,
  plainFields,
  SimEdge,
} from "../../infra/sim/hop.ts";
import { SIM_NAME, SimOrigin } from "../../infra/sim/origin.ts";
import { toWire } from "../../resolver/handler.ts";
import { buildQuery } from "../../resolver/upstream.ts";

const START = Date.UTC(2026, 0, 1, 12, 0, 0);
const DOH = `${DOH_PATH}?dns=${buildQuery(0, toWire(SIM_NAME), 1).toString("base64url")}`;

/** Everything a reader of a response can see: status, fields in order, fields by name, body. */
async function seen(res: Response) {
  const fields: [string, string][] = [];
  res.headers.forEach((v, k) => {
    fields.push([k, v]);
  });
  const byName = Object.fromEntries(
    ["age", "etag", "cache-status", "cache-control", H.serial, "content-range", "absent"].map(
      (n) => [n, res.headers.get(n.toUpperCase())],
    ),
  );
  return {
    status: res.status,
    ok: res.ok,
    fields,
    byName,
    has: res.headers.has("ETag"),
    body: [...new Uint8Array(await res.arrayBuffer())],
  };
}

/** origin <- regional <- edge on one virtual clock, with the Web engine or the simulator's. */
function chain(hop: boolean) {
  const clock = new VirtualClock(START);
  const origin = new SimOrigin(clock, { ttl: 30, staleWhileRevalidate: 10, staleIfError: 600 });
  const carried = { hops: 0 };
  const engine = (o: EdgeOptions) => (hop ? new SimEdge(o, carried) : new Edge(o));
  const opts = (id: string, parent: string, fetch: EdgeOptions["fetch"]): EdgeOptions => ({
    id,
    parent: `http://${parent}`,
    origin: "http://origin",
    fetch,
    clock,
    storage: new LruStorage(),
  });
  const regional = engine(opts("regional-1", "origin", (req) => origin.fetch(req)));
  const edge = engine(
    opts("edge-1", "regional-1", (req) =>
      new URL(req.url).host === "origin" ? origin.fetch(req) : regional.handle(req),
    ),
  );
  return { clock, origin, regional, edge, carried };
}

beforeAll(async () => {
  await calibrateHops();
});

/** Lets promise work of the current instant finish. */
const macrotask = () => new Promise((r) => setTimeout(r, 0));

/** The order in which two awaited reads resume. */
async function order(a: () => Promise<unknown>, b: () => Promise<unknown>): Promise<string> {
  const out: string[] = [];
  await Promise.all([a().then(() => out.push("a")), b().then(() => out.push("b"))]);
  return out.join("");
}

describe("simulate: the lighter hop (sim/hop.ts)", () => {
  it("resumes a read (arrayBuffer, bytes) after as many promise turns as a Response's, with and without a body", async () => {
    for (const read of ["arrayBuffer", "bytes"] as const) {
      const body = () => new Uint8Array([1, 2, 3]);
      const web = (b: Uint8Array<ArrayBuffer> | null) => () => new Response(b)[read]();
      const hop = (b: Uint8Array<ArrayBuffer> | null) => () =>
        new HopResponse({ status: b ? 200 : 304, headers: {}, body: b })[read]();
      // A 304 read finishes before a body read started earlier, in both.
      expect(await order(web(body()), web(null))).toBe("ba");
      expect(await order(hop(body()), hop(null))).toBe("ba");
      // And each against the other kind: the same turn, so the first started resumes first.
      for (const b of [null, body()]) {
        expect(await order(hop(b), web(b))).toBe("ab");
        expect(await order(web(b), hop(b))).toBe("ab");
      }
    }
  });

  it("shows every reader what a Web Request and Response would, over a sequence of fills, hits, revalidations and conditionals", async () => {
    const web = chain(false);
    const hop = chain(true);
    await web.origin.createZone();
    await hop.origin.createZone();
    const steps: {
      advanceMs?: number;
      change?: number;
      headers?: Record<string, string>;
      method?: string;
    }[] = [
      {},
      { advanceMs: 5_000 },
      { headers: { "cache-control": "no-cache" } },
      { change: 1, advanceMs: 1_000 },
      { headers: { [H.minSerial]: "2" } },
      { advanceMs: 31_000 },
      { advanceMs: 5_000 },
      { headers: { "if-none-match": '"2"' } },
      { headers: { range: "bytes=0-5" } },
      { headers: { range: "bytes=900-" } },
      { method: "HEAD" },
      { change: 2, headers: { "cache-control": "no-cache" } },
    ];
    let light = 0;
    const statuses: number[] = [];
    for (const [i, s] of steps.entries()) {
      for (const w of [web, hop]) {
        if (s.change !== undefined) await w.origin.change(s.change);
        if (s.advanceMs) await w.clock.advance(s.advanceMs);
      }
      const ask = (w: typeof web) =>
        w.edge.handle(
          new Request(`http://edge-1${DOH}`, {
            method: s.method ?? "GET",
            headers: { accept: DNS_MESSAGE, ...s.headers },
          }),
        );
      const [a, b] = await Promise.all([ask(web), ask(hop)]);
      if (b instanceof HopResponse) light++;
      statuses.push(a.status);
      expect(b instanceof HopResponse, `step ${i}`).toBe(true);
      expect(a instanceof Response).toBe(true);
      expect(await seen(b as Response), `step ${i}`).toEqual(await seen(a));
      await Promise.all([web.clock.advance(0), hop.clock.advance(0)]);
    }
    expect(light).toBe(steps.length);
    // The regional's answers to the edge's fills were HopResponses too.
    expect(hop.carried.hops).toBeGreaterThan(steps.length);
    // Fills, hits, revalidations, a floor miss, 304, 206, 416 and a HEAD.
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200, 200, 304, 206, 416, 200, 200]);
    expect(hop.edge.metrics()).toEqual(web.edge.metrics());
    expect(hop.regional.metrics()).toEqual(web.regional.metrics());
    // The fills reached the origin as HopRequests, and it answered them as Requests.
    expect(hop.origin.load.reads).toEqual(web.origin.load.reads);
    expect(hop.regional.metrics().parentRequests).toBeGreaterThan(2);
  });

  it("the origin answers a HopRequest as it answers the Request it stands for", async () => {
    const clock = new VirtualClock(START);
    const origin = new SimOrigin(clock, { ttl: 30, staleWhileRevalidate: 10, staleIfError: 600 });
    await origin.createZone();
    const extras: Record<string, string>[] = [
      {},
      { "if-none-match": '"1"' },
      { [H.minSerial]: "9" },
    ];
    for (const extra of extras) {
      const headers = new Headers({ accept: DNS_MESSAGE, ...extra });
      const signal = new AbortController().signal;
      const hop = new HopRequest(`http://origin${DOH}`, headers, signal);
      const a = await origin.fetch(hop.toRequest());
      const b = await origin.fetch(hop as unknown as Request);
      expect(await seen(b)).toEqual(await seen(a));
    }
  });

  it("the origin hands out again only what its read routes would answer: same request, second and store", async () => {
    const origins = [0, 1].map(() => {
      const clock = new VirtualClock(START);
      const origin = new SimOrigin(clock, { ttl: 30, staleWhileRevalidate: 10, staleIfError: 600 });
      return { clock, origin };
    });
    await Promise.all(origins.map((o) => o.origin.createZone()));
    origins[1]!.origin.reuseAnswers();
    const signal = new AbortController().signal;
    const steps: { advanceMs?: number; change?: number; headers?: Record<string, string> }[] = [
      {},
      {},
      { headers: { "if-none-match": '"1"' } },
      { headers: { "if-none-match": '"1"' } },
      { advanceMs: 400 },
      { advanceMs: 700 },
      { change: 1 },
      { headers: { [H.minSerial]: "2" } },
      { headers: { [H.minSerial]: "9" } },
      { headers: { [H.minSerial]: "9" } },
      { headers: { "if-none-match": '"1"' } },
    ];
    const reused: number[] = [];
    for (const [i, s] of steps.entries()) {
      for (const o of origins) {
        if (s.change !== undefined) await o.origin.change(s.change);
        if (s.advanceMs) o.clock.advanceSync(s.advanceMs);
      }
      const [a, b] = await Promise.all(
        origins.map((o) =>
          o.origin.fetch(
            new HopRequest(
              `http://origin${DOH}`,
              new Headers({ accept: DNS_MESSAGE, ...s.headers }),
              signal,
            ) as unknown as Request,
          ),
        ),
      );
      expect(await seen(b!), `step ${i}`).toEqual(await seen(a!));
      await macrotask();
      reused.push(origins[1]!.origin.answersReused);
    }
    // Held: the repeated request, the one 400 ms later; asked again: the next second, after a commit.
    expect(reused).toEqual([0, 1, 1, 2, 3, 3, 3, 3, 3, 4, 4]);
    expect(origins[0]!.origin.answersReused).toBe(0);
    expect(origins[1]!.origin.load.reads).toEqual(origins[0]!.origin.load.reads);
  });

  it("makes a fill's abort signal only when someone reads it, and it is the fill's", () => {
    let made = 0;
    const controller = new AbortController();
    const hop = new HopRequest(`http://origin${DOH}`, new Headers(), () => {
      made++;
      return controller.signal;
    });
    expect(made).toBe(0);
    expect(hop.signal).toBe(controller.signal);
    expect(hop.toRequest().signal.aborted).toBe(false);
    controller.abort(new Error("timeout"));
    expect(hop.signal.aborted).toBe(true);
    expect(made).toBeGreaterThan(0);
  });

  it("reads a body once, copies it, and leaves to a real Response what Headers would rewrite", async () => {
    const body = new Uint8Array([1, 2, 3]);
    const res = new HopResponse({ status: 200, headers: { b: "2", a: "1" }, body });
    expect(res.headers.get("B")).toBe("2");
    expect(res.headers.get("constructor")).toBeNull();
    expect(res.headers.has("toString")).toBe(false);
    expect([...res.headers]).toEqual([
      ["a", "1"],
      ["b", "2"],
    ]);
    const copy = new Uint8Array(await res.arrayBuffer());
    copy[0] = 9;
    expect(body[0]).toBe(1);
    await expect(res.arrayBuffer()).rejects.toThrow(TypeError);
    expect(await new HopResponse({ status: 304, headers: {}, body: null }).arrayBuffer()).toEqual(
      new ArrayBuffer(0),
    );
    expect(plainFields({ age: "1", etag: '"1"' })).toBe(true);
    expect(plainFields({ Age: "1" })).toBe(false);
    expect(plainFields({ etag: ' "1"' })).toBe(false);
    expect(plainFields({ etag: '"1"\t' })).toBe(false);
  });

  it("lists its fields in the order a Headers does, whatever the reply's order", () => {
    const names = [
      "x-a-b",
      "age",
      "x-a",
      "a",
      "etag",
      "x-serial",
      "x-a0",
      "cache-status",
      "b",
      "x-",
    ];
    const listed = (h: { forEach(fn: (v: string, k: string) => void): void }) => {
      const out: string[] = [];
      h.forEach((_, k) => {
        out.push(k);
      });
      return out;
    };
    for (const order of [names, [...names].reverse(), [...names].sort()]) {
      const record = Object.fromEntries(order.map((n, i) => [n, String(i)]));
      const hop = new HopHeaders(record);
      expect(listed(hop)).toEqual(listed(new Headers(record)));
      expect([...hop].map(([k]) => k)).toEqual(listed(new Headers(record)));
    }
  });

  it("a fill's HopFields hold what a Headers would, after the same appends, sets and deletes", () => {
    type Op = ["append" | "set", string, string] | ["delete", string];
    const ops: Op[] = [
      ["append", "Accept", "application/dns-message"],
      ["append", "cookie", "a=1"],
      ["append", "Cookie", "b=2"],
      ["append", "x-list", "1"],
      ["append", "X-List", " 2\t"],
      ["set", "If-None-Match", '"7"'],
      ["set", "if-none-match", '"8"'],
      ["append", "b", "kept"],
      ["set", H.minSerial, "12"],
      ["append", "gone", "x"],
      ["delete", "Gone"],
      ["delete", "never-there"],
      ["set", "x-empty", "  "],
    ];
    const hop = new HopFields();
    const web = new Headers();
    for (const op of ops) {
      if (op[0] === "delete") {
        hop.delete(op[1]);
        web.delete(op[1]);
      } else {
        hop[op[0]](op[1], op[2]);
        web[op[0]](op[1], op[2]);
      }
    }
    expect([...hop]).toEqual([...web]);
    for (const name of ["COOKIE", "x-list", "accept", "gone", "x-empty", "absent"]) {
      expect(hop.get(name)).toBe(web.get(name));
      expect(hop.has(name)).toBe(web.has(name));
    }
    // What a Headers refuses, so does it.
    for (const [name, value] of [
      ["bad name", "v"],
      ["", "v"],
      ["x", "a\r\nb"],
      ["x", "a\0b"],
    ] as const) {
      expect(() => web.append(name, value)).toThrow(TypeError);
      expect(() => hop.append(name, value)).toThrow(TypeError);
      expect(() => hop.set(name, value)).toThrow(TypeError);
    }
    // A fill's fields made into them are the Headers' fill.
    const client = new Headers([
      ["accept", DNS_MESSAGE],
      ["cache-control", "no-cache"],
      ["connection", "x-hop"],
      ["x-hop", "1"],
      ["if-none-match", '"3"'],
      ["accept-encoding", "zstd, gzip"],
    ]);
    const filled = fillRequestHeaders(client, new HopFields() as unknown as Headers);
    expect([...filled]).toEqual([...fillRequestHeaders(client)]);
  });

  it("reads bytes() as a copy of its own, once", async () => {
    const body = () => new Uint8Array([1, 2, 3]);
    const stored = body();
    const res = new HopResponse({ status: 200, headers: {}, body: stored });
    const bytes = await res.bytes();
    expect([...bytes]).toEqual([1, 2, 3]);
    bytes[0] = 9;
    expect(stored[0]).toBe(1);
    await expect(res.bytes()).rejects.toThrow(TypeError);
    await expect(res.arrayBuffer()).rejects.toThrow(TypeError);
    expect(await new HopResponse({ status: 304, headers: {}, body: null }).bytes()).toEqual(
      new Uint8Array(0),
    );
  });

  it("bodyBytes reads bytes(), or a view of arrayBuffer() where a response has no bytes()", async () => {
    expect([...(await bodyBytes(new Response(new Uint8Array([4, 5]))))]).toEqual([4, 5]);
    const old = {
      arrayBuffer: () => Promise.resolve(new Uint8Array([6, 7]).buffer),
    } as unknown as Response;
    expect([...(await bodyBytes(old))]).toEqual([6, 7]);
  });

  it("a resolver's shared GET as a HopRequest shows the edge what the Request would", () => {
    const url = `http://edge-1${DOH}`;
    const fields = { accept: DNS_MESSAGE, "cache-control": "no-cache" };
    const hop = hopRequestOf(url, fields)!;
    const web = new Request(url, { headers: fields });
    expect(hop.method).toBe(web.method);
    expect(hop.url).toBe(web.url);
    for (const name of ["Accept", "cache-control", "authorization", H.minSerial, "vary"]) {
      expect(hop.headers.get(name)).toBe(web.headers.get(name));
      expect(hop.headers.has(name)).toBe(web.headers.has(name));
    }
    const listed = (h: Headers) => {
      const out: [string, string][] = [];
      h.forEach((v, k) => {
        out.push([k, v]);
      });
      return out;
    };
    expect(listed(hop.headers)).toEqual(listed(web.headers));
    expect(hop.signal.aborted).toBe(false);
    // A field a Headers would rewrite, or a URL the parser refuses: the Request itself.
    expect(hopRequestOf(url, { Accept: DNS_MESSAGE })).toBeUndefined();
    expect(hopRequestOf(url, { accept: ` ${DNS_MESSAGE}` })).toBeUndefined();
    expect(hopRequestOf("http://[bad", fields)).toBeUndefined();
    // The fields are its own: a later change to the record does not reach it.
    const record: Record<string, string> = { accept: DNS_MESSAGE };
    const kept = hopRequestOf(url, record)!;
    record.accept = "text/plain";
    expect(kept.headers.get("accept")).toBe(DNS_MESSAGE);
  });
});
