/**
 * The origin's data directory: a snapshot plus journal generations.
 *
 *   DIR/snapshot.json          { gen, state }: the state after every journal below `gen`
 *   DIR/journal-<gen>.log      records committed after that (see journal.ts)
 *
 * Snapshots bound replay time. Every `snapshotEvery` records, between two
 * group commits, the writer switches to journal gen+1 and the state at that
 * instant is written to a temporary file, fsynced, renamed over snapshot.json
 * and the directory fsynced; only then are older journals deleted. A crash at
 * any step leaves a snapshot and the journals that follow it, so recovery
 * replays the snapshot and then every journal from its `gen` on. Only the
 * newest journal's tail may be torn (and is cut off); any other damage stops
 * the start with `JournalCorrupt`.
 */
import { mkdir, open, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import {
  type BadRecord,
  type DecodedJournal,
  decodeJournal,
  encodeRecord,
  JournalWriter,
} from "./journal.ts";

export interface DataDirOptions {
  /** Records between snapshots. */
  snapshotEvery: number;
  warn: (message: string) => void;
}

export interface Recovered<R, S> {
  snapshot: S | undefined;
  records: R[];
}

const SNAPSHOT = "snapshot.json";
const JOURNAL = /^journal-(\d{8})\.log$/;

function journalName(gen: number): string {
  return `journal-${String(gen).padStart(8, "0")}.log`;
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export class DataDir<R, S> {
  private sinceSnapshot: number;
  private snapshotting: Promise<void> | undefined;
  private scheduled = false;
  private capture: (() => S) | undefined;
  private snapshots = 0;

  private constructor(
    readonly dir: string,
    private readonly writer: JournalWriter,
    private gen: number,
    replayed: number,
    private readonly opts: DataDirOptions,
  ) {
    this.sinceSnapshot = replayed;
  }

  /** Opens (creating if needed) a data directory and reads what it holds. */
  static async open<R, S>(
    dir: string,
    opts: DataDirOptions,
  ): Promise<{ data: DataDir<R, S>; recovered: Recovered<R, S> }> {
    await mkdir(dir, { recursive: true });
    await rm(join(dir, `${SNAPSHOT}.tmp`), { force: true });
    const snap = await readSnapshot<S>(dir);
    const snapGen = snap?.gen ?? 1;
    const gens = await journalGens(dir);
    for (const gen of gens.filter((g) => g < snapGen)) {
      // Left by a crash between the snapshot's rename and the cleanup after it.
      await rm(join(dir, journalName(gen)));
    }
    const journals = await readJournals<R>(
      dir,
      gens.filter((g) => g >= snapGen),
    );
    const records = journals.flatMap((j) => j.decoded.records);
    const newest = journals.at(-1);
    if (newest?.decoded.torn) await dropTornTail(newest.path, newest.decoded.torn, opts.warn);
    const gen = Math.max(snapGen, ...gens);
    const writer = await JournalWriter.open(join(dir, journalName(gen)));
    await fsyncDir(dir);
    return {
      data: new DataDir(dir, writer, gen, records.length, opts),
      recovered: { snapshot: snap?.state, records },
    };
  }

  /** Records and fsynced batches since start, the journal generation, snapshots written since start. */
  get stats(): { records: number; batches: number; gen: number; snapshots: number } {
    return { ...this.writer.stats, gen: this.gen, snapshots: this.snapshots };
  }

  /** Tells the directory how to read the current state for a snapshot. */
  snapshotWith(capture: () => S): void {
    this.capture = capture;
  }

  /** Appends a record; `onDurable` runs once it is on disk, in append order. */
  append(record: R, onDurable: () => void): Promise<void> {
    return this.writer.append(encodeRecord(record), () => {
      onDurable();
      this.sinceSnapshot++;
      if (this.sinceSnapshot >= this.opts.snapshotEvery) this.scheduleSnapshot();
    });
  }

  /** Writes a snapshot now (between batches) and waits for it. */
  async snapshot(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.writer.runBetweenBatches(() => this.rotate().then(resolve, reject));
    });
    await this.snapshotting;
  }

  async close(): Promise<void> {
    await this.writer.close();
    await this.snapshotting;
  }

  private scheduleSnapshot(): void {
    if (this.scheduled || !this.capture) return;
    this.scheduled = true;
    this.writer.runBetweenBatches(() => this.rotate());
  }

  /** Runs between batches: every record written so far is applied to the captured state. */
  private async rotate(): Promise<void> {
    if (!this.capture) throw new Error("snapshotWith() was not called");
    await this.snapshotting; // one snapshot file write at a time
    this.scheduled = false;
    const state = this.capture();
    this.gen++;
    await this.writer.switchTo(join(this.dir, journalName(this.gen)));
    await fsyncDir(this.dir);
    this.sinceSnapshot = 0;
    const gen = this.gen;
    this.snapshotting = writeSnapshot(this.dir, { gen, state })
      .then(() => {
        this.snapshots++;
        return removeJournalsBefore(this.dir, gen);
      })
      .catch((err: Error) => {
        this.opts.warn(`snapshot failed (${err.message}); journals are kept, so nothing is lost`);
      })
      .finally(() => {
        this.snapshotting = undefined;
      });
  }
}

