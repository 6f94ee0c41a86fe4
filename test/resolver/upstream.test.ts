/**
 * The upstream clients against in-process servers, and RFC 7766 pipelining
 * against an in-process resolver.
 */
import net from "node:net";
import { serve } from "@hono/node-server";
import * as packet from "dns-packet";
import { Hono } from "hono";
import { afterAll, describe, expect, it } from "vitest";
import { RealClock } from "../../core/clock.ts";
import { startDnsServer } from "../../core/dns-transport.ts";
import { toWire } from "../../resolver/handler.ts";
import { startResolver } from "../../resolver/server.ts";
import { dnsUpstream, dohUpstream } from "../../resolver/upstream.ts";
import { FakeAuthority, makeQuery } from "./fake-authority.ts";

const auth = new FakeAuthority(new RealClock());
auth.set("www.example.test", "A", 300, ["192.0.2.10"]);
const closers: (() => unknown)[] = [];
afterAll(async () => {
  for (const close of closers) await close();
});

describe("DoH upstream (RFC 8484)", () => {
  it("sends GET with ID 0 and the floor as X-Min-Serial; reads Age, X-Serial and stale-while-revalidate", async () => {
    const seen: {
      id: number;
      accept: string | undefined;
      min: string | undefined;
      cc?: string;
    }[] = [];
    const app = new Hono().get("/dns-query", (c) => {
      const query = Buffer.from(c.req.query("dns") ?? "", "base64url");
      seen.push({
        id: query.readUInt16BE(0),
        accept: c.req.header("accept"),
        min: c.req.header("x-min-serial"),
        ...(c.req.header("cache-control") !== undefined && { cc: c.req.header("cache-control") }),
      });
      const q = packet.decode(query).questions![0]!;
      const { message } = auth.respond(toWire(q.name), 1);
      return c.body(new Uint8Array(message), 200, {
        "content-type": "application/dns-message",
        age: "20",
        "x-serial": "42",
        "cache-control": "max-age=300, stale-while-revalidate=30, stale-if-error=86400",
      });
    });
    const server = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 });
    closers.push(() => server.close());
    await new Promise((r) => server.once("listening", r));
    const { port } = server.address() as net.AddressInfo;
    const upstream = dohUpstream(`http://127.0.0.1:${port}`, { timeoutMs: 2000 });
    const res = await upstream(toWire("www.example.test"), 1);
    await upstream(toWire("www.example.test"), 1, 41);
    await upstream(toWire("www.example.test"), 1, undefined, true); // a prefetch
    expect(seen).toEqual([
      { id: 0, accept: "application/dns-message", min: undefined },
      { id: 0, accept: "application/dns-message", min: "41" },
      { id: 0, accept: "application/dns-message", min: undefined, cc: "no-cache" },
    ]);
    expect(res).toMatchObject({ age: 20, serial: 42, staleWhileRevalidate: 30 });
  });
});

describe("DoH upstream requests", () => {
  it("sends each endpoint and question its own URL, the floor and no-cache together, no signal without a timeout", async () => {
    const sent: { url: string; init: RequestInit | undefined }[] = [];
    const answerTo = (url: string) => {
      const query = Buffer.from(new URL(url).searchParams.get("dns")!, "base64url");
      const q = packet.decode(query).questions![0]!;
      return new Response(new Uint8Array(auth.respond(toWire(q.name), 1).message), { status: 200 });
    };
    const fetchLike = (async (input: string, init?: RequestInit) => {
      sent.push({ url: input, init });
      return answerTo(input);
    }) as unknown as typeof fetch;
    const a = dohUpstream("http://a.test", { timeoutMs: 0, fetch: fetchLike });
    const b = dohUpstream("http://b.test", { timeoutMs: 0, fetch: fetchLike });
    await a(toWire("www.example.test"), 1);
    await a(toWire("mail.example.test"), 1);
    await a(toWire("www.example.test"), 28);
    await b(toWire("www.example.test"), 1, 7, true);
    await a(toWire("www.example.test"), 1);
    const asked = sent.map(({ url }) => {
      const u = new URL(url);
      const q = packet.decode(Buffer.from(u.searchParams.get("dns")!, "base64url")).questions![0]!;
      return `${u.host}${u.pathname} ${q.name} ${q.type}`;
    });
    expect(asked).toEqual([
      "a.test/dns-query www.example.test A",
      "a.test/dns-query mail.example.test A",
      "a.test/dns-query www.example.test AAAA",
      "b.test/dns-query www.example.test A",
      "a.test/dns-query www.example.test A",
    ]);
    expect(sent[4]!.url).toBe(sent[0]!.url);
    expect(sent[3]!.init?.headers).toEqual({
      accept: "application/dns-message",
      "x-min-serial": "7",
      "cache-control": "no-cache",
    });
    expect(sent[0]!.init?.headers).toEqual({ accept: "application/dns-message" });
    for (const { init } of sent) expect(init?.signal).toBeUndefined();
  });
});

