/**
 * The journal's durability, as the kernel sees it: every journal file the
 * writer holds open (the first and the one it switches to at a snapshot) is
 * open with O_DSYNC, so a write returns only once its bytes are on stable
 * storage (the group commit's fsync); a record's encoding stays the
 * replayable `<length> <crc32> <json>\n` line.
 */
import { mkdtemp, readdir, readFile, readlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { describe, expect, it } from "vitest";
import { decodeJournal, encodeRecord } from "../../origin/journal.ts";
import { DataDir } from "../../origin/snapshot.ts";

/** O_DSYNC on Linux (asm-generic/fcntl.h): 010000 octal. */
const O_DSYNC = 0o10000;

/** The `flags:` (octal) of every descriptor this process holds open on `path`. */
async function openFlags(path: string): Promise<number[]> {
  const out: number[] = [];
  for (const fd of await readdir("/proc/self/fd")) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => "");
    if (target !== path) continue;
    const info = await readFile(`/proc/self/fdinfo/${fd}`, "latin1").catch(() => "");
    const m = /^flags:\s+([0-7]+)$/m.exec(info);
    if (m) out.push(Number.parseInt(m[1]!, 8));
  }
  return out;
}

describe("journal durability", () => {
  it("keeps each journal open with O_DSYNC, across a switch at a snapshot", async () => {
    const dir = await mkdtemp(join(tmpdir(), "propagate-journal-dsync-"));
    const { data } = await DataDir.open<{ n: number }, { n: number }>(dir, {
      snapshotEvery: 3,
      warn: () => {},
    });
    data.snapshotWith(() => ({ n: 0 }));
    const journals = async () =>
      (await readdir(dir)).filter((f) => f.startsWith("journal-")).map((f) => join(dir, f));
    const first = (await journals())[0]!;
    const flags = await openFlags(first);
    expect(flags).toHaveLength(1);
    expect(flags[0]! & O_DSYNC).toBe(O_DSYNC);
    for (let n = 0; n < 4; n++) await data.append({ n }, () => {});
    // The snapshot after 3 records switched the writer to the next generation.
    const held: string[] = [];
    for (const j of await journals()) if ((await openFlags(j)).length > 0) held.push(j);
    expect(held).toHaveLength(1);
    expect(held[0]).not.toBe(first);
    expect((await openFlags(held[0]!))[0]! & O_DSYNC).toBe(O_DSYNC);
    await data.close();
  });

  it("encodes a record as one line that decodes back", () => {
    const record = { n: 1, text: "naïve \n line" };
    const line = encodeRecord(record);
    const json = JSON.stringify(record);
    const bytes = Buffer.byteLength(json);
    const crc = crc32(Buffer.from(json)).toString(16).padStart(8, "0");
    expect(line.toString("utf8")).toBe(`${bytes} ${crc} ${json}\n`);
    expect(decodeJournal(Buffer.concat([line, line])).records).toEqual([record, record]);
  });
});
