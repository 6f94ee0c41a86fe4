/**
 * The origin's answer cache: byte-identical to the full answer path whatever
 * the ID, RD, letter case, EDNS shape and UDP limit, never used for signed
 * queries, and dropped at once when a commit changes what an answer was built
 * from (checked against a real `propagate origin` with dig).
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import dnsPacket from "dns-packet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseTsigKeys } from "../../core/tsig.ts";
import { AnswerCache, cacheKey } from "../../origin/answer-cache.ts";
import { answerQuery, MAX_EDNS_UDP, type Resolution } from "../../origin/authoritative.ts";
import { dig } from "../support/dig.ts";
import { type Running, startOriginProcess } from "../support/process.ts";
import { bigTxt, EXAMPLE, OTHER, Zones } from "./authoritative-fixture.ts";

const run = promisify(execFile);

/** A fixed-seed generator, so a failure is reproducible. */
function rng(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s / 0x80000000;
  };
}

function randomCase(name: string, r: () => number): string {
  return [...name].map((c) => (r() < 0.5 ? c.toUpperCase() : c.toLowerCase())).join("");
}

interface Shape {
  edns?: { udp: number; nsid?: boolean; cookie?: boolean; dnssecOk?: boolean };
}

function query(name: string, type: string, id: number, rd: boolean, shape: Shape): Buffer {
  const options: { code: number; data?: Buffer }[] = [];
  if (shape.edns?.nsid) options.push({ code: 3, data: Buffer.alloc(0) });
  if (shape.edns?.cookie) options.push({ code: 10, data: Buffer.from("0123456789abcdef", "hex") });
  return dnsPacket.encode({
    type: "query",
    id,
    flags: rd ? dnsPacket.RECURSION_DESIRED : 0,
    questions: [{ name, type: type as "A", class: "IN" }],
    additionals: shape.edns
      ? [
          {
            name: ".",
            type: "OPT",
            udpPayloadSize: shape.edns.udp,
            flags: shape.edns.dnssecOk ? dnsPacket.DNSSEC_OK : 0,
            options,
          } as unknown as dnsPacket.Answer,
        ]
      : [],
  });
}

