/** The authoritative server on real sockets, checked with the real dig and kdig. */
import dnsPacket from "dns-packet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DnsServer, queryTcp, queryUdp } from "../../core/dns-transport.ts";
import { startAuthoritativeDns } from "../../origin/dns-server.ts";
import { dig, kdig } from "../support/dig.ts";
import { exampleZones } from "./authoritative-fixture.ts";

let server: DnsServer;
const tcpPorts = new Set<number>();
let tcpQueries = 0;

beforeAll(async () => {
  server = await startAuthoritativeDns(exampleZones(), {
    host: "127.0.0.1",
    port: 0,
    nsid: "origin-test",
    onAnswer: (info) => {
      if (info.transport !== "tcp") return;
      tcpPorts.add(info.port);
      tcpQueries++;
    },
  });
});
afterAll(() => server.close());

const ask = (...args: string[]) =>
  dig([`@127.0.0.1`, "-p", String(server.port), "+time=2", "+tries=1", ...args]);

function status(out: string): string | undefined {
  return /status: (\w+)/.exec(out)?.[1];
}
function flags(out: string): string[] {
  return (/;; flags: ([a-z ]+);/.exec(out)?.[1] ?? "").trim().split(" ");
}
/** The records of one section, as dig prints them, whitespace collapsed. */
function section(out: string, name: "ANSWER" | "AUTHORITY" | "ADDITIONAL" | "QUESTION"): string[] {
  const block = new RegExp(`;; ${name} SECTION:\\n([\\s\\S]*?)(?:\\n\\n|$)`).exec(out)?.[1] ?? "";
  return block
    .split("\n")
    .filter((l) => l && !l.startsWith(";;"))
    .map((l) => l.replace(/\s+/g, " ").trim());
}

describe("authoritative DNS with dig", () => {
  it("answers www.example.test with aa and the records", async () => {
    const out = await ask("www.example.test");
    expect(status(out)).toBe("NOERROR");
    expect(flags(out)).toContain("aa");
    expect(section(out, "ANSWER").sort()).toEqual([
      "www.example.test. 300 IN A 192.0.2.1",
      "www.example.test. 300 IN A 192.0.2.2",
    ]);
  });

  const types: [string, string, string][] = [
    ["www.example.test", "AAAA", "www.example.test. 3600 IN AAAA 2001:db8::1"],
    ["alias2.example.test", "CNAME", "alias2.example.test. 120 IN CNAME www.example.test."],
    ["example.test", "MX", "example.test. 3600 IN MX 10 mail.example.test."],
    ["txt.example.test", "TXT", 'txt.example.test. 3600 IN TXT "v=spf1 -all" "second string"'],
    [
      "example.test",
      "SOA",
      "example.test. 3600 IN SOA ns1.example.test. hostmaster.example.test. 2024010101 7200 3600 1209600 300",
    ],
    [
      "_sip._tcp.example.test",
      "SRV",
      "_sip._tcp.example.test. 3600 IN SRV 10 60 5060 sip.example.test.",
    ],
    ["example.test", "CAA", 'example.test. 3600 IN CAA 0 issue "letsencrypt.org"'],
    ["1.ptr.example.test", "PTR", "1.ptr.example.test. 3600 IN PTR www.example.test."],
  ];
  it.each(types)("answers %s %s", async (name, type, record) => {
    const out = await ask(name, type);
    expect(flags(out)).toContain("aa");
    expect(section(out, "ANSWER")).toEqual([record]);
  });

  it("answers NS with both servers and the in-zone address as additional data", async () => {
    const out = await ask("example.test", "NS");
    expect(section(out, "ANSWER").sort()).toEqual([
      "example.test. 3600 IN NS ns.other.test.",
      "example.test. 3600 IN NS ns1.example.test.",
    ]);
    expect(section(out, "ADDITIONAL")).toContain("ns1.example.test. 3600 IN A 192.0.2.53");
  });

  it("answers NXDOMAIN with the SOA in authority at the negative TTL", async () => {
    const out = await ask("missing.example.test", "A");
    expect(status(out)).toBe("NXDOMAIN");
    expect(flags(out)).toContain("aa");
    expect(section(out, "ANSWER")).toEqual([]);
    expect(section(out, "AUTHORITY")).toEqual([
      "example.test. 300 IN SOA ns1.example.test. hostmaster.example.test. 2024010101 7200 3600 1209600 300",
    ]);
  });

  it("answers NODATA: NOERROR, no answer, the SOA in authority", async () => {
    const out = await ask("www.example.test", "MX");
    expect(status(out)).toBe("NOERROR");
    expect(out).toMatch(/ANSWER: 0, AUTHORITY: 1/);
    expect(section(out, "AUTHORITY")[0]).toMatch(/^example\.test\. 300 IN SOA /);
  });

  it("follows a CNAME chain", async () => {
    const out = await ask("alias.example.test", "A");
    expect(section(out, "ANSWER")).toEqual([
      "alias.example.test. 60 IN CNAME alias2.example.test.",
      "alias2.example.test. 120 IN CNAME www.example.test.",
      "www.example.test. 300 IN A 192.0.2.1",
      "www.example.test. 300 IN A 192.0.2.2",
    ]);
  });

  it("refuses names outside its zones, without aa", async () => {
    const out = await ask("www.example.com", "A");
    expect(status(out)).toBe("REFUSED");
    expect(flags(out)).not.toContain("aa");
  });

  it("echoes the question with the client's letter case (0x20)", async () => {
    const out = await ask("WwW.ExAmPlE.TeSt", "A");
    expect(section(out, "QUESTION")).toEqual([";WwW.ExAmPlE.TeSt. IN A"]);
    expect(section(out, "ANSWER")).toHaveLength(2);
  });

  it("sets TC over UDP when the answer exceeds the EDNS size; dig +ignore shows it", async () => {
    const out = await ask("big.example.test", "TXT", "+ignore");
    expect(flags(out)).toContain("tc");
    expect(section(out, "ANSWER")).toEqual([]);
    expect(out).toMatch(/MSG SIZE {2}rcvd: \d{2,3}\n/);
  });

  it("sets TC at 512 bytes without EDNS", async () => {
    const plain = await ask("medium.example.test", "TXT", "+ignore", "+noedns");
    expect(flags(plain)).toContain("tc");
    const edns = await ask("medium.example.test", "TXT", "+ignore");
    expect(flags(edns)).not.toContain("tc");
    expect(section(edns, "ANSWER")).toHaveLength(3);
  });

  it("dig retries a truncated answer over TCP and gets all of it", async () => {
    const before = tcpQueries;
    const out = await ask("big.example.test", "TXT");
    expect(out).toContain("Truncated, retrying in TCP mode.");
    expect(section(out, "ANSWER")).toHaveLength(10);
    expect(tcpQueries).toBe(before + 1);
  });

  it("honours a larger EDNS size: +bufsize=4096 gets the big answer over UDP", async () => {
    const before = tcpQueries;
    const out = await ask("big.example.test", "TXT", "+bufsize=4096");
    expect(flags(out)).not.toContain("tc");
    expect(section(out, "ANSWER")).toHaveLength(10);
    expect(out).toMatch(/\(UDP\)/);
    expect(tcpQueries).toBe(before);
  });

  it("advertises 1232 and returns NSID when asked", async () => {
    const out = await ask("www.example.test", "+nsid");
    expect(out).toMatch(/; EDNS: version: 0, flags:; udp: 1232/);
    expect(out).toMatch(/; NSID: .*\("origin-test"\)/);
  });

  it("answers BADVERS to EDNS version 1", async () => {
    const out = await ask("www.example.test", "+edns=1", "+noednsnegotiation");
    expect(status(out)).toBe("BADVERS");
  });

  it("answers NOTIMP to opcode STATUS and NOTIFY", async () => {
    expect(status(await ask("example.test", "SOA", "+opcode=status"))).toBe("NOTIMP");
    expect(status(await ask("example.test", "SOA", "+opcode=notify"))).toBe("NOTIMP");
  });
});

