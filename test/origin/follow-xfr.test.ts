/**
 * The transfer client: reading AXFR/IXFR answers (pure), and a primary that
 * misbehaves on a real socket (malformed, truncated, endless, silent, wrong
 * ID, refused): each is a clear XfrError, never a hang.
 */
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Answer } from "dns-packet";
import dnsPacket from "dns-packet";
import { afterEach, describe, expect, it } from "vitest";
import { startDnsServer } from "../../core/dns-transport.ts";
import type { SoaData } from "../../core/records.ts";
import {
  parsePrimary,
  querySoa,
  TransferReader,
  transfer,
  XfrError,
} from "../../origin/follow-xfr.ts";
import { startOrigin } from "../../origin/server.ts";

const soaData = (serial: number): SoaData => ({
  mname: "ns1.x.test",
  rname: "h.x.test",
  serial,
  refresh: 60,
  retry: 10,
  expire: 120,
  minimum: 30,
});
const soa = (serial: number): Answer => ({
  name: "x.test",
  type: "SOA",
  class: "IN",
  ttl: 60,
  data: soaData(serial),
});
const a = (name: string, ip: string): Answer => ({
  name,
  type: "A",
  class: "IN",
  ttl: 60,
  data: ip,
});

describe("TransferReader", () => {
  it("completes an AXFR at the SOA that repeats the first, across messages", () => {
    const r = new TransferReader("x.test", undefined);
    expect(r.push([soa(5), a("www.x.test", "192.0.2.1")], 1)).toBe(false);
    expect(r.push([a("ftp.x.test", "192.0.2.2"), soa(5)], 2)).toBe(true);
    expect(r.result).toMatchObject({ kind: "full", messages: 2 });
    expect(r.result!.kind === "full" && r.result!.records.map((x) => x.name)).toEqual([
      "www.x.test",
      "ftp.x.test",
    ]);
  });

  it("reads IXFR differences serial by serial (RFC 1995 §4)", () => {
    const r = new TransferReader("x.test", 5);
    const done = r.push(
      [
        soa(7),
        soa(5),
        a("old.x.test", "192.0.2.1"),
        soa(6),
        a("new.x.test", "192.0.2.2"),
        soa(6),
        soa(7),
        a("newer.x.test", "192.0.2.3"),
        soa(7),
      ],
      1,
    );
    expect(done).toBe(true);
    const t = r.result!;
    if (t.kind !== "incremental") throw new Error(t.kind);
    expect(
      t.deltas.map((d) => [d.from, d.to.data.serial, d.deleted.length, d.added.length]),
    ).toEqual([
      [5, 6, 1, 1],
      [6, 7, 0, 1],
    ]);
  });

  it("takes an IXFR answered AXFR-style, and a lone current SOA as up to date", () => {
    const full = new TransferReader("x.test", 5);
    expect(full.push([soa(9), a("www.x.test", "192.0.2.1"), soa(9)], 1)).toBe(true);
    expect(full.result!.kind).toBe("full");
    const current = new TransferReader("x.test", 9);
    expect(current.push([soa(9)], 1)).toBe(true);
    expect(current.result!.kind).toBe("current");
    // A lone SOA newer than ours is not a complete answer: wait for more.
    expect(new TransferReader("x.test", 5).push([soa(9)], 1)).toBe(false);
  });

  it("rejects answers that do not start with the SOA, run past the end, or do not chain", () => {
    expect(() =>
      new TransferReader("x.test", undefined).push([a("www.x.test", "192.0.2.1")], 1),
    ).toThrow(/does not start with its SOA/);
    expect(() => new TransferReader("x.test", undefined).push([soa(5), soa(5), soa(5)], 1)).toThrow(
      /after the closing SOA/,
    );
    expect(() =>
      new TransferReader("x.test", 4).push([soa(7), soa(5), soa(6), soa(6), soa(7), soa(7)], 1),
    ).toThrow(/do not start at our serial 4/);
    expect(() =>
      new TransferReader("x.test", 5).push([soa(8), soa(5), soa(6), soa(7), soa(8), soa(8)], 1),
    ).toThrow(/do not chain/);
  });

  it("parses dns://IP:PORT and refuses anything else with the expected form", () => {
    expect(parsePrimary("dns://127.0.0.1:5300")).toEqual({ host: "127.0.0.1", port: 5300 });
    expect(parsePrimary("dns://[::1]:53")).toEqual({ host: "::1", port: 53 });
    expect(parsePrimary("dns://192.0.2.1")).toEqual({ host: "192.0.2.1", port: 53 });
    for (const bad of ["127.0.0.1:53", "dns://ns1.example:53", "dns://127.0.0.1:0", "http://x"]) {
      expect(() => parsePrimary(bad)).toThrow(/use dns:\/\/IP:PORT/);
    }
  });
});

