/**
 * The Node fast path for fresh hits (edge/fast-hit.ts) against the engine:
 * two Node edges with the same id, clock and parent, one with the fast path
 * and one without, asked the same requests over real sockets. Every answer
 * must be the same bytes (status line, fields in order, body), the fast path
 * must have answered exactly the plain fresh hits, and the engines' counters
 * must agree afterwards.
 */
import { connect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VirtualClock } from "../../core/clock.ts";
import type { ParentFetch } from "../../edge/cache.ts";
import { type RunningEdge, startEdge } from "../../edge/node.ts";
import { START } from "./support.ts";

const clock = new VirtualClock(START);

interface Scripted {
  status?: number;
  headers: [string, string][];
  body?: string;
}

const date = () => new Date(clock.now()).toUTCString();
const dnsHeaders = (): [string, string][] => [
  ["date", date()],
  ["cache-control", "max-age=60, stale-while-revalidate=30, stale-if-error=86400"],
  ["content-type", "application/dns-json"],
  ["etag", '"7"'],
  ["last-modified", new Date(START - 3_600_000).toUTCString()],
  ["surrogate-key", "www.example.test zone:example.test"],
  ["x-serial", "7"],
  ["x-zone", "example.test"],
];
const DNS_BODY =
  '{"Status":0,"Question":[{"name":"www.example.test.","type":1}],"Answer":[{"name":"www.example.test.","type":1,"TTL":60,"data":"192.0.2.10"}]}';

/** What the parent answers per path (the query string aside). */
const SCRIPT: Record<string, () => Scripted> = {
  "/resolve": () => ({ headers: dnsHeaders(), body: DNS_BODY }),
  // A parent cache's member and Age: this edge appends its member and ages from the parent's Age.
  "/tiered": () => ({
    headers: [
      ...dnsHeaders(),
      ["cache-status", 'regional-1; hit; ttl=50; key="/tiered"'],
      ["age", "10"],
    ],
    body: "tiered",
  }),
  // Repeated fields, and bytes that are not ASCII (the body leaves as latin1 chars).
  "/repeated": () => ({
    headers: [
      ["date", date()],
      ["cache-control", "max-age=300"],
      ["set-cookie", "a=1"],
      ["set-cookie", "b=2"],
      ["x-list", "one"],
      ["x-list", "two"],
    ],
    body: "grüße, 名前 ✓ \u{1F600}",
  }),
  "/not-found": () => ({
    status: 404,
    headers: [
      ["date", date()],
      ["cache-control", "max-age=60"],
      ["content-type", "application/json"],
    ],
    body: '{"error":"no such name"}',
  }),
  "/no-content": () => ({
    status: 204,
    headers: [
      ["date", date()],
      ["cache-control", "max-age=60"],
    ],
  }),
  "/empty": () => ({
    headers: [
      ["date", date()],
      ["cache-control", "max-age=60"],
    ],
    body: "",
  }),
  "/vary": () => ({
    headers: [
      ["date", date()],
      ["cache-control", "max-age=60"],
      ["vary", "accept-language"],
    ],
    body: "varies",
  }),
  "/no-cache": () => ({
    headers: [
      ["date", date()],
      ["cache-control", "no-cache, max-age=60"],
      ["etag", '"n"'],
    ],
    body: "validate me",
  }),
  // A value Web Headers take and Node refuses to send: the engine's answer is a 500.
  "/bad-field": () => ({
    headers: [
      ["date", date()],
      ["cache-control", "max-age=60"],
      ["x-bad", "a\u0001b"],
    ],
    body: "unsendable",
  }),
  "/short": () => ({
    headers: [
      ["date", date()],
      ["cache-control", "max-age=5"],
    ],
    body: "short-lived",
  }),
};

let parentCalls = 0;
/** The parent both edges fill from, answering from SCRIPT on the shared virtual clock. */
const parent: ParentFetch = async (req) => {
  parentCalls++;
  const url = new URL(req.url);
  const s = SCRIPT[url.pathname]?.();
  if (!s) return new Response("no script", { status: 500 });
  const headers = new Headers();
  for (const [k, v] of s.headers) headers.append(k, v);
  if (
    req.headers.get("if-none-match") !== null &&
    req.headers.get("if-none-match") === headers.get("etag")
  ) {
    return new Response(null, { status: 304, headers });
  }
  return new Response(s.status === 204 ? null : (s.body ?? ""), {
    status: s.status ?? 200,
    headers,
  });
};

