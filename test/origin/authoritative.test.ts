import type { Answer } from "dns-packet";
import dnsPacket from "dns-packet";
import { describe, expect, it } from "vitest";
import { answerQuery, MAX_CNAME_HOPS, resolveQuestion } from "../../origin/authoritative.ts";
import { exampleZones } from "./authoritative-fixture.ts";

const zones = exampleZones();

/** Answers as "name type data" lines, for readable assertions. */
function lines(answers: Answer[] | undefined): string[] {
  return (answers ?? []).map((a) => {
    const data = "data" in a ? a.data : undefined;
    const shown = Array.isArray(data)
      ? data.map(String).join(" ")
      : typeof data === "object"
        ? JSON.stringify(data)
        : String(data);
    return `${a.name} ${a.type} ${shown}`;
  });
}

function ttls(answers: Answer[]): number[] {
  return answers.map((a) => ("ttl" in a ? (a.ttl ?? -1) : -1));
}

describe("resolveQuestion", () => {
  it("answers an exact match authoritatively, case-insensitively, with the RRset TTL and version", () => {
    const r = resolveQuestion(zones, "WWW.Example.Test.", "A");
    expect(r).toMatchObject({
      rcode: "NOERROR",
      aa: true,
      zone: "example.test",
      serial: 2024010101,
      ttl: 300,
    });
    expect(lines(r.answers)).toEqual([
      "www.example.test A 192.0.2.1",
      "www.example.test A 192.0.2.2",
    ]);
    expect(r.authority).toEqual([]);
    expect(r.version).toBe(2024010101); // no RRset version yet: the zone serial
  });

  it("reports the newest RRset version in the answer", () => {
    const z = exampleZones();
    const zone = z.zones.get("example.test")!;
    zone.put({ ...zone.get("alias2.example.test", "CNAME")!, version: 2024010105 });
    zone.put({ ...zone.get("www.example.test", "A")!, version: 2024010103 });
    expect(resolveQuestion(z, "alias.example.test", "A").version).toBe(2024010105);
    expect(resolveQuestion(z, "www.example.test", "A").version).toBe(2024010103);
  });

  it("orders versions by RFC 1982 across a serial wrap, for answers, referrals and negative answers", () => {
    const z = exampleZones();
    const zone = z.zones.get("example.test")!;
    const beforeWrap = 2 ** 32 - 2; // written just before the serial wrapped
    const afterWrap = 1;
    zone.put({
      ...zone.soa,
      data: [{ ...zone.soa.data[0]!, serial: afterWrap }],
      version: afterWrap,
    });
    zone.put({ ...zone.get("alias.example.test", "CNAME")!, version: beforeWrap });
    zone.put({ ...zone.get("alias2.example.test", "CNAME")!, version: 2 ** 32 - 1 });
    zone.put({ ...zone.get("www.example.test", "A")!, version: afterWrap });
    zone.put({ ...zone.get("dangling.example.test", "CNAME")!, version: beforeWrap });
    zone.put({ ...zone.get("sub.example.test", "NS")!, version: 0 });
    expect(resolveQuestion(z, "alias.example.test", "A").version).toBe(afterWrap);
    expect(resolveQuestion(z, "alias.example.test", "CNAME").version).toBe(beforeWrap);
    expect(resolveQuestion(z, "dangling.example.test", "A").version).toBe(afterWrap);
    expect(resolveQuestion(z, "nope.example.test", "A").version).toBe(afterWrap);
    const referral = resolveQuestion(z, "x.sub.example.test", "A");
    expect(referral.authority.map((a) => a.type)).toEqual(["NS"]);
    expect(referral.version).toBe(0);
  });

  it("follows a CNAME chain inside the zone, TTL the minimum of the chain", () => {
    const r = resolveQuestion(zones, "alias.example.test", "A");
    expect(r.rcode).toBe("NOERROR");
    expect(r.aa).toBe(true);
    expect(lines(r.answers)).toEqual([
      "alias.example.test CNAME alias2.example.test",
      "alias2.example.test CNAME www.example.test",
      "www.example.test A 192.0.2.1",
      "www.example.test A 192.0.2.2",
    ]);
    expect(r.ttl).toBe(60);
  });

  it("answers a CNAME query with the CNAME only", () => {
    const r = resolveQuestion(zones, "alias.example.test", "CNAME");
    expect(lines(r.answers)).toEqual(["alias.example.test CNAME alias2.example.test"]);
  });

  it("follows a CNAME into another zone it serves, and stops at one it does not", () => {
    const into = resolveQuestion(zones, "toother.example.test", "A");
    expect(lines(into.answers)).toEqual([
      "toother.example.test CNAME www.other.test",
      "www.other.test A 198.51.100.1",
    ]);
    const out = resolveQuestion(zones, "outside.example.test", "A");
    expect(out).toMatchObject({ rcode: "NOERROR", aa: true, ttl: 3600 });
    expect(lines(out.answers)).toEqual(["outside.example.test CNAME www.elsewhere.invalid"]);
  });

  it("ends a CNAME loop after at most MAX_CNAME_HOPS records", () => {
    const r = resolveQuestion(zones, "loop1.example.test", "A");
    expect(r.rcode).toBe("NOERROR");
    expect(lines(r.answers)).toEqual([
      "loop1.example.test CNAME loop2.example.test",
      "loop2.example.test CNAME loop1.example.test",
    ]);
    expect(r.answers.length).toBeLessThanOrEqual(MAX_CNAME_HOPS);
  });

  it("gives NXDOMAIN with the CNAME and the SOA when the chain ends at a missing name (RFC 6604)", () => {
    const r = resolveQuestion(zones, "dangling.example.test", "A");
    expect(r.rcode).toBe("NXDOMAIN");
    expect(lines(r.answers)).toEqual(["dangling.example.test CNAME nothing.example.test"]);
    expect(r.authority.map((a) => a.type)).toEqual(["SOA"]);
  });

  it("answers NXDOMAIN with the SOA at TTL min(SOA TTL, MINIMUM) (RFC 2308 §3)", () => {
    const r = resolveQuestion(zones, "nope.example.test", "A");
    expect(r).toMatchObject({ rcode: "NXDOMAIN", aa: true, ttl: 300, version: 2024010101 });
    expect(r.answers).toEqual([]);
    expect(r.authority).toHaveLength(1);
    expect(r.authority[0]).toMatchObject({ name: "example.test", type: "SOA", ttl: 300 });
    // In other.test the SOA TTL (600) is above MINIMUM (60): the smaller wins.
    const other = resolveQuestion(zones, "nope.other.test", "TXT");
    expect(other.ttl).toBe(60);
    expect(ttls(other.authority)).toEqual([60]);
  });

  it("answers NODATA (NOERROR, no answer, SOA) for a name without that type", () => {
    const r = resolveQuestion(zones, "www.example.test", "TXT");
    expect(r).toMatchObject({ rcode: "NOERROR", aa: true, answers: [], ttl: 300 });
    expect(r.authority.map((a) => a.type)).toEqual(["SOA"]);
  });

  it("answers NODATA, not NXDOMAIN, for an empty non-terminal (RFC 8020)", () => {
    expect(resolveQuestion(zones, "b.c.example.test", "A").rcode).toBe("NOERROR");
    expect(resolveQuestion(zones, "c.example.test", "A").rcode).toBe("NOERROR");
    expect(resolveQuestion(zones, "x.b.c.example.test", "A").rcode).toBe("NXDOMAIN");
  });

  it("refuses names outside its zones, and zone transfers", () => {
    expect(resolveQuestion(zones, "www.example.com", "A")).toMatchObject({
      rcode: "REFUSED",
      aa: false,
      answers: [],
    });
    expect(resolveQuestion(zones, "example.test", "AXFR").rcode).toBe("REFUSED");
  });

  it("answers NXDOMAIN for a name no zone could hold that falls inside a zone", () => {
    expect(resolveQuestion(zones, "bad name!.example.test", "A")).toMatchObject({
      rcode: "NXDOMAIN",
      aa: true,
    });
    expect(resolveQuestion(zones, "bad name!.example.com", "A").rcode).toBe("REFUSED");
  });

  it("synthesises from a wildcard for names that do not exist (RFC 4592)", () => {
    const r = resolveQuestion(zones, "anything.wild.example.test", "TXT");
    expect(lines(r.answers)).toEqual(["anything.wild.example.test TXT wildcard"]);
    expect(lines(resolveQuestion(zones, "a.b.wild.example.test", "TXT").answers)).toEqual([
      "a.b.wild.example.test TXT wildcard",
    ]);
    expect(resolveQuestion(zones, "anything.wild.example.test", "A")).toMatchObject({
      rcode: "NOERROR",
      answers: [],
    });
    // An existing name is not covered by the wildcard.
    expect(resolveQuestion(zones, "real.wild.example.test", "TXT")).toMatchObject({
      rcode: "NOERROR",
      answers: [],
    });
  });

  it("refers queries below a delegation, with glue, not authoritatively", () => {
    const r = resolveQuestion(zones, "www.sub.example.test", "A");
    expect(r).toMatchObject({ rcode: "NOERROR", aa: false, answers: [] });
    expect(lines(r.authority)).toEqual(["sub.example.test NS ns.sub.example.test"]);
    expect(lines(r.additional)).toEqual(["ns.sub.example.test A 192.0.2.200"]);
  });

  it("answers ANY with one RRset (RFC 8482)", () => {
    const r = resolveQuestion(zones, "www.example.test", "ANY");
    expect(r.rcode).toBe("NOERROR");
    expect(new Set(r.answers.map((a) => a.type))).toEqual(new Set(["A"]));
  });

  it("adds addresses of in-zone MX, SRV and NS targets to the additional section", () => {
    expect(lines(resolveQuestion(zones, "example.test", "MX").additional)).toEqual([
      "mail.example.test A 192.0.2.25",
    ]);
    expect(lines(resolveQuestion(zones, "_sip._tcp.example.test", "SRV").additional)).toEqual([
      "sip.example.test A 192.0.2.60",
    ]);
    expect(lines(resolveQuestion(zones, "example.test", "NS").additional)).toEqual([
      "ns1.example.test A 192.0.2.53",
    ]);
  });
});

