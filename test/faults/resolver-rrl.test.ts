/**
 * Response rate limiting on the resolver's DNS front (`propagate resolver
 * --rrl N --rrl-slip S`), off by default, as on the origin's: beyond N
 * identical answers per second to one client /24 the resolver drops them,
 * every S-th sent truncated (TC, RFC 1035 §4.1.1) so a real client retries
 * over TCP (RFC 7766), which is never limited. On the wire with real
 * processes, a UDP flood, dig and kdig.
 */
import dgram from "node:dgram";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dig, kdig } from "../support/dig.ts";
import { type Running, startOriginProcess, startPropagate } from "../support/process.ts";
import { waitFor } from "../support/wait.ts";

let dir: string;
let origin: Running;
let limited: Running;
let open: Running;

const resolver = (extra: string[]) =>
  startPropagate([
    "resolver",
    "--dns",
    "127.0.0.1:0",
    "--upstream",
    `dns://${origin.ready.dns}`,
    ...extra,
  ]);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "propagate-resolver-rrl-"));
  origin = await startOriginProcess(join(dir, "origin"), "resolver-rrl-token", ["--sample"]);
  [limited, open] = await Promise.all([resolver(["--rrl", "5", "--rrl-slip", "2"]), resolver([])]);
}, 60_000);
afterAll(async () => {
  await limited?.stop();
  await open?.stop();
  await origin?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** 40 identical queries for www.example.test/A from one UDP socket; the replies. */
async function flood(addr: string): Promise<Buffer[]> {
  const [host, port] = addr.split(":") as [string, string];
  const sock = dgram.createSocket("udp4");
  const replies: Buffer[] = [];
  sock.on("message", (m) => replies.push(m));
  await new Promise<void>((r) => sock.bind(0, "127.0.0.1", r));
  const q = Buffer.concat([
    Buffer.of(0, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0),
    Buffer.from("\x03www\x07example\x04test\x00", "latin1"),
    Buffer.of(0, 1, 0, 1),
  ]);
  for (let i = 0; i < 40; i++) sock.send(q, Number(port), host);
  await waitFor("the flood's replies", () => replies.length >= 20, 10_000);
  // Then until the replies stop coming (a dropped query gets none).
  let seen = -1;
  while (seen !== replies.length) {
    seen = replies.length;
    await new Promise((r) => setTimeout(r, 300));
  }
  sock.close();
  return replies;
}

const tc = (r: Buffer) => (r[2]! & 0x02) !== 0;

describe("RRL on the resolver's UDP front", () => {
  it("beyond 5/s identical answers are dropped, every 2nd truncated; TCP still answers", async () => {
    // Fill the cache first so the flood's answers are identical and come at once.
    const [host, port] = limited.ready.dns!.split(":") as [string, string];
    expect(await dig([`@${host}`, "-p", port, "www.example.test", "A", "+tcp"])).toMatch(
      /192\.0\.2\.10$/m,
    );
    const replies = await flood(limited.ready.dns!);
    const full = replies.filter((r) => !tc(r));
    const slips = replies.filter(tc);
    expect(full.length).toBeLessThanOrEqual(6); // 5 per second, one more if a second turned
    expect(slips.length).toBeGreaterThan(10);
    expect(full.length + slips.length).toBeLessThan(40); // the rest were dropped
    for (const s of slips) expect([s.readUInt16BE(6), s.readUInt16BE(8)]).toEqual([0, 0]);

    // dig takes the slip's TC and asks again over TCP, which is never limited.
    const out = await dig([`@${host}`, "-p", port, "www.example.test", "A"]);
    expect(out).toMatch(/^www\.example\.test\.\s+\d+\s+IN\s+A\s+192\.0\.2\.10$/m);
    const k = await kdig([`@${host}`, "-p", port, "www.example.test", "A", "+tcp"]);
    expect(k).toMatch(/status: NOERROR/);
    expect(k).toMatch(/192\.0\.2\.10/);
  });

  it("is off by default: every query of the flood is answered in full", async () => {
    const replies = await flood(open.ready.dns!);
    expect(replies.length).toBe(40);
    expect(replies.filter(tc)).toEqual([]);
  });

  it("refuses --rrl 0 and --rrl-slip without --rrl, naming the flag", async () => {
    await expect(resolver(["--rrl", "0"])).rejects.toThrow(/--rrl expects a whole number >= 1/);
    await expect(resolver(["--rrl-slip", "3"])).rejects.toThrow(/--rrl-slip needs --rrl/);
  });
});