describe("authoritative DNS with raw sockets", () => {
  it("answers FORMERR to garbage bytes, echoing the ID", async () => {
    // ID 0xbeef, one question whose name runs off the end of the message.
    const garbage = Buffer.from([
      0xbe, 0xef, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 0x77, 0x77, 0x77, 0xff, 0xff,
    ]);
    const reply = await queryUdp("127.0.0.1", server.port, garbage);
    expect(reply.readUInt16BE(0)).toBe(0xbeef);
    expect(reply.readUInt16BE(2) & 0x8000).toBe(0x8000);
    expect(reply.readUInt16BE(2) & 0xf).toBe(1);
    const short = await queryUdp("127.0.0.1", server.port, Buffer.from([0x12, 0x34, 0x01]));
    expect(short).toHaveLength(12);
    expect(short.readUInt16BE(0)).toBe(0x1234);
    expect(short.readUInt16BE(2) & 0xf).toBe(1);
  });

  it("answers FORMERR over TCP too, and keeps the connection usable", async () => {
    const reply = await queryTcp(
      "127.0.0.1",
      server.port,
      Buffer.from([0, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0]),
    );
    expect(reply.readUInt16BE(2) & 0xf).toBe(1);
  });

  it("answers NOTIMP to a NOTIFY (opcode 4) built by hand", async () => {
    const notify = dnsPacket.encode({
      type: "query",
      id: 77,
      questions: [{ name: "example.test", type: "SOA" }],
    });
    notify.writeUInt16BE(4 << 11, 2);
    const reply = await queryUdp("127.0.0.1", server.port, notify);
    expect(reply.readUInt16BE(0)).toBe(77);
    expect(reply.readUInt16BE(2) & 0xf).toBe(4);
  });

  it("sends nothing back to a response packet", async () => {
    const response = dnsPacket.encode({
      type: "response",
      id: 5,
      questions: [{ name: "example.test", type: "SOA" }],
    });
    await expect(queryUdp("127.0.0.1", server.port, response, 300)).rejects.toThrow(/no DNS reply/);
  });
});

describe("authoritative DNS with kdig over TCP", () => {
  it("answers several queries on one kept-open TCP connection", async () => {
    tcpPorts.clear();
    const before = tcpQueries;
    const out = await kdig([
      "@127.0.0.1",
      "-p",
      String(server.port),
      "+tcp",
      "+keepopen",
      "www.example.test",
      "A",
      "example.test",
      "MX",
      "missing.example.test",
      "A",
      "big.example.test",
      "TXT",
    ]);
    const statuses = [...out.matchAll(/status: (\w+)/g)].map((m) => m[1]);
    expect(statuses).toEqual(["NOERROR", "NOERROR", "NXDOMAIN", "NOERROR"]);
    expect(out).toMatch(/www\.example\.test\.\s+300\s+IN\s+A\s+192\.0\.2\.1/);
    expect(out).toMatch(/example\.test\.\s+3600\s+IN\s+MX\s+10 mail\.example\.test\./);
    expect([...out.matchAll(/record-\d-x+/g)]).toHaveLength(10);
    expect(tcpQueries).toBe(before + 4);
    expect(tcpPorts.size).toBe(1);
  });
});
