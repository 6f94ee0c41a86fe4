/**
 * `propagate resolver --workers 2` against `propagate origin`: both workers
 * answer on the one DNS port (told apart by NSID, RFC 5001), each caches on
 * its own, and a purge sent to one worker's admin empties the other's cache too.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as packet from "dns-packet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryUdp } from "../../core/dns-transport.ts";
import { type Running, startOriginProcess, startPropagate } from "../support/process.ts";
import { waitFor } from "../support/wait.ts";
import { makeQuery } from "./fake-authority.ts";

const TOKEN = "origin-write-token";
const ADMIN = "resolver-admin-token";
let dir: string;
let origin: Running;
let resolver: Running;
let host: string;
let port: number;
let admins: string[];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "resolver-workers-"));
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
    "res-w",
    "--workers",
    "2",
  ]);
  const [h, p] = resolver.ready.dns!.split(":") as [string, string];
  host = h;
  port = Number(p);
  admins = resolver.ready.admin!.split(",");
}, 30_000);

afterAll(async () => {
  await resolver?.stop();
  await origin?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A burst of concurrent queries: while one worker is busy the other reads, so both answer. */
async function nsidsOfBurst(name: string): Promise<Set<string>> {
  const replies = await Promise.all(
    Array.from({ length: 40 }, (_, i) =>
      queryUdp(host, port, makeQuery(name, "A", { id: i, edns: 1232, nsid: true }), 3000),
    ),
  );
  const ids = new Set<string>();
  for (const r of replies) {
    const msg = packet.decode(r);
    expect((msg.flags ?? 0) & 0x0f).toBe(0); // NOERROR
    const opt = msg.additionals?.find((a) => a.type === "OPT") as
      | { options?: Array<{ code: number; data: Buffer }> }
      | undefined;
    const nsid = opt?.options?.find((o) => o.code === 3);
    if (nsid) ids.add(nsid.data.toString());
  }
  return ids;
}

async function entries(admin: string, name: string): Promise<number> {
  const res = await fetch(`${admin}/cache?name=${name}`, {
    headers: { authorization: `Bearer ${ADMIN}` },
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { entries: unknown[] }).entries.length;
}

describe("resolver --workers 2", () => {
  it("refuses a worker count of 0 with the flag named", async () => {
    await expect(
      startPropagate(["resolver", "--upstream", "dns://127.0.0.1:9", "--workers", "0"]),
    ).rejects.toThrow(/--workers expects a whole number >= 1, got "0"/);
  });

  it("prints one DNS port, an admin endpoint and an id per worker", () => {
    expect(admins).toHaveLength(2);
    expect(resolver.ready.ids).toBe("res-w-w1,res-w-w2");
    expect(resolver.ready.workerPids!.split(",")).toHaveLength(2);
  });

  it("answers from both workers on the one port", async () => {
    const seen = new Set<string>();
    await waitFor(
      "answers from both workers",
      async () => {
        for (const id of await nsidsOfBurst("www.example.test")) seen.add(id);
        return seen.size === 2;
      },
      20_000,
    );
    expect([...seen].sort()).toEqual(["res-w-w1", "res-w-w2"]);
  });

  it("a purge through one worker's admin reaches the other's cache", async () => {
    // Both caches hold the name (the bursts above and these reach both workers).
    await waitFor(
      "both workers caching www.example.test",
      async () => {
        await nsidsOfBurst("www.example.test");
        const counts = await Promise.all(admins.map((a) => entries(a, "www.example.test")));
        return counts.every((c) => c > 0);
      },
      20_000,
    );
    const res = await fetch(`${admins[0]}/purge`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "www.example.test" }),
    });
    expect(res.status).toBe(200);
    expect(await entries(admins[0]!, "www.example.test")).toBe(0);
    await waitFor(
      "the purge at the second worker",
      async () => (await entries(admins[1]!, "www.example.test")) === 0,
    );
  });
});