describe("answerQuery", () => {
  const query = (name: string, type = "A", extra: Partial<dnsPacket.Packet> = {}) =>
    dnsPacket.encode({
      type: "query",
      id: 4242,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ name, type: type as "A" }],
      ...extra,
    });
  const rcodeOf = (wire: Buffer) => wire.readUInt16BE(2) & 0xf;

  it("answers with AA, RD copied, the ID and the question as sent", () => {
    const { wire, resolution } = answerQuery(query("WwW.ExAmPlE.TeSt"), zones);
    const res = dnsPacket.decode(wire);
    expect(res.id).toBe(4242);
    expect(res.flag_aa).toBe(true);
    expect(res.flag_rd).toBe(true);
    expect(res.questions?.[0]?.name).toBe("WwW.ExAmPlE.TeSt");
    expect(res.answers).toHaveLength(2);
    expect(resolution?.rcode).toBe("NOERROR");
  });

  it("never throws on garbage, and answers FORMERR with the ID when there is one", () => {
    expect(answerQuery(Buffer.alloc(0), zones).wire).toHaveLength(0);
    expect(answerQuery(Buffer.from([1]), zones).wire).toHaveLength(0);
    const short = answerQuery(Buffer.from([0xab, 0xcd, 0, 0, 1]), zones).wire;
    expect(short).toHaveLength(12);
    expect(short.readUInt16BE(0)).toBe(0xabcd);
    expect(rcodeOf(short)).toBe(1);
    let state = 12345;
    const random = () => {
      state = (state * 1103515245 + 12345) & 0x7fffffff;
      return state >> 16;
    };
    const valid = query("www.example.test", "A", {
      additionals: [
        { name: ".", type: "OPT", udpPayloadSize: 1232, flags: 0 } as unknown as Answer,
      ],
    });
    for (let n = 0; n < 1000; n++) {
      // Half pure junk, half a real query with a few octets flipped.
      const junk =
        n % 2
          ? Buffer.from(Array.from({ length: 12 + (random() % 60) }, () => random() & 0xff))
          : Buffer.from(valid);
      if (n % 2 === 0) for (let k = 0; k < 3; k++) junk[random() % junk.length] = random() & 0xff;
      junk[2] = junk[2]! & 0x7f; // a query, not a response
      const { wire } = answerQuery(junk, zones, { maxUdp: 4096 });
      expect(wire.length).toBeGreaterThanOrEqual(12);
      expect(wire.readUInt16BE(0)).toBe(junk.readUInt16BE(0));
    }
  });

  it("answers FORMERR for two questions, and drops responses", () => {
    const two = dnsPacket.encode({
      type: "query",
      id: 7,
      questions: [
        { name: "a.example.test", type: "A" },
        { name: "b.example.test", type: "A" },
      ],
    });
    expect(rcodeOf(answerQuery(two, zones).wire)).toBe(1);
    const response = dnsPacket.encode({
      type: "response",
      id: 7,
      questions: [{ name: "www.example.test", type: "A" }],
    });
    expect(answerQuery(response, zones).wire).toHaveLength(0);
  });

  it("answers NOTIMP for opcodes other than QUERY, REFUSED for class CH", () => {
    const notify = query("example.test", "SOA");
    notify.writeUInt16BE((4 << 11) | 0x0100, 2);
    const res = answerQuery(notify, zones).wire;
    expect(rcodeOf(res)).toBe(4);
    expect((res.readUInt16BE(2) >> 11) & 0xf).toBe(4);
    const chaos = dnsPacket.encode({
      type: "query",
      id: 1,
      questions: [{ name: "version.bind", type: "TXT", class: "CH" }],
    });
    expect(rcodeOf(answerQuery(chaos, zones).wire)).toBe(5);
  });

  it("truncates over the UDP limit: 512 without EDNS, the client's EDNS size with it", () => {
    const plain = answerQuery(query("medium.example.test", "TXT"), zones, { maxUdp: 4096 }).wire;
    expect(dnsPacket.decode(plain).flag_tc).toBe(true);
    expect(dnsPacket.decode(plain).answers).toHaveLength(0);
    const opt = (size: number) => ({
      additionals: [
        { name: ".", type: "OPT", udpPayloadSize: size, flags: 0 } as unknown as Answer,
      ],
    });
    const edns = answerQuery(query("medium.example.test", "TXT", opt(1232)), zones, {
      maxUdp: 4096,
    }).wire;
    expect(dnsPacket.decode(edns).flag_tc).toBe(false);
    const big = answerQuery(query("big.example.test", "TXT", opt(1232)), zones, {
      maxUdp: 4096,
    }).wire;
    expect(dnsPacket.decode(big).flag_tc).toBe(true);
    expect(big.length).toBeLessThanOrEqual(1232);
    const tcp = answerQuery(query("big.example.test", "TXT"), zones).wire;
    expect(dnsPacket.decode(tcp).answers).toHaveLength(10);
  });

  it("answers BADVERS to EDNS version 1 and echoes NSID when asked", () => {
    const v1 = query("www.example.test", "A", {
      additionals: [
        {
          name: ".",
          type: "OPT",
          udpPayloadSize: 1232,
          ednsVersion: 1,
          flags: 0,
        } as unknown as Answer,
      ],
    });
    const bad = dnsPacket.decode(answerQuery(v1, zones).wire);
    const badOpt = bad.additionals?.find((a) => a.type === "OPT") as
      | { extendedRcode: number }
      | undefined;
    expect(badOpt?.extendedRcode).toBe(1);
    const withNsid = query("www.example.test", "A", {
      additionals: [
        {
          name: ".",
          type: "OPT",
          udpPayloadSize: 1232,
          flags: 0,
          options: [{ code: 3, data: Buffer.alloc(0) }],
        } as unknown as Answer,
      ],
    });
    const res = dnsPacket.decode(answerQuery(withNsid, zones, { nsid: "origin-1" }).wire);
    const opt = res.additionals?.find((a) => a.type === "OPT") as {
      udpPayloadSize: number;
      options: { code: number; data: Buffer }[];
    };
    expect(opt.udpPayloadSize).toBe(1232);
    expect(opt.options[0]?.data.toString()).toBe("origin-1");
  });
});
