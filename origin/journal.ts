/**
 * The write-ahead journal: one record per committed change, appended and
 * fsynced before the change is acknowledged. Concurrent appends share one
 * fsync (group commit).
 *
 * A record is one line: `<length> <crc32 hex> <json>\n`, where length is the
 * byte length of the JSON (JSON escapes newlines, so `\n` only ends records).
 * A crash mid-write can only damage the *tail*: the batch being written when
 * it struck, which was never acknowledged. So a bad record with no intact
 * record after it is a torn tail, safe to drop; a bad record followed by an
 * intact one is corruption of acknowledged data, and `decodeJournal` reports
 * it as such (etcd's WAL and PostgreSQL's recovery draw the same line).
 */
import { constants } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { crc32 } from "node:zlib";

export function encodeRecord(record: unknown): Buffer {
  const json = Buffer.from(JSON.stringify(record));
  const head = `${json.length} ${crc32(json).toString(16).padStart(8, "0")} `;
  const out = Buffer.allocUnsafe(head.length + json.length + 1);
  out.write(head, 0, "latin1");
  json.copy(out, head.length);
  out[out.length - 1] = 0x0a;
  return out;
}

/**
 * Journals are opened for appending with O_DSYNC (POSIX: a write returns once
 * its data, and the metadata needed to read it back, are on stable storage):
 * the same guarantee as write + fdatasync, in one call on libuv's thread pool
 * instead of two round trips per group commit.
 */
const JOURNAL_FLAGS =
  constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | constants.O_DSYNC;

/** A record that could not be read: where, how many bytes from there to the end, and why. */
export interface BadRecord {
  offset: number;
  bytes: number;
  reason: string;
}

export interface DecodedJournal<R> {
  records: R[];
  /** Bytes of intact records from the start of the file. */
  goodBytes: number;
  /** A bad record at `goodBytes` with nothing intact after it: a write cut short. */
  torn?: BadRecord;
  /** A bad record at `goodBytes` followed by an intact record at `nextRecordAt`. */
  corrupt?: BadRecord & { nextRecordAt: number };
}

const HEADER = /^(\d{1,10}) ([0-9a-f]{8}) $/;

/** Decodes records up to the first one that is incomplete or corrupt, and says which it is. */
export function decodeJournal<R>(buf: Buffer): DecodedJournal<R> {
  const records: R[] = [];
  let offset = 0;
  while (offset < buf.length) {
    const next = decodeOne(buf, offset, records);
    if (typeof next === "string") {
      const bad = { offset, bytes: buf.length - offset, reason: next };
      const nextRecordAt = intactRecordAfter(buf, offset);
      return nextRecordAt === undefined
        ? { records, goodBytes: offset, torn: bad }
        : { records, goodBytes: offset, corrupt: { ...bad, nextRecordAt } };
    }
    offset = next;
  }
  return { records, goodBytes: offset };
}

/**
 * The offset of the first intact record after `offset`, if any. Every byte is
 * a candidate start, not only those after a line end: the damage may have hit
 * the line end itself. A false match needs a matching CRC-32 and a line end
 * that JSON cannot contain, so a torn tail is not mistaken for one.
 */
function intactRecordAfter(buf: Buffer, offset: number): number | undefined {
  const scratch: unknown[] = [];
  for (let at = offset + 1; at < buf.length; at++) {
    if (typeof decodeOne(buf, at, scratch) === "number") return at;
  }
  return undefined;
}

/** Decodes the record at `offset` into `out`; returns the next offset or why it failed. */
function decodeOne<R>(buf: Buffer, offset: number, out: R[]): number | string {
  // The header is at most 10 digits + space + 8 hex + space.
  const head = buf.subarray(offset, offset + 20);
  const space = head.indexOf(0x20);
  const headerEnd = space < 0 ? -1 : head.indexOf(0x20, space + 1);
  if (headerEnd < 0) return "incomplete record header";
  const m = HEADER.exec(head.toString("latin1", 0, headerEnd + 1));
  if (!m) return "malformed record header";
  const length = Number(m[1]);
  const start = offset + headerEnd + 1;
  const end = start + length;
  if (end >= buf.length) return "record shorter than its length (write cut short)";
  if (buf[end] !== 0x0a) return "record length does not match its end of line";
  const json = buf.subarray(start, end);
  if (crc32(json).toString(16).padStart(8, "0") !== m[2]) return "record checksum mismatch";
  try {
    out.push(JSON.parse(json.toString("utf8")) as R);
  } catch (err) {
    return `record is not JSON: ${(err as Error).message}`;
  }
  return end + 1;
}