describe("answer cache in answerQuery", () => {
  const zones = new Zones();
  zones.add(EXAMPLE, [bigTxt("big.example.test")]);
  zones.add(OTHER);
  const questions: [string, string][] = [
    ["www.example.test", "A"],
    ["www.example.test", "AAAA"],
    ["example.test", "MX"],
    ["example.test", "SOA"],
    ["alias.example.test", "A"],
    ["toother.example.test", "A"],
    ["missing.example.test", "A"],
    ["www.example.test", "TXT"],
    ["x.wild.example.test", "TXT"],
    ["host.sub.example.test", "A"],
    ["_sip._tcp.example.test", "SRV"],
    ["big.example.test", "TXT"],
    ["elsewhere.invalid", "A"],
    ["example.test", "ANY"],
  ];
  const shapes: Shape[] = [
    {},
    { edns: { udp: 1232 } },
    { edns: { udp: 512, nsid: true } },
    { edns: { udp: 4096, cookie: true, dnssecOk: true } },
    { edns: { udp: 100 } },
  ];

  it("answers byte for byte like the full path, over UDP and TCP, with random case, ID and RD", () => {
    const cache = new AnswerCache<Resolution>();
    const r = rng(11);
    let compared = 0;
    for (let round = 0; round < 3; round++) {
      for (const [name, type] of questions) {
        for (const shape of shapes) {
          for (const maxUdp of [MAX_EDNS_UDP, undefined]) {
            const q = query(randomCase(name, r), type, Math.floor(r() * 65536), r() < 0.5, shape);
            const opts = { nsid: "origin-1", ...(maxUdp !== undefined && { maxUdp }) };
            const plain = answerQuery(q, zones, opts);
            const cached = answerQuery(q, zones, { ...opts, cache });
            expect(cached.wire.equals(plain.wire), `${name} ${type} ${JSON.stringify(shape)}`).toBe(
              true,
            );
            expect(cached.resolution?.rcode).toBe(plain.resolution?.rcode);
            compared++;
          }
        }
      }
    }
    const { hits, entries } = cache.stats();
    // Everything after the first round is a hit; UDP and TCP share entries.
    expect(hits).toBeGreaterThanOrEqual((compared * 2) / 3);
    // UDP sizes do not split entries: { udp: 100 } shares { udp: 1232 }'s.
    expect(entries).toBe(questions.length * 4);
  });

  it("sends the big answer whole over TCP and truncated over UDP from one entry", () => {
    const cache = new AnswerCache<Resolution>();
    const q = query("BIG.example.test", "TXT", 7, true, { edns: { udp: 1232 } });
    for (let i = 0; i < 2; i++) {
      const udp = dnsPacket.decode(answerQuery(q, zones, { maxUdp: MAX_EDNS_UDP, cache }).wire);
      expect(udp.flags! & 0x0200).toBe(0x0200);
      expect(udp.answers).toHaveLength(0);
      const tcp = dnsPacket.decode(answerQuery(q, zones, { cache }).wire);
      expect(tcp.answers).toHaveLength(10);
      expect(tcp.questions![0]!.name).toBe("BIG.example.test");
    }
    expect(cache.stats().hits).toBe(3);
  });

  it("keys only plain queries: no responses, other opcodes, signed or odd sections, EDNS version 1", () => {
    const q = query("www.example.test", "A", 1, false, {});
    expect(cacheKey(q)?.hash).toBe(cacheKey(query("WWW.Example.TEST", "A", 9, true, {}))?.hash);
    const response = Buffer.from(q);
    response[2] = response[2]! | 0x80;
    expect(cacheKey(response)).toBeUndefined();
    const notify = Buffer.from(q);
    notify[2] = notify[2]! | (4 << 3);
    expect(cacheKey(notify)).toBeUndefined();
    // A second additional record (a TSIG after the OPT) is never keyed.
    const two = Buffer.concat([query("www.example.test", "A", 1, false, { edns: { udp: 1232 } })]);
    two.writeUInt16BE(2, 10);
    expect(cacheKey(two)).toBeUndefined();
    const v1 = query("www.example.test", "A", 1, false, { edns: { udp: 1232 } });
    v1[v1.length - 5] = 1; // EDNS VERSION
    expect(cacheKey(v1)).toBeUndefined();
    expect(cacheKey(Buffer.concat([q, Buffer.from([0])]))).toBeUndefined();
    expect(cacheKey(q.subarray(0, 20))).toBeUndefined();
    // A hash is only where to look: the question's bytes decide (as for a collision).
    const cache = new AnswerCache<Resolution>();
    answerQuery(q, zones, { cache });
    expect(cache.get(cacheKey(q)!, query("WWW.example.test", "A", 2, false, {}))).toBeDefined();
    expect(cache.get(cacheKey(q)!, query("www.example.tesu", "A", 2, false, {}))).toBeUndefined();
    expect(
      cache.get(cacheKey(q)!, query("www.example.test", "AAAA", 2, false, {})),
    ).toBeUndefined();
    // Different EDNS shapes are different entries.
    const shapesKeys = shapes.map(
      (s) => cacheKey(query("www.example.test", "A", 1, false, s))?.hash,
    );
    expect(new Set(shapesKeys.slice(0, 4)).size).toBe(4);
  });

  it("is bounded in bytes, oldest first; a zone created or deleted drops every answer", () => {
    const cache = new AnswerCache<Resolution>(4000);
    for (const [name, type] of questions)
      answerQuery(query(name, type, 1, false, {}), zones, { cache });
    expect(cache.stats().bytes).toBeLessThanOrEqual(4000);
    expect(cache.stats().entries).toBeLessThan(questions.length);

    const big = new AnswerCache<Resolution>();
    const ask = (name: string) =>
      answerQuery(query(name, "A", 1, false, {}), zones, { cache: big });
    ask("www.example.test");
    ask("www.other.test");
    ask("toother.example.test"); // built from example.test and other.test
    expect(big.stats().entries).toBe(3);
    // Per-RRset invalidation: test/origin/answer-cache-invalidation.test.ts.
    const www = { name: "www.other.test", type: "A" as const, rrset: null };
    big.onCommit({ op: "update", zone: "other.test", changes: [www] });
    expect(big.stats().entries).toBe(1);
    big.onCommit({ op: "create", zone: "new.test", changes: [] });
    expect(big.stats().entries).toBe(0);
    ask("www.example.test");
    big.onCommit({ op: "delete", zone: "other.test", changes: [] });
    expect(big.stats().entries).toBe(0);
  });
});

