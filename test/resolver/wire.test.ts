import * as packet from "dns-packet";
import { describe, expect, it } from "vitest";
import {
  forgetParsedAnswers,
  type StoredAnswer,
  storeAnswer,
  UpstreamError,
} from "../../resolver/answer.ts";
import { asciiLower, nameOfWire, RCODE, readName } from "../../resolver/message.ts";
import { parseQuery, type Query, RCODE_BADVERS } from "../../resolver/query.ts";
import { renderAnswer, renderRefusal, type WireOptions } from "../../resolver/wire.ts";
import { makeQuery, SOA_DATA } from "./fake-authority.ts";

const policy = { minTtl: 0, maxTtl: 86_400, maxNegativeTtl: 3_600 };
const opts: WireOptions = { udpPayload: 1232, nsid: Buffer.from("res-1") };

function query(msg: Buffer): Query {
  const parsed = parseQuery(msg);
  if (!parsed || !("query" in parsed)) throw new Error(`not a query: ${JSON.stringify(parsed)}`);
  return parsed.query;
}

/** dns-packet encodes the RCODE from the low bits of `flags`. */
function response(p: Partial<packet.Packet>, rcode = 0): Buffer {
  const flags = packet.AUTHORITATIVE_ANSWER | rcode;
  return packet.encode({ type: "response", id: 99, ...p, flags } as packet.Packet);
}

function a(name: string, ttl: number, ip: string): packet.Answer {
  return { name, type: "A", class: "IN", ttl, data: ip };
}

const soa: packet.Answer = {
  name: "example.test",
  type: "SOA",
  class: "IN",
  ttl: 300,
  data: SOA_DATA,
};

function stored(q: Query, p: Partial<packet.Packet>, age = 0, rcode = 0): StoredAnswer {
  const questions = p.questions ?? [{ name: "www.example.test", type: "A", class: "IN" }];
  return storeAnswer(response({ questions, ...p }, rcode), q.name, q.qtype, age, policy);
}

describe("parseQuery", () => {
  it("reads the question, keys it case-insensitively and reads EDNS with NSID", () => {
    const q = query(makeQuery("WwW.Example.TEST", "A", { edns: 4096, nsid: true }));
    expect(q.key).toBe(query(makeQuery("www.example.test", "A")).key);
    expect(q.qtype).toBe(1);
    expect(q.edns).toEqual({ udpSize: 4096, version: 0, dnssecOk: false, nsid: true });
    expect(query(makeQuery("www.example.test", "A", { edns: 100 })).edns?.udpSize).toBe(512);
  });

  it("drops responses and runts without an ID, answers FORMERR for garbage and NOTIMP for other opcodes", () => {
    expect(parseQuery(Buffer.of(0x12))).toBeUndefined();
    expect(parseQuery(Buffer.of(0x12, 0x34))).toMatchObject({
      refusal: { rcode: RCODE.FORMERR, id: 0x1234, nameEnd: undefined },
    });
    expect(parseQuery(Buffer.from("short"))).toMatchObject({ refusal: { rcode: RCODE.FORMERR } });
    expect(parseQuery(Buffer.of(0x12, 0x34, 0x80))).toBeUndefined();
    const resp = makeQuery("www.example.test", "A");
    resp[2] = resp[2]! | 0x80;
    expect(parseQuery(resp)).toBeUndefined();
    const garbage = Buffer.from("0123456789abcdefghijklmnopqrstuvwxyz");
    garbage[4] = 0;
    garbage[5] = 1;
    garbage[12] = 200; // label length over 63
    expect(parseQuery(garbage)).toMatchObject({ refusal: { rcode: RCODE.FORMERR, id: 0x3031 } });
    const truncated = makeQuery("www.example.test", "A").subarray(0, 20);
    expect(parseQuery(truncated)).toMatchObject({ refusal: { rcode: RCODE.FORMERR } });
    const notify = makeQuery("www.example.test", "SOA");
    notify[2] = (4 << 3) | (notify[2]! & 0x87);
    expect(parseQuery(notify)).toMatchObject({ refusal: { rcode: RCODE.NOTIMP } });
    expect(parseQuery(makeQuery("example.test", "AXFR"))).toMatchObject({
      refusal: { rcode: RCODE.NOTIMP },
    });
  });

  it("answers BADVERS for EDNS versions above 0 (RFC 6891 §6.1.3)", () => {
    const msg = makeQuery("www.example.test", "A", { edns: 1232 });
    msg[msg.length - 11 + 6] = 1; // OPT TTL octet 2: VERSION
    const parsed = parseQuery(msg);
    if (!parsed || !("refusal" in parsed)) throw new Error("expected a refusal");
    const out = packet.decode(renderRefusal(msg, parsed.refusal, opts));
    const opt = out.additionals?.find((r) => r.type === "OPT") as packet.OptAnswer;
    expect(opt.extendedRcode).toBe(RCODE_BADVERS >> 4);
    expect((out as { rcode?: string }).rcode).toBe("NOERROR");
  });
});

