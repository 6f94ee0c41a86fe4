/**
 * resolver/handler.ts's fast path (`readPlainQuery` + `cache.hitInQuery` +
 * `renderStored`): for every query shape it takes, the same bytes as the
 * general path (`parseQuery` + `cache.lookup` + `renderAnswer`); every other
 * shape still gets its error or synthesized answer.
 */
import * as packet from "dns-packet";
import { beforeEach, describe, expect, it } from "vitest";
import { VirtualClock } from "../../core/clock.ts";
import type { Transport } from "../../core/dns-transport.ts";
import { ResolverCache, type Served } from "../../resolver/cache.ts";
import { createHandler, readPlainQuery, toWire } from "../../resolver/handler.ts";
import { RCODE } from "../../resolver/message.ts";
import { DEFAULT_CACHE } from "../../resolver/policy.ts";
import { parseQuery, type Query } from "../../resolver/query.ts";
import { renderAnswer, type WireOptions } from "../../resolver/wire.ts";
import { FakeAuthority, makeQuery } from "./fake-authority.ts";

const opts: WireOptions = { udpPayload: 1232, nsid: Buffer.from("res-t") };
const zones = [toWire("example.test")];
let clock: VirtualClock;
let auth: FakeAuthority;
let cache: ResolverCache;
let handler: ReturnType<typeof createHandler>["handler"];

const info = (transport: Transport = "udp") => ({ transport, address: "127.0.0.1", port: 5300 });

/** The general path's answer for a query that hits. */
function general(msg: Buffer, transport: Transport = "udp"): Buffer {
  const q = (parseQuery(msg) as { query: Query }).query;
  const s = cache.lookup(q.key, q.name, q.qtype) as Served;
  expect(s).not.toBeInstanceOf(Promise);
  return renderAnswer(s.answer, s.elapsed, undefined, msg, q, transport, opts);
}

/** The OPT's offset in a query made by makeQuery (right after the question). */
function optAt(msg: Buffer): number {
  return (parseQuery(msg) as { query: Query }).query.nameEnd + 4;
}

beforeEach(async () => {
  clock = new VirtualClock(1_000_000);
  auth = new FakeAuthority(clock);
  auth.set("www.example.test", "A", 100, ["192.0.2.10", "192.0.2.11"]);
  auth.set("alias.example.test", "CNAME", 300, ["www.example.test"]);
  auth.set("big.example.test", "TXT", 100, [Array.from({ length: 12 }, () => "x".repeat(60))]);
  cache = new ResolverCache("res-t", DEFAULT_CACHE, clock, auth.upstream);
  handler = createHandler(cache, { zones: ["example.test"], wire: opts, staleTtl: 30 }).handler;
  for (const [name, type] of [
    ["www.example.test", "A"],
    ["alias.example.test", "A"],
    ["big.example.test", "TXT"],
    ["nope.example.test", "AAAA"],
  ] as const)
    await handler(makeQuery(name, type), info("tcp"));
  await clock.advance(7_000);
});

describe("the handler's fast path", () => {
  it("answers plain queries byte for byte as the general path does", () => {
    const rdClear = makeQuery("www.example.test", "A");
    rdClear[2] = rdClear[2]! & ~0x01;
    const withDo = makeQuery("www.example.test", "A", { edns: 1232 });
    withDo[optAt(withDo) + 7] = 0x80;
    const cases: Array<[string, Buffer, Transport]> = [
      ["no EDNS", makeQuery("www.example.test", "A"), "udp"],
      [
        "mixed case, EDNS with NSID",
        makeQuery("WwW.Example.TEST", "A", { edns: 4096, nsid: true }),
        "udp",
      ],
      ["RD clear", rdClear, "udp"],
      ["DO set", withDo, "udp"],
      ["a CNAME chain", makeQuery("ALIAS.example.test", "A", { edns: 1232 }), "udp"],
      ["NXDOMAIN from the cache", makeQuery("nope.example.test", "AAAA", { edns: 1232 }), "udp"],
      ["too big for 512 octets: TC", makeQuery("big.example.test", "TXT"), "udp"],
      ["the same over TCP", makeQuery("big.example.test", "TXT"), "tcp"],
    ];
    for (const [what, msg, transport] of cases) {
      expect(readPlainQuery(msg, zones), what).toBe(true);
      const hits = cache.metrics.hits;
      const fast = handler(msg, info(transport)) as Buffer;
      expect(fast, what).toBeInstanceOf(Buffer);
      expect(cache.metrics.hits, what).toBe(hits + 1);
      expect(fast, what).toEqual(general(msg, transport));
    }
    const tc = packet.decode(handler(makeQuery("big.example.test", "TXT"), info()) as Buffer);
    expect(tc.flags! & 0x200).toBe(0x200);
    const www = packet.decode(handler(makeQuery("WWW.example.test", "A"), info()) as Buffer);
    expect(www.answers?.map((a) => (a as { ttl: number }).ttl)).toEqual([93, 93]);
    expect(www.questions?.[0]?.name).toBe("WWW.example.test");
  });

  it("leaves every other shape to the general path, which answers it as before", async () => {
    const badvers = makeQuery("www.example.test", "A", { edns: 1232 });
    badvers[optAt(badvers) + 6] = 1;
    const badOption = makeQuery("www.example.test", "A", { edns: 1232, nsid: true });
    badOption[badOption.length - 1] = 9; // NSID option length past the end
    const chaos = packet.encode({
      type: "query",
      id: 7,
      questions: [{ name: "www.example.test", type: "A", class: "CH" }],
    });
    const cases: Array<[string, Buffer, number]> = [
      ["EDNS version 1: BADVERS", badvers, RCODE.NOERROR], // extended RCODE 16 lives in the OPT
      ["an option running past the OPT: FORMERR", badOption, RCODE.FORMERR],
      ["class CH: REFUSED", chaos, RCODE.REFUSED],
      ["outside the zones: REFUSED", makeQuery("www.example.org", "A"), RCODE.REFUSED],
      ["ANY: RFC 8482", makeQuery("www.example.test", "ANY" as packet.RecordType), RCODE.NOERROR],
      ["a miss", makeQuery("other.example.test", "A"), RCODE.NXDOMAIN],
    ];
    for (const [what, msg, rcode] of cases) {
      const plain = readPlainQuery(msg, zones);
      expect(plain, what).toBe(what === "a miss");
      const out = (await handler(msg, info())) as Buffer;
      expect(out[3]! & 0x0f, what).toBe(rcode);
    }
    // A response is never answered.
    const response = makeQuery("www.example.test", "A");
    response[2] = response[2]! | 0x80;
    expect(readPlainQuery(response, zones)).toBe(false);
    expect(handler(response, info())).toBeUndefined();
  });

  it("starts the prefetch in the last tenth of the TTL, keyed as the general path keys it", async () => {
    await clock.advance(85_000); // www A: 100 s TTL, stored 92 s ago
    const calls = auth.calls;
    handler(makeQuery("WWW.example.test", "A"), info());
    expect(auth.calls).toBe(calls + 1);
    expect(auth.revalidations.at(-1)).toBe(true);
    // The general path joins that fetch instead of starting another.
    const q = (parseQuery(makeQuery("www.example.test", "A")) as { query: Query }).query;
    cache.lookup(q.key, q.name, q.qtype);
    expect(auth.calls).toBe(calls + 1);
    expect(cache.metrics.prefetches).toBe(1);
  });
});