interface Pending {
  bytes: Buffer;
  onDurable: () => void;
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * Appends to one journal file with group commit: appends that arrive while an
 * fsync is running are written together and share the next fsync. After the
 * fsync, each append's `onDurable` runs synchronously in append order, then
 * its promise resolves. Any I/O error fails this append and every later one:
 * the file's tail is then unknown, so the process must restart and replay.
 */
export class JournalWriter {
  private queue: Pending[] = [];
  private running: Promise<void> | undefined;
  private failure: Error | undefined;
  private closed = false;
  /** Records and fsynced batches written so far (batches < records means group commit at work). */
  readonly stats = { records: 0, batches: 0 };
  /** Runs between two batches, when every written record is durable (used to rotate files). */
  private between: (() => Promise<void>) | undefined;

  private constructor(
    private fh: FileHandle,
    public path: string,
  ) {}

  static async open(path: string): Promise<JournalWriter> {
    return new JournalWriter(await open(path, JOURNAL_FLAGS), path);
  }

  append(bytes: Buffer, onDurable: () => void): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new Error(`journal ${this.path} is closed`));
    return new Promise((resolve, reject) => {
      this.queue.push({ bytes, onDurable, resolve, reject });
      this.kick();
    });
  }

  /** Runs `task` at the next point where no batch is in flight; appends wait meanwhile. */
  runBetweenBatches(task: () => Promise<void>): void {
    const previous = this.between;
    this.between = previous
      ? async () => {
          await previous();
          await task();
        }
      : task;
    this.kick();
  }

  /** Switches to another file; only call from a `runBetweenBatches` task. */
  async switchTo(path: string): Promise<void> {
    const next = await open(path, JOURNAL_FLAGS);
    await this.fh.close();
    this.fh = next;
    this.path = path;
  }

  /** Waits for queued appends, then closes the file. */
  async close(): Promise<void> {
    this.closed = true;
    await this.running;
    await this.fh.close();
  }

  private kick(): void {
    this.running ??= this.loop().finally(() => {
      this.running = undefined;
      if (this.queue.length > 0 || this.between) this.kick();
    });
  }

  private async loop(): Promise<void> {
    for (;;) {
      const task = this.between;
      this.between = undefined;
      const batch = this.queue;
      if (!task && batch.length === 0) return;
      try {
        if (task) await task();
        this.queue = [];
        if (batch.length > 0) await this.writeBatch(batch);
      } catch (err) {
        this.fail(err as Error, this.queue === batch ? batch : [...batch, ...this.queue]);
        return;
      }
    }
  }

  private async writeBatch(batch: Pending[]): Promise<void> {
    const bytes = batch.length === 1 ? batch[0]!.bytes : Buffer.concat(batch.map((p) => p.bytes));
    // Durable when it returns (O_DSYNC, JOURNAL_FLAGS): the group commit's one fsync.
    const { bytesWritten } = await this.fh.write(bytes);
    if (bytesWritten !== bytes.length) {
      throw new Error(`short write to ${this.path}: ${bytesWritten} of ${bytes.length} bytes`);
    }
    this.stats.records += batch.length;
    this.stats.batches++;
    for (const p of batch) p.onDurable();
    for (const p of batch) p.resolve();
  }

  private fail(err: Error, pending: Pending[]): void {
    this.failure = new Error(
      `journal ${this.path} failed (${err.message}); restart the origin to replay its journal`,
    );
    this.queue = [];
    for (const p of pending) p.reject(this.failure);
  }
}
