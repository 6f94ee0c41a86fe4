/**
 * DNS fuzz against the real processes: 100,000 random and mutated UDP packets
 * to the resolver and as many to the origin's authoritative server (truncated
 * headers, compression loops, label overflows, huge counts, transfer and odd
 * types, flipped bytes), plus broken TCP frames. Neither crashes nor hangs:
 * each still answers a real dig correctly afterwards. Seeded, so a failure
 * replays.
 */
import dgram from "node:dgram";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Random } from "../../core/random.ts";
import { dig } from "../support/dig.ts";
import { type Running, startOriginProcess, startPropagate } from "../support/process.ts";

const PACKETS = 100_000;
let dir: string;
let origin: Running;
let resolver: Running;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "dns-fuzz-"));
  origin = await startOriginProcess(dir, "fuzz-write-token", ["--sample"]);
  resolver = await startPropagate([
    "resolver",
    "--dns",
    "127.0.0.1:0",
    "--upstream",
    `dns://${origin.ready.dns}`,
    "--token",
    "fuzz-admin-token",
    "--client-timeout",
    "300",
  ]);
});
afterAll(async () => {
  if (resolver) expect(await resolver.stop()).toBe(0);
  if (origin) expect(await origin.stop()).toBe(0);
  rmSync(dir, { recursive: true, force: true });
});

/** A well-formed query: the seed the mutations start from. */
function query(id: number, name: string, qtype: number): Buffer {
  const labels = name.split(".").flatMap((l) => [Buffer.of(l.length), Buffer.from(l)]);
  const head = Buffer.alloc(12);
  head.writeUInt16BE(id, 0);
  head.writeUInt16BE(0x0100, 2); // RD
  head.writeUInt16BE(1, 4);
  return Buffer.concat([head, ...labels, Buffer.of(0), Buffer.of(qtype >> 8, qtype & 255, 0, 1)]);
}

const NAMES = ["www.example.test", "example.test", "nope.example.test", "example.com"];
const TYPES = [1, 28, 16, 15, 2, 6, 33, 252, 251, 255, 0, 65535, 41, 250];

/** One packet: random bytes, or a valid query with one of several kinds of damage. */
function packet(r: Random): Buffer {
  const base = query(
    Math.floor(r.next() * 65536),
    NAMES[Math.floor(r.next() * NAMES.length)]!,
    TYPES[Math.floor(r.next() * TYPES.length)]!,
  );
  const kind = Math.floor(r.next() * 8);
  switch (kind) {
    case 0: // random bytes, 0-600 long
      return Buffer.from(Array.from({ length: Math.floor(r.next() * 600) }, () => r.next() * 256));
    case 1: // truncated anywhere, header included
      return base.subarray(0, Math.floor(r.next() * base.length));
    case 2: {
      // a compression pointer to itself (a loop) in place of the name
      const p = Buffer.from(base);
      p[12] = 0xc0;
      p[13] = 12;
      return p;
    }
    case 3: {
      // a label longer than 63 octets, and a name past 255
      const long = Buffer.concat([Buffer.of(64), Buffer.alloc(64, 0x61)]);
      const many = Buffer.concat(
        Array.from({ length: 60 }, () => Buffer.of(4, 0x61, 0x61, 0x61, 0x61)),
      );
      return Buffer.concat([
        base.subarray(0, 12),
        r.next() < 0.5 ? long : many,
        Buffer.of(0, 0, 1, 0, 1),
      ]);
    }
    case 4: {
      // huge section counts
      const p = Buffer.from(base);
      for (const at of [4, 6, 8, 10]) p.writeUInt16BE(Math.floor(r.next() * 65536), at);
      return p;
    }
    case 5: {
      // opcodes, flags and rcode bits at random
      const p = Buffer.from(base);
      p.writeUInt16BE(Math.floor(r.next() * 65536), 2);
      return p;
    }
    case 6: {
      // a few flipped bytes
      const p = Buffer.from(base);
      for (let i = 0; i < 3; i++) p[Math.floor(r.next() * p.length)] = Math.floor(r.next() * 256);
      return p;
    }
    default: // garbage appended
      return Buffer.concat([base, Buffer.from(Array.from({ length: 40 }, () => r.next() * 256))]);
  }
}

/** Sends `n` packets in bursts, letting the server drain between them. */
async function flood(addr: string, n: number, seed: number): Promise<void> {
  const i = addr.lastIndexOf(":");
  const [host, port] = [addr.slice(0, i), Number(addr.slice(i + 1))];
  const r = new Random(seed);
  const sock = dgram.createSocket("udp4");
  sock.on("message", () => {}); // answers are not checked: FORMERR or silence are both fine
  await new Promise<void>((resolve) => sock.bind(0, "127.0.0.1", resolve));
  for (let sent = 0; sent < n; sent += 500) {
    await Promise.all(
      Array.from(
        { length: Math.min(500, n - sent) },
        () => new Promise<void>((resolve) => sock.send(packet(r), port, host, () => resolve())),
      ),
    );
  }
  sock.close();
}

/** Broken TCP frames: a length past the data, a zero length, a runt, then a close. */
async function badTcp(addr: string): Promise<void> {
  const i = addr.lastIndexOf(":");
  for (const bytes of [
    Buffer.of(0xff, 0xff, 1, 2, 3),
    Buffer.of(0, 0),
    Buffer.of(0, 3, 0xab, 0xcd, 0x01),
    Buffer.concat([Buffer.of(0, 12), Buffer.alloc(12, 0xff)]),
  ]) {
    await new Promise<void>((resolve) => {
      const s = net.connect(Number(addr.slice(i + 1)), addr.slice(0, i), () => {
        s.end(bytes);
      });
      s.on("data", () => {});
      s.on("error", () => resolve());
      s.on("close", () => resolve());
      s.setTimeout(2_000, () => s.destroy());
    });
  }
}

async function answersWww(addr: string): Promise<string> {
  const i = addr.lastIndexOf(":");
  return dig([`@${addr.slice(0, i)}`, "-p", addr.slice(i + 1), "www.example.test", "A", "+short"]);
}

describe("DNS fuzz", () => {
  for (const target of ["resolver", "origin"] as const) {
    it(`${PACKETS.toLocaleString("en")} random and mutated packets to the ${target}: no crash, no hang`, async () => {
      const addr = target === "origin" ? origin.ready.dns! : resolver.ready.dns!;
      await flood(addr, PACKETS, target === "origin" ? 1 : 2);
      await badTcp(addr);
      const proc = target === "origin" ? origin : resolver;
      expect(proc.proc.exitCode).toBeNull();
      expect((await answersWww(addr)).trim()).toBe("192.0.2.10");
    }, 90_000);
  }
});