describe("storeAnswer", () => {
  const q = query(makeQuery("www.example.test", "A"));

  it("gives every record of an RRset the lowest TTL, less the Age, and drops the OPT", () => {
    const s = stored(
      q,
      {
        answers: [a("www.example.test", 300, "192.0.2.1"), a("www.example.test", 100, "192.0.2.2")],
        additionals: [
          { type: "OPT", name: ".", udpPayloadSize: 1232, flags: 0, options: [] } as never,
        ],
      },
      40,
    );
    expect(s.ttl).toBe(60);
    expect(s.negative).toBe(false);
    const out = packet.decode(s.wire);
    expect(out.id).toBe(0);
    expect(out.answers?.map((r) => (r as { ttl: number }).ttl)).toEqual([60, 60]);
    expect(out.additionals).toEqual([]);
    expect(s.owners).toEqual(["www.example.test"]);
  });

  it("records how far past its TTL an answer arrived (Age > TTL), whatever the clamps", () => {
    const answers = [a("www.example.test", 100, "192.0.2.1")];
    expect(stored(q, { answers }, 100).staleness).toBeUndefined();
    expect(stored(q, { answers }, 150)).toMatchObject({ staleness: 50, ttl: 0 });
    const clamped = storeAnswer(
      response({ questions: [{ name: "www.example.test", type: "A" }], answers }),
      q.name,
      1,
      150,
      { ...policy, minTtl: 300 },
    );
    expect(clamped).toMatchObject({ staleness: 50, ttl: 300 });
    expect(stored(q, { authorities: [soa] }, 61, RCODE.NXDOMAIN).staleness).toBe(1);
    expect(stored(q, { answers: [a("www.example.test", 0, "192.0.2.1")] }, 5).staleness).toBe(
      undefined,
    );
  });

  it("clamps positive TTLs to [minTtl, maxTtl]", () => {
    const low = storeAnswer(
      response({
        questions: [{ name: "www.example.test", type: "A" }],
        answers: [a("www.example.test", 5, "192.0.2.1")],
      }),
      q.name,
      1,
      0,
      { ...policy, minTtl: 30 },
    );
    expect(low.ttl).toBe(30);
    const high = storeAnswer(
      response({
        questions: [{ name: "www.example.test", type: "A" }],
        answers: [a("www.example.test", 9e5, "192.0.2.1")],
      }),
      q.name,
      1,
      0,
      policy,
    );
    expect(high.ttl).toBe(86_400);
  });

  it("caches NXDOMAIN for min(SOA TTL, MINIMUM), capped (RFC 2308 §5)", () => {
    const nx = stored(q, { authorities: [soa] }, 0, RCODE.NXDOMAIN);
    expect(nx).toMatchObject({ negative: true, ttl: 60, rcode: RCODE.NXDOMAIN });
    expect(packet.decode(nx.wire).authorities).toMatchObject([{ type: "SOA", ttl: 60 }]);
    const capped = storeAnswer(
      response({ questions: [{ name: "www.example.test", type: "A" }], authorities: [soa] }),
      q.name,
      1,
      0,
      { ...policy, maxNegativeTtl: 10 },
    );
    expect(capped).toMatchObject({ negative: true, ttl: 10, rcode: RCODE.NOERROR });
    expect(stored(q, {}, 0, RCODE.NXDOMAIN).ttl).toBe(0);
  });

  it("stores the same answer whether its response was parsed lately or not, each with its own Age, clamps and arrays", () => {
    const cname: packet.Answer = {
      name: "www.example.test",
      type: "CNAME",
      class: "IN",
      ttl: 200,
      data: "web.example.test",
    };
    const opt = { type: "OPT", name: ".", udpPayloadSize: 1232, flags: 0, options: [] } as never;
    const cases: [Partial<packet.Packet>, number][] = [
      [
        {
          answers: [
            a("www.example.test", 300, "192.0.2.1"),
            a("www.example.test", 100, "192.0.2.2"),
          ],
          additionals: [a("ns.example.test", 50, "192.0.2.9"), opt],
        },
        0,
      ],
      [{ answers: [cname, a("web.example.test", 120, "192.0.2.3")] }, 0],
      [{ authorities: [soa] }, RCODE.NXDOMAIN],
      [{ authorities: [soa] }, 0],
    ];
    const policies = [
      policy,
      { ...policy, minTtl: 150 },
      { ...policy, maxTtl: 90, maxNegativeTtl: 20 },
    ];
    // Responses of other IDs: as many as push every case's parse out of the kept ones.
    const others = Array.from({ length: 12 }, (_, id) =>
      packet.encode({
        type: "response",
        id: 1000 + id,
        flags: packet.AUTHORITATIVE_ANSWER,
        questions: [{ name: "www.example.test", type: "A", class: "IN" }],
        answers: [a("www.example.test", 60, "192.0.2.7")],
      } as packet.Packet),
    );
    const flush = () => {
      for (const o of others) storeAnswer(o, q.name, q.qtype, 0, policy);
    };
    for (const [p, rcode] of cases) {
      const bytes = response(
        { questions: [{ name: "WWW.example.test", type: "A", class: "IN" }], ...p },
        rcode,
      );
      for (const pol of policies) {
        for (const age of [0, 40, 130, 400]) {
          // Parsed afresh, the only response kept: the answer as it was before any was kept.
          forgetParsedAnswers();
          const fresh = storeAnswer(bytes, q.name, q.qtype, age, pol);
          flush();
          const cold = storeAnswer(bytes, q.name, q.qtype, age, pol);
          const warm = storeAnswer(bytes, q.name, q.qtype, age, pol);
          expect(cold).toEqual(fresh);
          expect(warm).toEqual(fresh);
          expect(warm.wire).not.toBe(cold.wire);
          // Arrays of its own: what one stored answer's holder does to them reaches no other.
          cold.owners.push("mutated.example.test");
          cold.ttlAt.push(9);
          cold.wire.fill(0);
          expect(storeAnswer(bytes, q.name, q.qtype, age, pol)).toEqual(fresh);
        }
      }
    }
    // The same bytes at another Age: TTLs from that Age, not the one parsed first.
    const answers = [
      a("www.example.test", 300, "192.0.2.1"),
      a("www.example.test", 100, "192.0.2.2"),
    ];
    expect(stored(q, { answers }, 40).ttl).toBe(60);
    expect(stored(q, { answers }, 0).ttl).toBe(100);
    expect(
      packet
        .decode(stored(q, { answers }, 10).wire)
        .answers?.map((r) => (r as { ttl: number }).ttl),
    ).toEqual([90, 90]);
  });

  it("refuses SERVFAIL and answers to another question", () => {
    expect(() => stored(q, {}, 0, RCODE.SERVFAIL)).toThrow(UpstreamError);
    expect(() => stored(q, { questions: [{ name: "other.example.test", type: "A" }] })).toThrow(
      /different question/,
    );
  });
});