describe("answer cache in `propagate origin`", () => {
  let dir = "";
  let origin: Running;
  let y = "";
  const token = "cache-token-0123456789";
  const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "propagate-answer-cache-"));
    const text = (await run("tsig-keygen", ["-a", "hmac-sha256", "cache-key"])).stdout;
    await writeFile(join(dir, "keys.conf"), text);
    const k = parseTsigKeys(text)[0]!;
    y = `${k.algorithm}:${k.name}:${k.secret.toString("base64")}`;
    origin = await startOriginProcess(join(dir, "data"), token, [
      "--sample",
      "--tsig-keys",
      join(dir, "keys.conf"),
    ]);
  }, 20_000);
  afterAll(async () => {
    await origin?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const digAt = async (args: string[]) => {
    const [host, port] = origin.ready.dns!.split(":") as [string, string];
    return dig([`@${host}`, "-p", port, "+tries=1", "+time=5", ...args]);
  };
  const put = async (zone: string, path: string, body: unknown) => {
    const res = await fetch(`${origin.ready.http}/v1/zones/${zone}${path}`, {
      method: "PUT",
      headers,
      body: JSON.stringify(body),
    });
    expect(res.status, await res.clone().text()).toBeLessThan(300);
  };

  it("echoes the ID, RD and the question's random case from a cached answer", async () => {
    const r = rng(5);
    for (let i = 0; i < 6; i++) {
      const name = randomCase("www.example.test", r);
      const rd = i % 2 === 0;
      const out = await digAt([name, "A", rd ? "+rec" : "+norec", "+nocookie"]);
      // dig itself rejects a reply whose ID or question does not match (and says so).
      expect(out).not.toMatch(/mismatch/i);
      expect(out).toContain(`;${name}.\t`);
      expect(out).toMatch(/www\.example\.test\.\s+\d+\s+IN\s+A\s+192\.0\.2\.10/);
      const flags = /;; flags: ([a-z ]+);/.exec(out)?.[1]?.split(" ") ?? [];
      expect(flags.includes("rd")).toBe(rd);
      expect(flags).toContain("aa");
    }
  });

  it("answers a change at once after the write is acknowledged, for the name, a NODATA and an NXDOMAIN", async () => {
    for (let v = 1; v <= 3; v++) {
      // Warm every shape first, so a stale entry would be there to be served.
      await digAt(["www.example.test", "A", "+nocookie"]);
      await digAt(["new.example.test", "A", "+nocookie"]);
      await digAt(["mail.example.test", "TXT", "+nocookie"]);
      await put("example.test", "/rrsets/www/A", { ttl: 60, data: [`192.0.2.${100 + v}`] });
      await put("example.test", `/rrsets/new/A`, { ttl: 60, data: [`198.51.100.${v}`] });
      await put("example.test", "/rrsets/mail/TXT", { ttl: 60, data: [`v${v}`] });
      expect(await digAt(["WWW.example.TEST", "A", "+short"])).toBe(`192.0.2.${100 + v}\n`);
      expect(await digAt(["new.example.test", "A", "+short"])).toBe(`198.51.100.${v}\n`);
      expect(await digAt(["mail.example.test", "TXT", "+short"])).toBe(`"v${v}"\n`);
    }
  });

  it("follows a CNAME's target into another zone when that zone changes", async () => {
    const created = await fetch(`${origin.ready.http}/v1/zones/target.test`, {
      method: "PUT",
      headers,
      body: "{}",
    });
    expect(created.status).toBe(201);
    await put("target.test", "/rrsets/host/A", { ttl: 60, data: ["203.0.113.1"] });
    await put("example.test", "/rrsets/far/CNAME", { ttl: 60, data: ["host.target.test."] });
    expect(await digAt(["far.example.test", "A", "+short"])).toMatch(/203\.0\.113\.1/);
    await put("target.test", "/rrsets/host/A", { ttl: 60, data: ["203.0.113.2"] });
    expect(await digAt(["far.example.test", "A", "+short"])).toMatch(/203\.0\.113\.2/);
  });

  it("answers a TSIG-signed query signed, not from the cache's unsigned bytes", async () => {
    await digAt(["www.example.test", "SOA", "+nocookie"]);
    const out = await digAt(["-y", y, "example.test", "SOA"]);
    expect(out).toMatch(/status: NOERROR/);
    expect(out).toMatch(/cache-key\.\s+0\s+ANY\s+TSIG\s+hmac-sha256/);
    expect(out).not.toMatch(/tsig verify failure|expected a TSIG/i);
  });
});
