import { mkdtemp, readdir, readFile, stat, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type OriginConfig, startOrigin } from "../../origin/server.ts";
import { startPropagate } from "../support/process.ts";

const TOKEN = "crash-token-123456";

function config(dataDir: string, extra: Partial<OriginConfig> = {}): OriginConfig {
  return {
    http: { host: "127.0.0.1", port: 0 },
    dns: { host: "127.0.0.1", port: 0 },
    dataDir,
    token: TOKEN,
    ...extra,
  };
}

async function put(url: string, path: string, body: unknown, method = "PUT") {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  expect(res.status, await res.clone().text()).toBeLessThan(300);
  return (await res.json()) as { serial: number; changeId: string };
}

async function zone(url: string, name: string) {
  const res = await fetch(`${url}/v1/zones/${name}`);
  return (await res.json()) as {
    serial: number;
    rrsets: { name: string; type: string; data: unknown[] }[];
  };
}

const ip = (i: number) => `192.0.2.${i}`;

describe("restart", () => {
  it("replays the journal: zones, serials, change feed", async () => {
    const dir = await mkdtemp(join(tmpdir(), "propagate-replay-"));
    const a = await startOrigin(config(dir), { log: () => {} });
    await put(a.httpUrl, "/v1/zones/r.test", {});
    await Promise.all(
      [1, 2, 3, 4].map((i) => put(a.httpUrl, `/v1/zones/r.test/rrsets/h${i}/A`, { data: [ip(i)] })),
    );
    await put(a.httpUrl, "/v1/zones/gone.test", {});
    await put(a.httpUrl, "/v1/zones/gone.test", {}, "DELETE");
    const before = await zone(a.httpUrl, "r.test");
    await a.close();

    const b = await startOrigin(config(dir), { log: () => {} });
    expect(await zone(b.httpUrl, "r.test")).toEqual(before);
    expect(before.serial).toBe(5);
    expect((await fetch(`${b.httpUrl}/v1/zones/gone.test`)).status).toBe(404);
    const feed = await (await fetch(`${b.httpUrl}/v1/zones/r.test/changes?since=1`)).json();
    expect(feed.changes).toHaveLength(4);
    await b.close();
  });

  it("replays a snapshot plus the journal after it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "propagate-snap-"));
    const a = await startOrigin(config(dir, { snapshotEvery: 5 }), { log: () => {} });
    await put(a.httpUrl, "/v1/zones/s.test", {});
    for (let i = 1; i <= 12; i++)
      await put(a.httpUrl, `/v1/zones/s.test/rrsets/h${i}/A`, { data: [ip(i)] });
    const before = await zone(a.httpUrl, "s.test");
    await a.close();
    const files = await readdir(dir);
    expect(files).toContain("snapshot.json");
    expect(files.filter((f) => f.startsWith("journal-"))).toHaveLength(1);

    const b = await startOrigin(config(dir, { snapshotEvery: 5 }), { log: () => {} });
    expect(await zone(b.httpUrl, "s.test")).toEqual(before);
    expect(before.serial).toBe(13);
    await b.close();
  });

  it("drops a torn last record with a warning and keeps the writes before it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "propagate-torn-"));
    const a = await startOrigin(config(dir), { log: () => {} });
    await put(a.httpUrl, "/v1/zones/t.test", {});
    await put(a.httpUrl, "/v1/zones/t.test/rrsets/kept/A", { data: [ip(1)] });
    await put(a.httpUrl, "/v1/zones/t.test/rrsets/torn/A", { data: [ip(2)] });
    await a.close();
    const journal = join(dir, (await readdir(dir)).find((f) => f.startsWith("journal-"))!);
    await truncate(journal, (await stat(journal)).size - 20);

    const logs: string[] = [];
    const b = await startOrigin(config(dir), { log: (m) => logs.push(m) });
    expect(logs.join("\n")).toMatch(/warning: journal .* dropped a torn tail/);
    const z = await zone(b.httpUrl, "t.test");
    expect(z.serial).toBe(2);
    expect(z.rrsets.map((s) => s.name)).toContain("kept.t.test");
    expect(z.rrsets.map((s) => s.name)).not.toContain("torn.t.test");
    // The next write follows the intact records, so a later restart reads it.
    await put(b.httpUrl, "/v1/zones/t.test/rrsets/after/A", { data: [ip(3)] });
    await b.close();
    const c = await startOrigin(config(dir), { log: (m) => logs.push(m) });
    expect((await zone(c.httpUrl, "t.test")).serial).toBe(3);
    await c.close();
  });
});

