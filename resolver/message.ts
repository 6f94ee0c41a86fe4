/**
 * Just enough of the RFC 1035 §4.1 message format to walk a packet without
 * decoding it: skip and read names (with compression pointers), and visit each
 * resource record's header. The hot path and the cache fill use these instead
 * of a full decoder, so stored answers keep the upstream's exact bytes.
 */
import { RecentBytes } from "../core/memo.ts";

export const HEADER_LEN = 12;
export const TYPE_OPT = 41;
export const TYPE_SOA = 6;
export const CLASS_IN = 1;

export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
} as const;

/** Thrown when a message is not well formed; the query path answers FORMERR. */
export class WireError extends Error {
  override readonly name = "WireError";
}

/** Offset just past the (possibly compressed) name starting at `off`. */
function skipName(msg: Buffer, off: number): number {
  let pos = off;
  for (;;) {
    if (pos >= msg.length) throw new WireError("name runs past the end of the message");
    const len = msg[pos]!;
    if (len === 0) return pos + 1;
    // RFC 1035 §4.1.4: a pointer ends the name.
    if ((len & 0xc0) === 0xc0) {
      if (pos + 2 > msg.length) throw new WireError("truncated compression pointer");
      return pos + 2;
    }
    if (len & 0xc0) throw new WireError(`unsupported label type 0x${len.toString(16)}`);
    pos += 1 + len;
  }
}

/** The names `nameOfWire` read last, by their wire form. */
const NAMES = new RecentBytes<string>(1);

/**
 * `readName(wireName, 0)` for a name in wire form alone, the last one kept:
 * a resolver's upstream requests ask for the same few names over and over
 * (a simulator's thousands of resolvers, the one name it follows), and a
 * comparison of its bytes costs less than decoding its labels into strings.
 */
export function nameOfWire(wireName: Buffer): string {
  let name = NAMES.get(wireName);
  if (name === undefined) {
    name = readName(wireName, 0);
    NAMES.set(wireName, name);
  }
  return name;
}

/**
 * The name at `off` in lower-case presentation form without the trailing dot,
 * following pointers (only backwards, so loops end).
 */
export function readName(msg: Buffer, off: number): string {
  const labels: string[] = [];
  let pos = off;
  let total = 1;
  for (;;) {
    if (pos >= msg.length) throw new WireError("name runs past the end of the message");
    const len = msg[pos]!;
    if (len === 0) return labels.join(".");
    if ((len & 0xc0) === 0xc0) {
      const target = ((len & 0x3f) << 8) | (msg[pos + 1] ?? 0);
      if (target >= pos) throw new WireError("compression pointer does not point backwards");
      pos = target;
      continue;
    }
    if (len & 0xc0) throw new WireError(`unsupported label type 0x${len.toString(16)}`);
    total += len + 1;
    if (total > 255 || pos + 1 + len > msg.length)
      throw new WireError("name is too long or truncated");
    labels.push(asciiLower(msg.toString("latin1", pos + 1, pos + 1 + len)));
    pos += 1 + len;
  }
}

/** DNS case-insensitivity covers ASCII letters only (RFC 4343 §3). */
export function asciiLower(s: string): string {
  // Names on the wire are mostly lower case already: a scan, no regular expression, for those.
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
  }
  return s;
}

export interface RecordHeader {
  /** 0 answer, 1 authority, 2 additional. */
  section: 0 | 1 | 2;
  /** Offset of the owner name. */
  start: number;
  type: number;
  klass: number;
  /** Offset of the 32-bit TTL field. */
  ttlAt: number;
  rdataAt: number;
  rdlength: number;
  /** Offset just past the record. */
  end: number;
}

/** Offset of the first record, past the header and the question section. */
function skipQuestions(msg: Buffer): number {
  if (msg.length < HEADER_LEN) throw new WireError("message is shorter than the 12-octet header");
  let off = HEADER_LEN;
  for (let i = msg.readUInt16BE(4); i > 0; i--) {
    off = skipName(msg, off) + 4;
    if (off > msg.length) throw new WireError("question section is truncated");
  }
  return off;
}

/** The header of every resource record after the question section, in order. */
export function readRecords(msg: Buffer): RecordHeader[] {
  const out: RecordHeader[] = [];
  let off = skipQuestions(msg);
  const counts = [msg.readUInt16BE(6), msg.readUInt16BE(8), msg.readUInt16BE(10)];
  for (const section of [0, 1, 2] as const) {
    for (let i = counts[section]!; i > 0; i--) {
      const start = off;
      const at = skipName(msg, off);
      if (at + 10 > msg.length) throw new WireError("resource record header is truncated");
      const rdlength = msg.readUInt16BE(at + 8);
      const end = at + 10 + rdlength;
      if (end > msg.length) throw new WireError("resource record data is truncated");
      out.push({
        section,
        start,
        type: msg.readUInt16BE(at),
        klass: msg.readUInt16BE(at + 2),
        ttlAt: at + 4,
        rdataAt: at + 10,
        rdlength,
        end,
      });
      off = end;
    }
  }
  return out;
}
