/**
 * The write-ahead journal: one record per committed change, appended and
 * fsynced before the change is acknowledged. Concurrent appends share one
 * fsync (group commit).
 *
 * A record is one line: `<length> <crc32 hex> <json>\n`, where length is the
 * byte length of the JSON. A crash mid-write leaves at most a torn tail (a
 * partial line, a wrong length or a bad checksum); `decodeJournal` stops there
 * and reports it, so the caller drops it with a warning.
 */
import { type FileHandle, open } from "node:fs/promises";
import { crc32 } from "node:zlib";

export function encodeRecord(record: unknown): Buffer {
  const json = Buffer.from(JSON.stringify(record));
  const crc = crc32(json).toString(16).padStart(8, "0");
  return Buffer.concat([Buffer.from(`${json.length} ${crc} `), json, Buffer.from("\n")]);
}

export interface DecodedJournal<R> {
  records: R[];
  /** Bytes of intact records from the start of the file. */
  goodBytes: number;
  /** Set when bytes after `goodBytes` could not be read as a record. */
  torn?: { offset: number; bytes: number; reason: string };
}

const HEADER = /^(\d{1,10}) ([0-9a-f]{8}) $/;

/** Decodes records up to the first one that is incomplete or corrupt. */
export function decodeJournal<R>(buf: Buffer): DecodedJournal<R> {
  const records: R[] = [];
  let offset = 0;
  while (offset < buf.length) {
    const reason = decodeOne(buf, offset, records);
    if (typeof reason === "string") {
      return { records, goodBytes: offset, torn: { offset, bytes: buf.length - offset, reason } };
    }
    offset = reason;
  }
  return { records, goodBytes: offset };
}

/** Decodes the record at `offset` into `out`; returns the next offset or why it failed. */
function decodeOne<R>(buf: Buffer, offset: number, out: R[]): number | string {
  // The header is at most 10 digits + space + 8 hex + space.
  const headerEnd = buf.indexOf(0x20, buf.indexOf(0x20, offset) + 1);
  if (headerEnd < 0 || headerEnd - offset > 20) return "incomplete record header";
  const m = HEADER.exec(buf.toString("latin1", offset, headerEnd + 1));
  if (!m) return "malformed record header";
  const length = Number(m[1]);
  const start = headerEnd + 1;
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
    return new JournalWriter(await open(path, "a"), path);
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
    const next = await open(path, "a");
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
    const bytes = Buffer.concat(batch.map((p) => p.bytes));
    const { bytesWritten } = await this.fh.write(bytes);
    if (bytesWritten !== bytes.length) {
      throw new Error(`short write to ${this.path}: ${bytesWritten} of ${bytes.length} bytes`);
    }
    await this.fh.datasync();
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