describe("a zone deleted before a restart", () => {
  /** Takes z.test to serial 5000 and deletes it. */
  async function deleteAt5000(url: string) {
    await put(url, "/v1/zones/z.test", {});
    const soa = (await zone(url, "z.test")).rrsets.find((s) => s.type === "SOA")!.data[0]!;
    await put(url, "/v1/zones/z.test/rrsets/@/SOA", {
      data: [{ ...(soa as object), serial: 5000 }],
    });
    await put(url, "/v1/zones/z.test", {}, "DELETE");
  }

  async function recreate(url: string) {
    const res = await fetch(`${url}/v1/zones/z.test`, {
      method: "PUT",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: "{}",
    });
    expect(res.status).toBe(201);
    return (await res.json()) as { serial: number; note?: string };
  }

  it.each([
    ["the journal", 10_000],
    ["a snapshot", 3],
  ])("is re-created above its old serial after replaying %s", async (_via, snapshotEvery) => {
    const dir = await mkdtemp(join(tmpdir(), "propagate-tombstone-"));
    const a = await startOrigin(config(dir, { snapshotEvery }), { log: () => {} });
    await deleteAt5000(a.httpUrl);
    await a.close();
    const files = await readdir(dir);
    if (snapshotEvery === 3) {
      const snap = JSON.parse(await readFile(join(dir, "snapshot.json"), "utf8"));
      expect(snap.state.tombstones).toEqual([{ zone: "z.test", serial: 5000 }]);
      // The delete lives only in the snapshot: the journal after it is empty.
      const journals = files.filter((f) => f.startsWith("journal-"));
      expect(journals).toHaveLength(1);
      expect((await stat(join(dir, journals[0]!))).size).toBe(0);
    } else {
      expect(files).not.toContain("snapshot.json");
    }

    const b = await startOrigin(config(dir, { snapshotEvery }), { log: () => {} });
    const created = await recreate(b.httpUrl);
    expect(created.serial).toBe(5001);
    expect(created.note).toMatch(/existed before at serial 5000/);
    expect((await zone(b.httpUrl, "z.test")).serial).toBe(5001);
    await b.close();
  });
});

describe("a damaged journal", () => {
  it("refuses to start when record 3 of 6 is corrupt, loses nothing, and starts once the loss is accepted", async () => {
    const dir = await mkdtemp(join(tmpdir(), "propagate-corrupt-"));
    const a = await startOrigin(config(dir), { log: () => {} });
    await put(a.httpUrl, "/v1/zones/c.test", {});
    for (let i = 2; i <= 6; i++)
      await put(a.httpUrl, `/v1/zones/c.test/rrsets/h${i}/A`, { data: [ip(i)] });
    await a.close();
    const journal = join(dir, (await readdir(dir)).find((f) => f.startsWith("journal-"))!);
    const bytes = await readFile(journal);
    let offset = 0;
    for (let i = 0; i < 2; i++) offset = bytes.indexOf(0x0a, offset) + 1;
    const damaged = Buffer.from(bytes);
    const at = bytes.indexOf("192.0.2.3", offset) + 2;
    damaged.writeUInt8(damaged.readUInt8(at) ^ 0x01, at); // one bit in record 3's JSON
    await writeFile(journal, damaged);

    const logs: string[] = [];
    const err = await startOrigin(config(dir), { log: (m) => logs.push(m) }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain(
      `journal ${journal} is corrupt at byte offset ${offset}`,
    );
    expect((err as Error).message).toMatch(/Restore the data directory .* from a backup/);
    expect(logs.join("\n")).not.toMatch(/torn tail/);
    expect(await readFile(journal)).toEqual(damaged);

    // The operator accepts losing serials 3-6: the origin starts at 2 and hands out 3 afresh.
    await writeFile(journal, damaged.subarray(0, offset));
    const b = await startOrigin(config(dir), { log: () => {} });
    expect((await zone(b.httpUrl, "c.test")).serial).toBe(2);
    expect((await put(b.httpUrl, "/v1/zones/c.test/rrsets/next/A", { data: [ip(9)] })).serial).toBe(
      3,
    );
    await b.close();
  });
});

describe("kill -9 of a real origin process", () => {
  it("loses no acknowledged write", async () => {
    const dir = await mkdtemp(join(tmpdir(), "propagate-kill-"));
    const args = ["origin", "--http", "127.0.0.1:0", "--dns", "127.0.0.1:0", "--data", dir];
    const first = await startPropagate(args);
    const url = first.ready.http!;
    const token = first.ready.token!;
    expect(token).toMatch(/^[\w-]{20,}$/);
    const write = (path: string, body: unknown) =>
      fetch(`${url}${path}`, {
        method: "PUT",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    expect((await write("/v1/zones/k.test", {})).status).toBe(201);
    const acks = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const res = await write(`/v1/zones/k.test/rrsets/h${i}/A`, { data: [ip(i)] });
        expect(res.status).toBe(200);
        return (await res.json()) as { serial: number };
      }),
    );
    const last = await write("/v1/zones/k.test/rrsets/last/TXT", { data: ["acknowledged"] });
    expect(last.status).toBe(200);
    first.proc.kill("SIGKILL");
    await first.stop();

    const second = await startPropagate(args);
    try {
      expect(second.ready.token).toBe(token);
      const z = await zone(second.ready.http!, "k.test");
      expect(z.serial).toBe(22);
      expect(new Set(acks.map((a) => a.serial)).size).toBe(20);
      const names = new Set(z.rrsets.map((s) => s.name));
      for (let i = 0; i < 20; i++) expect(names).toContain(`h${i}.k.test`);
      expect(z.rrsets.find((s) => s.name === "last.k.test")?.data).toEqual(["acknowledged"]);
    } finally {
      // SIGTERM: the journal is flushed and closed, and the process exits 0.
      expect(await second.stop()).toBe(0);
    }
  });
});