async function readSnapshot<S>(dir: string): Promise<{ gen: number; state: S } | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, SNAPSHOT), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  try {
    const snap = JSON.parse(text) as { gen: number; state: S };
    if (!Number.isInteger(snap.gen) || snap.gen < 1) throw new Error("no journal generation");
    return snap;
  } catch (err) {
    // Snapshots are renamed into place whole, so this is damage from outside.
    throw new Error(
      `snapshot ${join(dir, SNAPSHOT)} is unreadable (${(err as Error).message}); restore it from a backup`,
    );
  }
}

async function writeSnapshot<S>(dir: string, snap: { gen: number; state: S }): Promise<void> {
  const tmp = join(dir, `${SNAPSHOT}.tmp`);
  await writeFile(tmp, JSON.stringify(snap));
  const fh = await open(tmp, "r+");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, join(dir, SNAPSHOT));
  await fsyncDir(dir);
}

async function removeJournalsBefore(dir: string, gen: number): Promise<void> {
  for (const g of await journalGens(dir)) {
    if (g < gen) await rm(join(dir, journalName(g)), { force: true });
  }
}

async function journalGens(dir: string): Promise<number[]> {
  const gens: number[] = [];
  for (const name of await readdir(dir)) {
    const m = JOURNAL.exec(name);
    if (m) gens.push(Number(m[1]));
  }
  return gens.sort((a, b) => a - b);
}

/**
 * Reads the journals to replay, oldest first, and refuses damage that is not a
 * torn tail: a bad record followed by an intact one, or any bad record in a
 * journal that is not the newest (the writer moves to the next generation only
 * once every record written is durable, so an older journal cannot be torn).
 * Nothing is changed on disk before every journal has been checked.
 */
async function readJournals<R>(
  dir: string,
  gens: number[],
): Promise<{ path: string; decoded: DecodedJournal<R> }[]> {
  const paths = gens.map((g) => join(dir, journalName(g)));
  const journals = await Promise.all(
    paths.map(async (path) => ({ path, decoded: decodeJournal<R>(await readFile(path)) })),
  );
  journals.forEach(({ path, decoded }, i) => {
    const later = paths.slice(i + 1);
    if (decoded.corrupt) {
      const { nextRecordAt } = decoded.corrupt;
      throw new JournalCorrupt(
        path,
        decoded.corrupt,
        `an intact record follows at byte offset ${nextRecordAt}, so this is not a write cut short by a crash`,
        later,
      );
    }
    if (decoded.torn && later.length > 0) {
      throw new JournalCorrupt(
        path,
        decoded.torn,
        `it is not the newest journal (${basename(later[0]!)} follows it), so every record in it had been acknowledged`,
        later,
      );
    }
  });
  return journals;
}

/**
 * Acknowledged records cannot be read. Starting anyway would drop them and
 * hand their serials out again, so the origin refuses and says how to go on.
 */
export class JournalCorrupt extends Error {
  constructor(
    readonly path: string,
    readonly bad: BadRecord,
    why: string,
    later: readonly string[],
  ) {
    const { offset, reason } = bad;
    const moveLater =
      later.length > 0
        ? `, move aside the later journals (${later.join(", ")}) whose changes build on the lost ones,`
        : "";
    super(
      `journal ${path} is corrupt at byte offset ${offset} (${reason}); ${why}. ` +
        `Nothing was changed on disk and the origin will not start on it. Restore the data directory ` +
        `${dirname(path)} from a backup; or, to accept losing every change from that offset on, ` +
        `move the file aside (mv ${path} ${path}.corrupt), keep the records before the damage ` +
        `(head -c ${offset} ${path}.corrupt > ${path})${moveLater} and start again.`,
    );
  }
}

/** Cuts a torn tail off the newest journal (so appends follow intact records), with a warning. */
async function dropTornTail(
  path: string,
  torn: BadRecord,
  warn: (m: string) => void,
): Promise<void> {
  const { offset, bytes, reason } = torn;
  warn(
    `journal ${path}: dropped a torn tail of ${bytes} bytes at offset ${offset} (${reason}); ` +
      `it holds a write that was never acknowledged`,
  );
  const fh = await open(path, "r+");
  try {
    await fh.truncate(offset);
    await fh.sync();
  } finally {
    await fh.close();
  }
}
