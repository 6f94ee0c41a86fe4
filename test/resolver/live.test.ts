/**
 * Real clients against real processes: `propagate resolver` in front of
 * `propagate origin` (DoH upstream), queried with dig and kdig.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryUdp } from "../../core/dns-transport.ts";
import { dig, kdig } from "../support/dig.ts";
import { type Running, startOriginProcess, startPropagate } from "../support/process.ts";
import { waitFor } from "../support/wait.ts";

const TOKEN = "origin-write-token";
const ADMIN = "resolver-admin-token";
let dir: string;
let origin: Running;
let resolver: Running;
let host: string;
let port: string;

async function put(name: string, type: string, ttl: number, data: unknown[]): Promise<void> {
  const url = `${origin.ready.http}/v1/zones/example.test/rrsets/${name}/${type}`;
  const res = await fetch(url, {
    method: "PUT",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ ttl, data }),
  });
  expect(res.status, await res.text()).toBe(200);
}

async function purge(body: object, token = ADMIN): Promise<Response> {
  return fetch(`${resolver.ready.admin}/purge`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

const q = (...args: string[]) => dig([`@${host}`, "-p", port, ...args]);
const ttlOf = (out: string, name: string) =>
  Number(new RegExp(`^${name}\\.\\s+(\\d+)`, "m").exec(out)?.[1]);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "resolver-live-"));
  origin = await startOriginProcess(dir, TOKEN, ["--sample"]);
  resolver = await startPropagate([
    "resolver",
    "--dns",
    "127.0.0.1:0",
    "--upstream",
    origin.ready.http!,
    "--token",
    ADMIN,
    "--id",
    "res-live",
    "--client-timeout",
    "300",
  ]);
  [host, port] = resolver.ready.dns!.split(":") as [string, string];
});

afterAll(async () => {
  if (resolver) expect(await resolver.stop()).toBe(0);
  await origin?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("resolver in front of a live origin", () => {
  it("answers, echoes the question's case, sets RA and names itself with NSID", async () => {
    const out = await q("WwW.ExAmPlE.tEsT", "A", "+nsid");
    expect(out).toMatch(/status: NOERROR/);
    expect(out).toMatch(/flags: qr rd ra;/);
    expect(out).toMatch(/^;WwW\.ExAmPlE\.tEsT\.\s+IN\s+A$/m);
    expect(out).toMatch(/^www\.example\.test\.\s+\d+\s+IN\s+A\s+192\.0\.2\.10$/m);
    expect(out).toMatch(/NSID: .*\("res-live"\)/);
    expect(out).toMatch(/udp: 1232/);
  });

  it("counts TTLs down between two queries", async () => {
    const ttl = async () => ttlOf(await q("mail.example.test", "A"), "mail.example.test");
    const first = await ttl();
    const second = await waitFor(
      "the TTL to count down",
      async () => {
        const t = await ttl();
        return t < first ? t : false;
      },
      5_000,
      100,
    );
    expect(first).toBeLessThanOrEqual(60);
    expect(second).toBeLessThan(first);
  });

  it("caches NXDOMAIN and NODATA from the SOA; a purge takes effect at once", async () => {
    expect(await q("new.example.test", "A")).toMatch(/status: NXDOMAIN/);
    expect(await q("www.example.test", "TXT")).toMatch(
      /status: NOERROR.*\n.*ANSWER: 0, AUTHORITY: 1/,
    );
    await put("new.example.test", "A", 60, ["192.0.2.200"]);
    await put("www.example.test", "TXT", 60, ["hello"]);
    const cached = await q("new.example.test", "A");
    expect(cached).toMatch(/status: NXDOMAIN/);
    expect(ttlOf(cached, "example.test")).toBeLessThanOrEqual(60);
    expect(await q("www.example.test", "TXT")).toMatch(/ANSWER: 0/);
    expect((await purge({ name: "new.example.test" }, "wrong-token")).status).toBe(401);
    expect(await (await purge({ name: "new.example.test" })).json()).toEqual({
      purged: 1,
      mode: "hard",
    });
    expect(await (await purge({ zone: "example.test", mode: "soft" })).json()).toMatchObject({
      mode: "soft",
    });
    expect(await q("new.example.test", "A", "+short")).toBe("192.0.2.200\n");
    expect(await q("www.example.test", "TXT", "+short")).toBe('"hello"\n');
  });

  it("sets TC when the answer does not fit UDP, and dig retries over TCP", async () => {
    const strings = Array.from({ length: 20 }, (_, i) => `${i}`.padEnd(100, "x"));
    await put("big.example.test", "TXT", 60, strings);
    expect(await q("big.example.test", "TXT", "+ignore")).toMatch(/flags: qr tc rd ra;.*ANSWER: 0/);
    const out = await q("big.example.test", "TXT");
    expect(out).toMatch(/ANSWER: 20,/);
    expect(out).toMatch(/\(TCP\)/);
  });

  it("serves several queries over one TCP connection (kdig +keepopen)", async () => {
    const out = await kdig([
      `@${host}`,
      "-p",
      port,
      "+tcp",
      "+keepopen",
      "www.example.test",
      "A",
      "mail.example.test",
      "A",
      "nope.example.test",
      "A",
    ]);
    expect(out.match(/status: NOERROR/g)).toHaveLength(2);
    expect(out).toMatch(/status: NXDOMAIN/);
  });

  it("answers FORMERR to garbage and to runts with an ID, NOTIMP to other opcodes, REFUSED outside its zones, ANY minimally", async () => {
    const garbage = Buffer.from(
      "\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xffgarbage",
      "latin1",
    );
    const reply = await queryUdp(host, Number(port), garbage);
    expect(reply.readUInt16BE(0)).toBe(0x1234);
    expect(reply[3]! & 0x0f).toBe(1);
    for (const runt of [Buffer.of(0xab, 0xcd), Buffer.of(0xab, 0xcd, 0x01, 0x00, 0x00)]) {
      const short = await queryUdp(host, Number(port), runt);
      expect(short).toHaveLength(12);
      expect(short.readUInt16BE(0)).toBe(0xabcd);
      expect(short[2]! & 0x80).toBe(0x80);
      expect(short[3]! & 0x0f).toBe(1);
    }
    expect(await q("+opcode=2", "www.example.test")).toMatch(/status: NOTIMP/);
    expect(await q("example.com", "A")).toMatch(/status: REFUSED/);
    expect(await q("example.test", "ANY")).toMatch(/IN\s+HINFO\s+"RFC8482" ""/);
  });

  it("answers stale with TTL 30 and EDE 3 once the origin is gone", async () => {
    await put("flaky.example.test", "A", 1, ["192.0.2.66"]);
    expect(await q("flaky.example.test", "A", "+short")).toBe("192.0.2.66\n");
    await origin.stop();
    // The entry (TTL 1) expires, then the failed refresh makes it stale.
    const out = await waitFor(
      "a stale answer",
      async () => {
        const o = await q("flaky.example.test", "A");
        return /EDE: 3/.test(o) ? o : false;
      },
      10_000,
      100,
    );
    expect(out).toMatch(/^flaky\.example\.test\.\s+30\s+IN\s+A\s+192\.0\.2\.66$/m);
    expect(out).toMatch(/EDE: 3 \(Stale Answer\)/);
    const metrics = await fetch(`${resolver.ready.admin}/metrics`, {
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    expect(await metrics.text()).toMatch(/resolver_stale_answers_total\{node="res-live"\} [1-9]/);
  });
});