describe("renderAnswer", () => {
  const answers = [
    a("www.example.test", 300, "192.0.2.1"),
    a("www.example.test", 300, "192.0.2.2"),
  ];

  it("patches ID, RD, the question's case and counts TTLs down", () => {
    const msg = makeQuery("wWw.ExAmPlE.tEsT", "A", { id: 4242 });
    const q = query(msg);
    const out = packet.decode(
      renderAnswer(stored(q, { answers }), 17, undefined, msg, q, "udp", opts),
    );
    expect(out.id).toBe(4242);
    expect(out.flags! & packet.RECURSION_DESIRED).toBeTruthy();
    expect(out.flags! & packet.RECURSION_AVAILABLE).toBeTruthy();
    expect(out.flags! & packet.AUTHORITATIVE_ANSWER).toBe(0);
    expect(out.questions?.[0]?.name).toBe("wWw.ExAmPlE.tEsT");
    expect(out.answers?.map((r) => (r as { ttl: number }).ttl)).toEqual([283, 283]);
    expect(out.additionals).toEqual([]);
    const late = packet.decode(
      renderAnswer(stored(q, { answers }), 400, undefined, msg, q, "udp", opts),
    );
    expect(late.answers?.map((r) => (r as { ttl: number }).ttl)).toEqual([0, 0]);
  });

  it("adds OPT with NSID, and on stale answers TTL 30 with EDE 3 (RFC 8914 §4.4)", () => {
    const msg = makeQuery("www.example.test", "A", { edns: 1232, nsid: true });
    const q = query(msg);
    const out = packet.decode(renderAnswer(stored(q, { answers }), 1000, 30, msg, q, "udp", opts));
    expect(out.answers?.map((r) => (r as { ttl: number }).ttl)).toEqual([30, 30]);
    const opt = out.additionals?.find((r) => r.type === "OPT") as packet.OptAnswer;
    expect(opt.udpPayloadSize).toBe(1232);
    expect(opt.options).toEqual([
      { code: 3, type: "NSID", data: Buffer.from("res-1") },
      { code: 15, type: "OPTION_15", data: Buffer.from([0, 3]) },
    ]);
  });

  it("sets TC and sends the question alone when the answer exceeds the UDP size", () => {
    const many = Array.from({ length: 30 }, (_, i) => a("www.example.test", 300, `192.0.2.${i}`));
    const plain = makeQuery("www.example.test", "A");
    const q = query(plain);
    const s = stored(q, { answers: many });
    const small = packet.decode(renderAnswer(s, 0, undefined, plain, q, "udp", opts));
    expect(small.flags! & packet.TRUNCATED_RESPONSE).toBeTruthy();
    expect(small.answers).toEqual([]);
    expect(small.questions?.[0]?.name).toBe("www.example.test");
    const big = makeQuery("www.example.test", "A", { edns: 1232 });
    const full = packet.decode(renderAnswer(s, 0, undefined, big, query(big), "udp", opts));
    expect(full.answers).toHaveLength(30);
    const tcp = packet.decode(renderAnswer(s, 0, undefined, plain, q, "tcp", opts));
    expect(tcp.flags! & packet.TRUNCATED_RESPONSE).toBe(0);
    expect(tcp.answers).toHaveLength(30);
  });
});

describe("asciiLower", () => {
  it("lowers ASCII letters only (RFC 4343 §3), and gives a lower-case name back as it is", () => {
    expect(asciiLower("WwW.Example.TEST")).toBe("www.example.test");
    expect(asciiLower("\u00c0B\u00ff-Z")).toBe("\u00c0b\u00ff-z");
    const lower = "www.example.test";
    expect(asciiLower(lower)).toBe(lower);
    expect(asciiLower("")).toBe("");
  });
});

describe("nameOfWire", () => {
  it("reads a wire name as readName does, for the name read last and for another", () => {
    const wire = (name: string) => query(makeQuery(name, "A")).name;
    const names = ["www.example.test", "WWW.Example.TEST", "a.b.c.example.test", "example.test"];
    for (const first of names)
      for (const second of names) {
        for (const n of [first, second, first, first]) {
          const w = wire(n);
          expect(nameOfWire(w)).toBe(readName(w, 0));
        }
      }
    // The caller's buffer is not kept: changed in place, it is read anew.
    const w = Buffer.from(wire("www.example.test"));
    expect(nameOfWire(w)).toBe("www.example.test");
    w[1] = "x".charCodeAt(0);
    expect(nameOfWire(w)).toBe("xww.example.test");
  });
});