/** A TCP "primary" that answers the transfer query with what `reply` makes of it. */
let server: net.Server | undefined;
afterEach(() => server?.close());

async function hostile(reply: (query: Buffer, sock: net.Socket) => void): Promise<number> {
  server = net.createServer((sock) => {
    let buf = Buffer.alloc(0);
    sock.on("error", () => {});
    sock.on("data", (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        reply(buf.subarray(2, 2 + buf.readUInt16BE(0)), sock);
      }
    });
  });
  await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
  return (server!.address() as net.AddressInfo).port;
}

const frame = (msg: Buffer) =>
  Buffer.concat([Buffer.from([msg.length >> 8, msg.length & 0xff]), msg]);
const answer = (query: Buffer, answers: Answer[], flags = 0) =>
  dnsPacket.encode({
    type: "response",
    id: query.readUInt16BE(0),
    flags: 0x0400 | flags,
    questions: dnsPacket.decode(query).questions,
    answers,
  });

async function axfrError(port: number, limits = {}): Promise<XfrError> {
  const err = await transfer({ host: "127.0.0.1", port }, "x.test", undefined, {
    limits: { idleMs: 300, timeoutMs: 3000, ...limits },
  }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(XfrError);
  return err as XfrError;
}

describe("a primary that misbehaves", () => {
  it("malformed bytes", async () => {
    const port = await hostile((q, s) =>
      s.write(frame(Buffer.concat([q.subarray(0, 2), Buffer.from([0x84, 0, 0, 1, 0, 5])]))),
    );
    expect((await axfrError(port)).message).toMatch(/malformed response/);
  });

  it("a compression pointer loop", async () => {
    const port = await hostile((q, s) => {
      const head = Buffer.from(answer(q, []));
      head.writeUInt16BE(1, 6); // one answer, whose name points at itself
      const loop = Buffer.from([0xc0, head.length, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4]);
      s.write(frame(Buffer.concat([head, loop])));
    });
    expect((await axfrError(port)).message).toMatch(/malformed response/);
  });

  it("a transfer cut short", async () => {
    const port = await hostile((q, s) => {
      s.write(frame(answer(q, [soa(5), a("www.x.test", "192.0.2.1")])));
      s.end();
    });
    expect((await axfrError(port)).message).toMatch(
      /closed the connection before the transfer was complete \(1 messages\)/,
    );
  });

  it("messages without end, past the message limit", async () => {
    const port = await hostile((q, s) => {
      s.write(frame(answer(q, [soa(5)])));
      const more = frame(answer(q, [a("www.x.test", "192.0.2.1")]));
      for (let i = 0; i < 60; i++) s.write(more);
    });
    expect((await axfrError(port, { maxMessages: 50 })).message).toMatch(/over 50 messages/);
  });

  it("more bytes than the limit", async () => {
    const port = await hostile((q, s) => {
      const many = Array.from({ length: 300 }, (_, i) => a(`n${i}.x.test`, "192.0.2.1"));
      s.write(frame(answer(q, [soa(5), ...many])));
    });
    expect((await axfrError(port, { maxBytes: 4096 })).message).toMatch(/over 4096 bytes/);
  });

  it("silence", async () => {
    const port = await hostile(() => {});
    expect((await axfrError(port)).message).toMatch(/sent nothing for 300 ms/);
  });

  it("a wrong ID, a refusal", async () => {
    const wrongId = await hostile((q, s) => {
      const msg = answer(q, [soa(5), soa(5)]);
      msg.writeUInt16BE((q.readUInt16BE(0) + 1) & 0xffff, 0);
      s.write(frame(msg));
    });
    expect((await axfrError(wrongId)).message).toMatch(/does not match query/);
    server?.close();
    const refused = await hostile((q, s) => s.write(frame(answer(q, [], 5))));
    const err = await axfrError(refused);
    expect(err.rcode).toBe("REFUSED");
    expect(err.message).toBe("the primary answered AXFR for x.test with REFUSED");
  });
});

describe("a follower whose primary sends differences that do not fit", () => {
  it("falls back to AXFR (RFC 1995 §4) and commits the primary's full zone", async () => {
    const zoneAt = (serial: number, ip: string) => [soa(serial), a("www.x.test", ip)];
    let serial = 5;
    const primary = await startDnsServer({ host: "127.0.0.1", port: 0 }, (query) => {
      const q = dnsPacket.decode(query).questions![0]!;
      if (q.type === "SOA") return answer(query, [soa(serial)]);
      if (q.type === "AXFR") return answer(query, [...zoneAt(serial, "192.0.2.6"), soa(serial)]);
      // IXFR 5 -> 6 that deletes a record the follower never had.
      return answer(query, [soa(6), soa(5), a("ghost.x.test", "192.0.2.9"), soa(6), soa(6)]);
    });
    const logs: string[] = [];
    const dataDir = await mkdtemp(join(tmpdir(), "propagate-follow-xfr-"));
    const origin = await startOrigin(
      {
        http: { host: "127.0.0.1", port: 0 },
        dns: { host: "127.0.0.1", port: 0 },
        dataDir,
        follow: [{ primary: `dns://127.0.0.1:${primary.port}`, zones: ["x.test"] }],
      },
      { log: (m) => logs.push(m) },
    );
    try {
      const follower = origin.follower!;
      await follower.check("x.test");
      expect(origin.store.getZone("x.test").zone.serial).toBe(5);
      serial = 6;
      await follower.check("x.test");
      const zone = origin.store.getZone("x.test").zone;
      expect(zone.serial).toBe(6);
      expect(zone.get("www.x.test", "A")?.data).toEqual(["192.0.2.6"]);
      expect(logs.join("\n")).toMatch(
        /deletes A at ghost\.x\.test, which we do not hold; taking x\.test by AXFR/,
      );
      // A primary whose serial went back is not followed backwards.
      serial = 3;
      await follower.check("x.test");
      expect(origin.store.getZone("x.test").zone.serial).toBe(6);
      expect(logs.join("\n")).toMatch(
        /the primary's serial 3 is not ahead of ours \(6, RFC 1982\)/,
      );
    } finally {
      await origin.close();
      await primary.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe("the SOA query of a refresh", () => {
  it("asks again over TCP when the UDP answer is truncated, and refuses a non-authoritative one", async () => {
    const seen: string[] = [];
    let aa = true;
    const primary = await startDnsServer({ host: "127.0.0.1", port: 0 }, (query, info) => {
      seen.push(info.transport);
      const tc = info.transport === "udp" ? 0x0200 : 0;
      const reply = answer(query, info.transport === "udp" ? [] : [soa(42)], tc);
      if (!aa) reply.writeUInt16BE(reply.readUInt16BE(2) & ~0x0400, 2);
      return reply;
    });
    try {
      const at = { host: "127.0.0.1", port: primary.port };
      expect((await querySoa(at, "x.test")).data.serial).toBe(42);
      expect(seen).toEqual(["udp", "tcp"]);
      aa = false;
      await expect(querySoa(at, "x.test")).rejects.toThrow(/not authoritative for x\.test/);
    } finally {
      await primary.close();
    }
  });
});