/** One keep-alive connection sending raw requests and reading each response whole. */
class RawClient {
  private socket: Socket;
  private buffered = Buffer.alloc(0);
  private waiting: (() => void) | undefined;
  private closed = false;

  constructor(readonly port: number) {
    this.socket = connect(port, "127.0.0.1");
    this.socket.on("data", (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      this.waiting?.();
    });
    this.socket.on("close", () => {
      this.closed = true;
      this.waiting?.();
    });
  }

  /** Sends `GET target` (or another method) with `fields`; resolves to the raw response bytes. */
  async send(
    method: string,
    target: string,
    fields: string[] = [],
    version = "HTTP/1.1",
  ): Promise<Buffer> {
    const head = [`${method} ${target} ${version}`, `Host: 127.0.0.1:${this.port}`, ...fields];
    this.socket.write(`${head.join("\r\n")}\r\n\r\n`);
    for (;;) {
      // A response cut off by the server closing: whatever came.
      const total = this.closed ? this.buffered.length : this.complete(method);
      if (total !== undefined) {
        const response = this.buffered.subarray(0, total);
        this.buffered = this.buffered.subarray(total);
        return response;
      }
      await new Promise<void>((resolve) => {
        this.waiting = resolve;
      });
    }
  }

  /** The length of the first whole response buffered (RFC 9112 §6.3 framing), if any. */
  private complete(method: string): number | undefined {
    const end = this.buffered.indexOf("\r\n\r\n");
    if (end < 0) return undefined;
    const header = this.buffered.subarray(0, end).toString("latin1");
    const status = Number(header.slice(9, 12));
    if (method === "HEAD" || status === 204 || status === 304) return end + 4;
    const length = /\r\ncontent-length: (\d+)/i.exec(header);
    if (length) {
      const total = end + 4 + Number(length[1]);
      return this.buffered.length >= total ? total : undefined;
    }
    if (!/\r\ntransfer-encoding: chunked/i.test(header)) throw new Error(`unframed: ${header}`);
    let at = end + 4;
    for (;;) {
      const line = this.buffered.indexOf("\r\n", at);
      if (line < 0) return undefined;
      const size = Number.parseInt(this.buffered.subarray(at, line).toString("latin1"), 16);
      at = line + 2 + size + 2;
      if (this.buffered.length < at) return undefined;
      if (size === 0) return at;
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

let fastEdge: RunningEdge;
let engineEdge: RunningEdge;
let fast: RawClient;
let engine: RawClient;

beforeAll(async () => {
  const config = {
    id: "edge-1",
    parent: "http://parent.test",
    fetch: parent,
    clock,
    log: () => {},
  };
  fastEdge = await startEdge(config);
  engineEdge = await startEdge({ ...config, fastHits: false });
  expect(engineEdge.fast).toBeUndefined();
  fast = new RawClient(Number(new URL(fastEdge.url).port));
  engine = new RawClient(Number(new URL(engineEdge.url).port));
});

afterAll(async () => {
  fast?.close();
  engine?.close();
  await fastEdge?.close();
  await engineEdge?.close();
});

/**
 * Asks both edges; the answers must be the same bytes, and the fast path
 * must have answered it (`viaFast`) or left it to the engine.
 */
async function same(
  method: string,
  target: string,
  fields: string[],
  viaFast: boolean,
  version?: string,
): Promise<string> {
  const before = fastEdge.fast!.served();
  const a = await fast.send(method, target, fields, version);
  const b = await engine.send(method, target, fields, version);
  expect(a.toString("latin1"), `${method} ${target} ${fields.join(" | ")}`).toBe(
    b.toString("latin1"),
  );
  expect(fastEdge.fast!.served() - before, `${method} ${target}: answered by the fast path`).toBe(
    viaFast ? 1 : 0,
  );
  return a.toString("latin1");
}

const DNS = "/resolve?name=www.example.test&type=A";

describe("fast path for fresh hits (Node)", () => {
  it("fills through the engine, then answers plain fresh hits itself, byte for byte", async () => {
    for (const path of Object.keys(SCRIPT)) {
      if (path === "/bad-field") continue;
      const target = path === "/resolve" ? DNS : path;
      await same("GET", target, [], false);
    }
    clock.advanceSync(2_500);
    for (const path of ["/tiered", "/repeated", "/not-found", "/no-content", "/empty", "/short"]) {
      await same("GET", path, [], true);
      await same("HEAD", path, [], true);
    }
    const hit = await same("GET", DNS, [], true);
    // Age rounded up (RFC 9111 §5.1), ttl floored (RFC 9211 §2.6), this edge's member last.
    expect(hit).toMatch(/\r\nage: 3\r\n/);
    expect(hit).toContain(
      'cache-status: edge-1; hit; ttl=57; key="/resolve?name=www.example.test&type=A"\r\n',
    );
    expect(hit.endsWith(DNS_BODY)).toBe(true);
    const tiered = await same("GET", "/tiered", [], true);
    expect(tiered).toContain(
      'cache-status: regional-1; hit; ttl=50; key="/tiered", edge-1; hit; ttl=47; key="/tiered"\r\n',
    );
    expect(tiered).toMatch(/\r\nage: 13\r\n/);
    const repeated = await same("GET", "/repeated", [], true);
    expect(repeated).toContain("x-list: one, two\r\n");
    expect(Buffer.from(repeated, "latin1").toString("utf8").endsWith("名前 ✓ \u{1F600}")).toBe(
      true,
    );
    // An equivalent query is the same key (edge/key.ts): a hit too.
    await same("GET", "/resolve?type=a&name=WWW.example.test.", [], true);
    clock.advanceSync(1_000);
    await same("GET", DNS, ["User-Agent: test", "Accept: */*"], true);
  });

  it("leaves conditionals, Range and request directives to the engine, with the same answer", async () => {
    const cases: string[][] = [
      ['If-None-Match: "7"'],
      ['If-None-Match: "other"'],
      [`If-Modified-Since: ${new Date(START).toUTCString()}`],
      ["Range: bytes=0-9"],
      ['If-Range: "7"', "Range: bytes=2-4"],
      ["Cache-Control: no-cache"],
      ["Cache-Control: max-age=0"],
      ["Cache-Control: min-fresh=10"],
      ["Cache-Control: max-stale=5"],
      ["X-Min-Serial: 7"],
    ];
    for (const fields of cases) await same("GET", DNS, fields, false);
    await same("HEAD", DNS, ['If-None-Match: "7"'], false);
  });

  it("leaves Vary'd, must-validate, stale and unusual requests to the engine", async () => {
    await same("GET", "/vary", ["Accept-Language: de"], false);
    await same("GET", "/vary", [], false);
    await same("GET", "/no-cache", [], false);
    // Authorization: RFC 9111 §3.5 (the entry does not say it may be shared).
    await same("GET", DNS, ["Authorization: Bearer x"], false);
    // Targets the URL parser rewrites or Hono decodes, and the app's own routes.
    await same("GET", "/resolve/../resolve?name=www.example.test&type=A", [], false);
    await same("GET", "/resolve?name=www%2Eexample.test&type=A", [], false);
    await same("GET", `${DNS}#fragment`, [], false);
    await same("GET", `http://127.0.0.1:${fast.port}${DNS}`, [], false);
    await same("POST", "/empty", ["Content-Length: 0"], false);
    // HTTP/1.0 (kept alive by asking): Node frames it otherwise, so the app answers it.
    await same("GET", DNS, ["Connection: keep-alive"], false, "HTTP/1.0");
    // /short (max-age=5) is stale now: the engine revalidates it with the parent.
    clock.advanceSync(3_000);
    const calls = parentCalls;
    await same("GET", "/short", [], false);
    expect(parentCalls - calls).toBe(2);
  });

  it("leaves an entry with a field Node refuses to send to the engine (its 500)", async () => {
    for (const round of [1, 2]) {
      const before = fastEdge.fast!.served();
      const a = new RawClient(fast.port);
      const b = new RawClient(engine.port);
      const [x, y] = [await a.send("GET", "/bad-field"), await b.send("GET", "/bad-field")];
      a.close();
      b.close();
      expect(x.toString("latin1"), `round ${round}`).toBe(y.toString("latin1"));
      expect(x.toString("latin1")).toMatch(/^HTTP\/1.1 500 /);
      expect(fastEdge.fast!.served()).toBe(before);
    }
  });

  it("counts its hits as the engine does", async () => {
    const a = fastEdge.edge.metrics();
    const b = engineEdge.edge.metrics();
    expect(a.hits).toBeGreaterThan(10);
    expect(a).toEqual(b);
  });
});
