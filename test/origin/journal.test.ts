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
import { DataDir } from "../../origin/snapshot.ts";

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
});

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
});