describe("DoH upstream URLs", () => {
  it("asks the question in the name it is given now, the same again or one written into the same buffer", async () => {
    const asked: string[] = [];
    const fetchLike = (async (input: string) => {
      const query = Buffer.from(new URL(input).searchParams.get("dns")!, "base64url");
      const q = packet.decode(query).questions![0]!;
      asked.push(`${q.name} ${q.type}`);
      return new Response(new Uint8Array(auth.respond(toWire(q.name), 1).message), { status: 200 });
    }) as unknown as typeof fetch;
    const up = dohUpstream("http://a.test", { timeoutMs: 0, fetch: fetchLike });
    const name = toWire("www.example.test");
    await up(name, 1);
    await up(name, 1);
    await up(toWire("www.example.test"), 1);
    // Rewritten in place, as a caller may reuse its buffer: another name of the same length.
    name.set(toWire("ftp.example.test"));
    await up(name, 1);
    await up(name, 28);
    await up(toWire("www.example.test"), 1);
    expect(asked).toEqual([
      "www.example.test A",
      "www.example.test A",
      "www.example.test A",
      "ftp.example.test A",
      "ftp.example.test AAAA",
      "www.example.test A",
    ]);
  });
});

describe("plain DNS upstream", () => {
  it("retries over TCP when the UDP answer is truncated", async () => {
    const transports: string[] = [];
    const server = await startDnsServer({ host: "127.0.0.1", port: 0 }, (msg, info) => {
      transports.push(info.transport);
      const out = Buffer.from(auth.respond(toWire("www.example.test"), 1).message);
      out.writeUInt16BE(msg.readUInt16BE(0), 0);
      if (info.transport === "udp") out[2] = out[2]! | 0x02;
      return out;
    });
    closers.push(() => server.close());
    const res = await dnsUpstream(
      "127.0.0.1",
      server.port,
      2000,
      1232,
    )(toWire("www.example.test"), 1);
    expect(transports).toEqual(["udp", "tcp"]);
    expect(packet.decode(res.message).answers).toHaveLength(1);
  });
});

describe("TCP (RFC 7766)", () => {
  it("answers several queries written at once on one connection", async () => {
    const r = await startResolver({ upstream: "dns://127.0.0.1:9" }, { upstream: auth.upstream });
    closers.push(() => r.close());
    const [host, port] = r.dnsAddr.split(":");
    const frames = [1, 2, 3].map((id) => {
      const m = makeQuery("www.example.test", "A", { id });
      return Buffer.concat([Buffer.from([m.length >> 8, m.length & 0xff]), m]);
    });
    const sock = net.connect(Number(port), host!);
    sock.write(Buffer.concat(frames));
    let buf = Buffer.alloc(0);
    const ids = await new Promise<number[]>((resolve) => {
      sock.on("data", (chunk) => {
        buf = Buffer.concat([buf, chunk]);
        const got: number[] = [];
        for (let off = 0; off + 2 <= buf.length; off += 2 + buf.readUInt16BE(off)) {
          if (off + 2 + buf.readUInt16BE(off) > buf.length) break;
          got.push(buf.readUInt16BE(off + 2));
        }
        if (got.length === 3) resolve(got);
      });
    });
    sock.destroy();
    expect(ids.sort()).toEqual([1, 2, 3]);
    expect(r.resolver.metrics).toMatchObject({ misses: 3, coalesced: 2, upstreamQueries: 1 });
  });
});
