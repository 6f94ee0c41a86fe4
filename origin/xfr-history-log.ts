/**
 * The IXFR differences on disk (`DIR/ixfr.log`), so that a secondary still
 * gets an incremental transfer (RFC 1995 §4) after the origin restarts. The
 * journal holds each RRset's new state only, so the records a change deleted
 * would be gone; this log keeps them, beside the journal and in its format
 * (`<length> <crc32> <json>` lines, group-committed fsyncs, journal.ts).
 *
 * It is written after the journal has made a change durable, so a crash can
 * lose its tail, never get ahead of the zones. What it holds is trusted only
 * where it fits: on start, a zone's differences are kept when they chain serial
 * to serial and end at the serial the store holds; anything else (a lost tail,
 * a zone re-created, a damaged file) leaves that zone without history, which
 * is answered with the whole zone in IXFR form, never with wrong differences.
 * The file is rewritten with the kept differences at start and whenever it has
 * grown past twice what is kept, so it stays bounded by `--change-log`.
 */
import { open, readFile, rename } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { RRset } from "../core/records.ts";
import { decodeJournal, encodeRecord, JournalWriter } from "./journal.ts";
import type { HistoryEvent, IxfrHistory, ZoneDiff } from "./xfr-history.ts";
import type { WireRecord } from "./xfr-wire.ts";

export const IXFR_LOG = "ixfr.log";

interface LoggedRecord {
  owner: string;
  /** The record after its owner, base64. */
  rest: string;
}

type LogEntry =
  | { zone: string; reset: true }
  | {
      zone: string;
      from: RRset<"SOA">;
      to: RRset<"SOA">;
      deleted: LoggedRecord[];
      added: LoggedRecord[];
    };

const toLogged = (r: WireRecord): LoggedRecord => ({
  owner: r.owner,
  rest: r.rest.toString("base64"),
});
const fromLogged = (r: LoggedRecord): WireRecord => ({
  owner: r.owner,
  rest: Buffer.from(r.rest, "base64"),
});

function encodeEvent(e: HistoryEvent): Buffer {
  if ("reset" in e) return encodeRecord({ zone: e.zone, reset: true } satisfies LogEntry);
  const { from, to, deleted, added } = e.diff;
  return encodeRecord({
    zone: e.zone,
    from,
    to,
    deleted: deleted.map(toLogged),
    added: added.map(toLogged),
  } satisfies LogEntry);
}

const serialOf = (soa: RRset<"SOA">): number => soa.data[0]!.serial;

/**
 * Each zone's differences as the log tells them, oldest first: a difference
 * that does not follow the previous one (its tail was lost before a crash)
 * starts the chain again; one written twice (a rewrite raced an append) is
 * dropped; a reset (zone created or deleted) empties it.
 */
function chains(entries: readonly LogEntry[]): Map<string, ZoneDiff[]> {
  const out = new Map<string, ZoneDiff[]>();
  for (const e of entries) {
    if ("reset" in e) {
      out.delete(e.zone);
      continue;
    }
    const diff: ZoneDiff = {
      from: e.from,
      to: e.to,
      deleted: e.deleted.map(fromLogged),
      added: e.added.map(fromLogged),
    };
    const list = out.get(e.zone) ?? [];
    const last = list.at(-1);
    if (last && serialOf(last.to) === serialOf(diff.from)) list.push(diff);
    else if (!list.some((d) => serialOf(d.from) === serialOf(diff.from)))
      list.splice(0, list.length, diff);
    out.set(e.zone, list);
  }
  return out;
}

export class IxfrHistoryLog {
  private sinceRewrite = 0;
  private rewriting = false;
  private last: Promise<void> = Promise.resolve();

  private constructor(
    private readonly writer: JournalWriter,
    private readonly history: IxfrHistory,
    private readonly log: (m: string) => void,
  ) {}

  /**
   * Restores what `dir`'s log holds into `history` (already seeded with the
   * store's zones; `serialOf` gives each zone's current serial), rewrites the
   * file with it, and from then on appends every difference.
   */
  static async open(
    dir: string,
    history: IxfrHistory,
    currentSerial: (zone: string) => number | undefined,
    log: (m: string) => void,
  ): Promise<IxfrHistoryLog> {
    const path = join(dir, IXFR_LOG);
    const bytes = await readFile(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return Buffer.alloc(0);
      throw err;
    });
    const decoded = decodeJournal<LogEntry>(bytes);
    const bad = decoded.corrupt ?? decoded.torn;
    if (bad) log(`${path}: ${bad.reason} at byte ${bad.offset}; IXFR history kept up to there`);
    let restored: Map<string, ZoneDiff[]>;
    try {
      restored = chains(decoded.records);
    } catch (err) {
      // Intact records of another shape (a file put there by hand): start without history.
      log(`${path}: ${(err as Error).message}; IXFR history starts empty`);
      restored = new Map();
    }
    for (const [zone, diffs] of restored) {
      const last = diffs.at(-1);
      if (last && serialOf(last.to) === currentSerial(zone)) history.restore(zone, diffs);
    }
    await rewrite(path, history);
    const self = new IxfrHistoryLog(await JournalWriter.open(path), history, log);
    history.onEvent = (e) => self.append(e);
    return self;
  }

  /** Resolves once every difference appended so far is on disk (or its write failed). */
  durable(): Promise<void> {
    return this.last;
  }

  close(): Promise<void> {
    this.history.onEvent = undefined;
    return this.writer.close();
  }

  private append(e: HistoryEvent): void {
    // The history in memory is right either way; a failed write only costs
    // the next restart its history (answered with full zones), so log it.
    this.last = this.writer
      .append(encodeEvent(e), () => {})
      .catch((err: Error) => {
        this.history.onEvent = undefined;
        this.log(`IXFR history log stopped: ${err.message}`);
      });
    this.sinceRewrite++;
    const kept = this.history.kept().reduce((n, z) => n + z.diffs.length, 0);
    if (!this.rewriting && this.sinceRewrite > Math.max(1000, 2 * kept)) {
      this.rewriting = true;
      this.sinceRewrite = 0;
      this.writer.runBetweenBatches(async () => {
        await rewrite(this.writer.path, this.history);
        await this.writer.switchTo(this.writer.path);
        this.rewriting = false;
      });
    }
  }
}

/** Replaces the file with the kept differences: temp file, fsync, rename, directory fsync. */
async function rewrite(path: string, history: IxfrHistory): Promise<void> {
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, "w");
  try {
    for (const { zone, diffs } of history.kept())
      for (const diff of diffs) await fh.write(encodeEvent({ zone, diff }));
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  const d = await open(dirname(path), "r");
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
