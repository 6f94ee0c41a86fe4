import {
  appendFile,
  mkdtemp,
  readdir,
  readFile,
  stat,
  truncate,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { decodeJournal, encodeRecord } from "../../origin/journal.ts";
import { DataDir, JournalCorrupt } from "../../origin/snapshot.ts";

interface Rec {
  n: number;
  text?: string;
}
interface State {
  seen: number[];
}

const tmp = () => mkdtemp(join(tmpdir(), "propagate-journal-"));

/** Opens a data dir whose state is the list of record numbers applied. */
async function openDir(dir: string, snapshotEvery = 1000) {
  const warnings: string[] = [];
  const { data, recovered } = await DataDir.open<Rec, State>(dir, {
    snapshotEvery,
    warn: (m) => warnings.push(m),
  });
  const state: State = { seen: [...(recovered.snapshot?.seen ?? [])] };
  for (const r of recovered.records) state.seen.push(r.n);
  data.snapshotWith(() => ({ seen: [...state.seen] }));
  const append = (n: number) => data.append({ n }, () => state.seen.push(n));
  return { data, state, warnings, append };
}

function flipBit(buf: Buffer, at: number): void {
  buf.writeUInt8(buf.readUInt8(at) ^ 0x01, at);
}

describe("record codec", () => {
  it("round-trips records, including non-ASCII text and newlines in strings", () => {
    const recs = [{ n: 1, text: "héllo\nworld" }, { n: 2 }];
    const buf = Buffer.concat(recs.map(encodeRecord));
    expect(decodeJournal<Rec>(buf)).toEqual({ records: recs, goodBytes: buf.length });
  });

  it.each([
    ["a partial line", (b: Buffer) => b.subarray(0, b.length - 3), "shorter than its length"],
    ["a partial header", (b: Buffer) => b.subarray(0, 4), "header"],
    [
      "a flipped byte",
      (b: Buffer) => Buffer.from(b.toString().replace('"n":2', '"n":3')),
      "checksum",
    ],
    [
      "a zero-filled tail",
      (b: Buffer) => Buffer.concat([b.subarray(0, 10), Buffer.alloc(64)]),
      "header",
    ],
  ])("stops at a torn last record: %s", (_label, tear, reason) => {
    const first = encodeRecord({ n: 1 });
    const buf = Buffer.concat([first, tear(encodeRecord({ n: 2 }))]);
    const out = decodeJournal<Rec>(buf);
    expect(out.records).toEqual([{ n: 1 }]);
    expect(out.goodBytes).toBe(first.length);
    expect(out.torn?.reason).toContain(reason);
  });

  it("calls a bad record followed by an intact one corruption, not a torn tail", () => {
    const recs = [1, 2, 3].map((n) => encodeRecord({ n }));
    const buf = Buffer.concat(recs);
    const at = recs[0]!.length;
    flipBit(buf, at + 15); // inside record 2's JSON
    const out = decodeJournal<Rec>(buf);
    expect(out.records).toEqual([{ n: 1 }]);
    expect(out.torn).toBeUndefined();
    expect(out.corrupt).toMatchObject({
      offset: at,
      reason: "record checksum mismatch",
      nextRecordAt: at + recs[1]!.length,
    });
  });

  it("finds the next record when the damage hits a length or a line end", () => {
    const recs = [1, 2, 3].map((n) => encodeRecord({ n }));
    const at = recs[0]!.length;
    const lengthHit = Buffer.concat(recs);
    lengthHit[at] = 0x39; // "9..." : the length no longer matches
    expect(decodeJournal(lengthHit).corrupt?.nextRecordAt).toBe(at + recs[1]!.length);
    const newlineHit = Buffer.concat(recs);
    newlineHit[at + recs[1]!.length - 1] = 0x20;
    expect(decodeJournal(newlineHit).corrupt?.nextRecordAt).toBe(at + recs[1]!.length);
  });
});

/** Flips one bit inside the JSON of the `index`th record (0-based); returns that record's offset. */
async function flipInRecord(path: string, index: number): Promise<number> {
  const buf = await readFile(path);
  let offset = 0;
  for (let i = 0; i < index; i++) offset = buf.indexOf(0x0a, offset) + 1;
  flipBit(buf, buf.indexOf(0x7b, offset) + 2); // a byte after the record's "{"
  await writeFile(path, buf);
  return offset;
}

async function journalPath(dir: string, gen = 1): Promise<string> {
  return join(dir, `journal-${String(gen).padStart(8, "0")}.log`);
}

describe("DataDir", () => {
  it("replays acknowledged records after reopening", async () => {
    const dir = await tmp();
    const a = await openDir(dir);
    await Promise.all([1, 2, 3].map(a.append));
    await a.data.close();
    const b = await openDir(dir);
    expect(b.state.seen).toEqual([1, 2, 3]);
    expect(b.warnings).toEqual([]);
    await b.data.close();
  });

  it("shares one fsync between concurrent appends (group commit), in order", async () => {
    const dir = await tmp();
    const a = await openDir(dir);
    const ns = Array.from({ length: 200 }, (_, i) => i);
    await Promise.all(ns.map(a.append));
    expect(a.state.seen).toEqual(ns);
    expect(a.data.stats.records).toBe(200);
    expect(a.data.stats.batches).toBeLessThan(50);
    await a.data.close();
  });

  it("drops a torn tail with a warning, keeps earlier records and appends after them", async () => {
    const dir = await tmp();
    const a = await openDir(dir);
    for (const n of [1, 2, 3]) await a.append(n);
    await a.data.close();
    const [file] = (await readdir(dir)).filter((f) => f.startsWith("journal-"));
    const path = join(dir, file!);
    const size = (await stat(path)).size;
    await truncate(path, size - 5);
    const b = await openDir(dir);
    expect(b.state.seen).toEqual([1, 2]);
    expect(b.warnings.join()).toMatch(/torn tail .* never acknowledged/);
    await b.append(4);
    await b.data.close();
    const c = await openDir(dir);
    expect(c.state.seen).toEqual([1, 2, 4]);
    expect(c.warnings).toEqual([]);
    await c.data.close();
  });

  it("survives garbage appended after the last record", async () => {
    const dir = await tmp();
    const a = await openDir(dir);
    await a.append(1);
    await a.data.close();
    const [file] = (await readdir(dir)).filter((f) => f.startsWith("journal-"));
    await appendFile(join(dir, file!), "27 0000");
    const b = await openDir(dir);
    expect(b.state.seen).toEqual([1]);
    expect(b.warnings).toHaveLength(1);
    await b.data.close();
  });

  it("snapshots every N records, drops old journals, and replays snapshot + journal", async () => {
    const dir = await tmp();
    const a = await openDir(dir, 5);
    for (let n = 1; n <= 12; n++) await a.append(n);
    await a.data.close();
    const files = (await readdir(dir)).sort();
    expect(files).toContain("snapshot.json");
    expect(files.filter((f) => f.startsWith("journal-"))).toHaveLength(1);
    const snap = JSON.parse(await readFile(join(dir, "snapshot.json"), "utf8"));
    expect(snap.state.seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const b = await openDir(dir, 5);
    expect(b.state.seen).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    await b.data.close();
  });

  it("recovers from a crash between journal switch and snapshot rename", async () => {
    const dir = await tmp();
    const a = await openDir(dir);
    await a.append(1);
    await a.data.close();
    // The new generation exists, the snapshot was never renamed into place.
    await writeFile(join(dir, "journal-00000002.log"), encodeRecord({ n: 2 }));
    await writeFile(join(dir, "snapshot.json.tmp"), '{"gen":2,"sta');
    const b = await openDir(dir);
    expect(b.state.seen).toEqual([1, 2]);
    await b.append(3);
    await b.data.close();
    expect((await readdir(dir)).sort()).toEqual(["journal-00000001.log", "journal-00000002.log"]);
  });

  it("takes a snapshot on demand while appends continue", async () => {
    const dir = await tmp();
    const a = await openDir(dir);
    const writes = Array.from({ length: 20 }, (_, i) => a.append(i));
    const snap = a.data.snapshot();
    writes.push(...Array.from({ length: 20 }, (_, i) => a.append(20 + i)));
    await Promise.all([...writes, snap]);
    await a.data.close();
    const b = await openDir(dir);
    expect(b.state.seen).toEqual(Array.from({ length: 40 }, (_, i) => i));
    await b.data.close();
  });

  it("refuses to start on a bad record followed by intact ones, and changes nothing on disk", async () => {
    const dir = await tmp();
    const a = await openDir(dir);
    for (const n of [1, 2, 3, 4, 5, 6]) await a.append(n);
    await a.data.close();
    const path = await journalPath(dir);
    const offset = await flipInRecord(path, 2);
    const before = await readFile(path);
    const err = await openDir(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JournalCorrupt);
    const message = (err as Error).message;
    expect(message).toContain(`journal ${path} is corrupt at byte offset ${offset}`);
    expect(message).toContain("record checksum mismatch");
    expect(message).toMatch(/an intact record follows at byte offset \d+/);
    expect(message).toMatch(/Restore the data directory .* from a backup/);
    expect(message).toContain(`head -c ${offset} ${path}.corrupt > ${path}`);
    expect(await readFile(path)).toEqual(before);
    expect((await readdir(dir)).sort()).toEqual(["journal-00000001.log"]);
  });

  it("starts again once the operator accepts the loss as the error says", async () => {
    const dir = await tmp();
    const a = await openDir(dir);
    for (const n of [1, 2, 3, 4]) await a.append(n);
    await a.data.close();
    const path = await journalPath(dir);
    const offset = await flipInRecord(path, 2);
    await expect(openDir(dir)).rejects.toThrow(JournalCorrupt);
    await writeFile(path, (await readFile(path)).subarray(0, offset)); // head -c OFFSET
    const b = await openDir(dir);
    expect(b.state.seen).toEqual([1, 2]);
    expect(b.warnings).toEqual([]);
    await b.data.close();
  });

  it("refuses a damaged last record in a journal that is not the newest", async () => {
    const dir = await tmp();
    const a = await openDir(dir);
    for (const n of [1, 2, 3]) await a.append(n);
    await a.data.close();
    // A crash between the switch to generation 2 and the snapshot's rename, then generation 1 damaged.
    await writeFile(await journalPath(dir, 2), encodeRecord({ n: 4 }));
    const old = await journalPath(dir, 1);
    const offset = await flipInRecord(old, 2);
    const before = await readFile(old);
    const err = await openDir(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JournalCorrupt);
    expect((err as Error).message).toContain(`journal ${old} is corrupt at byte offset ${offset}`);
    expect((err as Error).message).toMatch(/not the newest journal \(journal-00000002.log follows/);
    expect((err as Error).message).toContain(
      `move aside the later journals (${await journalPath(dir, 2)})`,
    );
    expect(await readFile(old)).toEqual(before);
  });

  it("refuses a journal cut short when a newer one follows it", async () => {
    const dir = await tmp();
    const a = await openDir(dir);
    for (const n of [1, 2]) await a.append(n);
    await a.data.close();
    const old = await journalPath(dir, 1);
    await truncate(old, (await stat(old)).size - 3);
    await writeFile(await journalPath(dir, 2), encodeRecord({ n: 3 }));
    await expect(openDir(dir)).rejects.toThrow(/not the newest journal/);
  });

  it("still drops a torn tail of the newest journal when older ones are intact", async () => {
    const dir = await tmp();
    const a = await openDir(dir);
    await a.append(1);
    await a.data.close();
    const newest = await journalPath(dir, 2);
    await writeFile(newest, Buffer.concat([encodeRecord({ n: 2 }), encodeRecord({ n: 3 })]));
    await truncate(newest, (await stat(newest)).size - 4);
    const b = await openDir(dir);
    expect(b.state.seen).toEqual([1, 2]);
    expect(b.warnings.join()).toMatch(/journal-00000002.log: dropped a torn tail/);
    await b.data.close();
  });
});
