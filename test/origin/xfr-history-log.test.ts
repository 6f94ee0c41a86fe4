/**
 * The IXFR differences on disk (origin/xfr-history-log.ts): restored after a
 * restart where they chain to the zone's serial, and only there; a lost or
 * torn tail leaves the zone without history (full zone in IXFR form), never
 * with wrong differences; the file stays bounded.
 */
import { appendFile, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { RRset } from "../../core/records.ts";
import { decodeJournal, encodeRecord } from "../../origin/journal.ts";
import type { CommittedChange } from "../../origin/store.ts";
import { IxfrHistory } from "../../origin/xfr-history.ts";
import { IXFR_LOG, IxfrHistoryLog } from "../../origin/xfr-history-log.ts";

const soa = (serial: number): RRset<"SOA"> => ({
  name: "h.test",
  type: "SOA",
  ttl: 300,
  data: [
    {
      mname: "ns.h.test",
      rname: "host.h.test",
      serial,
      refresh: 3600,
      retry: 60,
      expire: 600,
      minimum: 60,
    },
  ],
});
const txt = (n: number): RRset => ({ name: "t.h.test", type: "TXT", ttl: 300, data: [[`v${n}`]] });

const create: CommittedChange = {
  changeId: "c0",
  op: "create",
  zone: "h.test",
  serial: 1,
  ts: 0,
  changes: [
    { name: "h.test", type: "SOA", rrset: soa(1) },
    { name: "t.h.test", type: "TXT", rrset: txt(1) },
  ],
};
const update = (serial: number): CommittedChange => ({
  changeId: `c${serial}`,
  op: "update",
  zone: "h.test",
  serial,
  ts: 0,
  changes: [
    { name: "h.test", type: "SOA", rrset: soa(serial) },
    { name: "t.h.test", type: "TXT", rrset: txt(serial) },
  ],
});

/** A history of h.test at `serial`, with the log of `dir` restored into it. */
async function reopen(dir: string, serial: number, limit = 100) {
  const history = new IxfrHistory(limit);
  history.seed("h.test", [soa(serial), txt(serial)]);
  const logged: string[] = [];
  const log = await IxfrHistoryLog.open(
    dir,
    history,
    (z) => (z === "h.test" ? serial : undefined),
    (m) => logged.push(m),
  );
  return { history, log, logged };
}

/** Writes changes 2..last through a fresh log, as a running origin does. */
async function written(last: number, limit = 100): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "propagate-ixfr-log-"));
  const history = new IxfrHistory(limit);
  const log = await IxfrHistoryLog.open(
    dir,
    history,
    () => undefined,
    () => {},
  );
  history.apply(create);
  for (let s = 2; s <= last; s++) {
    history.apply(update(s));
    // Commits come one fsync apart, not all at once.
    if (s % 100 === 0) await log.durable();
  }
  await log.close();
  return dir;
}

const serials = (history: IxfrHistory, from: number) =>
  history.diffsSince("h.test", from)?.map((d) => d.to.data[0]!.serial);

describe("IXFR history log", () => {
  it("restores the differences, with their records, after a restart", async () => {
    const dir = await written(5);
    const { history, log } = await reopen(dir, 5);
    expect(serials(history, 1)).toEqual([2, 3, 4, 5]);
    const d = history.diffsSince("h.test", 4)!;
    expect(d).toHaveLength(1);
    expect(d[0]!.deleted.map((r) => r.rest.toString("latin1"))[0]).toContain("v4");
    expect(d[0]!.added.map((r) => r.rest.toString("latin1"))[0]).toContain("v5");
    await log.close();
  });

  it("keeps no history for a zone whose log does not end at its serial (a lost tail)", async () => {
    const dir = await written(5);
    const { history, log } = await reopen(dir, 6);
    expect(history.diffsSince("h.test", 1)).toBeUndefined();
    await log.close();
  });

  it("drops a torn tail with a log line and keeps what chains", async () => {
    const dir = await written(5);
    const bytes = await readFile(join(dir, IXFR_LOG));
    // Cut the last record short: the zone at 5 has no chain to 5, at 4 it has.
    await writeFile(join(dir, IXFR_LOG), bytes.subarray(0, bytes.length - 10));
    const { history, log, logged } = await reopen(dir, 4);
    expect(serials(history, 1)).toEqual([2, 3, 4]);
    expect(logged.join("\n")).toMatch(/ixfr\.log: .* at byte \d+; IXFR history kept up to there/);
    await log.close();
  });

  it("skips a difference written twice (a rewrite racing an append)", async () => {
    const dir = await written(5);
    const bytes = await readFile(join(dir, IXFR_LOG));
    const records = bytes.toString("latin1").split("\n").filter(Boolean);
    await appendFile(join(dir, IXFR_LOG), `${records[2]}\n`);
    const { history, log } = await reopen(dir, 5);
    expect(serials(history, 1)).toEqual([2, 3, 4, 5]);
    await log.close();
  });

  it("stays bounded: rewritten with the kept differences once it grows past them", async () => {
    const dir = await written(1200, 5);
    const records = decodeJournal(await readFile(join(dir, IXFR_LOG))).records;
    expect(records.length).toBeLessThan(300);
    const { history, log } = await reopen(dir, 1200, 5);
    expect(serials(history, 1195)).toEqual([1196, 1197, 1198, 1199, 1200]);
    await log.close();
  });

  it("starts empty, with a log line, when intact records are not differences", async () => {
    const dir = await mkdtemp(join(tmpdir(), "propagate-ixfr-log-"));
    await writeFile(join(dir, IXFR_LOG), encodeRecord({ zone: "h.test", something: "else" }));
    const { history, log, logged } = await reopen(dir, 5);
    expect(history.diffsSince("h.test", 4)).toBeUndefined();
    expect(logged.join("\n")).toMatch(/IXFR history starts empty/);
    await log.close();
  });
});
