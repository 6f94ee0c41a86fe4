/**
 * The origin's answer cache: finished responses as wire bytes, keyed by what
 * decides their content (query name lower-cased, QTYPE, QCLASS, the EDNS
 * shape), so a repeated query is answered by copying bytes and patching the
 * ID, RD and the question's letter case (0x20, draft-vixie-dnsext-dns0x20)
 * instead of decode, resolve, encode. Entries are dropped when a commit
 * touches a zone they were built from (the zone holding the name, and every
 * zone an owner in the answer comes from, so a CNAME into another zone
 * follows its target); creating or deleting a zone drops everything, because
 * it moves which zone holds a name. Bounded in bytes, oldest entry evicted
 * first. Only plain, unsigned QUERY messages are looked up here: TSIG,
 * transfers and NOTIFY never reach it (origin/dns-server.ts).
 */
import type { CommittedChange } from "./types.ts";

const HEADER = 12;
const TYPE_OPT = 41;
const OPTION_NSID = 3;
const OPTION_COOKIE = 10;
const QTYPE_IXFR = 251;
const QTYPE_AXFR = 252;
/** Rough per-entry cost beyond the bytes themselves: the Map slot, the key, the entry object. */
const ENTRY_OVERHEAD = 160;

/** What a query must carry for a cached answer: its key, and what patching and TC need. */
export interface CacheKey {
  key: string;
  /** Offset just past the question name (its root label). */
  nameEnd: number;
  /** RFC 6891 §6.2.3: the client's UDP payload size, when it sent EDNS. */
  udpSize?: number;
}

export interface CachedAnswer<R> {
  /** The full response, ID 0, RD clear. */
  wire: Buffer;
  /** The same with TC set and no records (RFC 2181 §9), for UDP clients it does not fit. */
  truncated: Buffer;
  /** What the answer path reports for it (metrics, query log). */
  resolution: R;
  /** Zones the answer was built from; "" for an answer from no zone (REFUSED). */
  zones: string[];
  bytes: number;
}

export interface AnswerCacheStats {
  entries: number;
  bytes: number;
  hits: number;
  misses: number;
}

export class AnswerCache<R = unknown> {
  private readonly entries = new Map<string, CachedAnswer<R>>();
  private readonly byZone = new Map<string, Set<string>>();
  private bytes = 0;
  private hits = 0;
  private misses = 0;

  constructor(readonly maxBytes = 32 * 1024 * 1024) {}

  get(key: string): CachedAnswer<R> | undefined {
    const hit = this.entries.get(key);
    if (hit) this.hits++;
    else this.misses++;
    return hit;
  }

  set(key: string, entry: Omit<CachedAnswer<R>, "bytes">): void {
    const bytes = entry.wire.length + entry.truncated.length + 2 * key.length + ENTRY_OVERHEAD;
    if (bytes > this.maxBytes) return;
    this.delete(key);
    while (this.bytes + bytes > this.maxBytes) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.delete(oldest);
    }
    this.entries.set(key, { ...entry, bytes });
    this.bytes += bytes;
    for (const z of entry.zones) {
      const keys = this.byZone.get(z);
      if (keys) keys.add(key);
      else this.byZone.set(z, new Set([key]));
    }
  }

  /** store.onCommit: drops what the change may have made wrong, before the writer is answered. */
  readonly onCommit = (change: Pick<CommittedChange, "op" | "zone">): void => {
    if (change.op !== "update") {
      this.clear();
      return;
    }
    const keys = this.byZone.get(change.zone);
    if (!keys) return;
    for (const key of [...keys]) this.delete(key);
  };

  clear(): void {
    this.entries.clear();
    this.byZone.clear();
    this.bytes = 0;
  }

  stats(): AnswerCacheStats {
    return { entries: this.entries.size, bytes: this.bytes, hits: this.hits, misses: this.misses };
  }

  private delete(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    this.bytes -= entry.bytes;
    for (const z of entry.zones) {
      const keys = this.byZone.get(z);
      keys?.delete(key);
      if (keys?.size === 0) this.byZone.delete(z);
    }
  }
}

/**
 * The cache key of a plain query, read straight off the wire; undefined for
 * anything else (a response, another opcode, more or other sections than one
 * question and an optional OPT, EDNS version > 0, an option other than NSID
 * or COOKIE, trailing bytes), which then takes the full path and is not cached.
 * The key is the question's bytes with ASCII letters lowered (names compare
 * case-insensitively, RFC 4343), its type and class, and whether EDNS, NSID
 * and DO were asked for: everything the answer depends on besides ID and RD.
 */
export function cacheKey(q: Buffer): CacheKey | undefined {
  if (q.length < HEADER + 5) return undefined;
  // QR clear, opcode QUERY (0); QDCOUNT 1, ANCOUNT 0, NSCOUNT 0, ARCOUNT 0 or 1.
  if ((q[2]! & 0xf8) !== 0) return undefined;
  if (q[4] !== 0 || q[5] !== 1 || q[6] !== 0 || q[7] !== 0 || q[8] !== 0 || q[9] !== 0)
    return undefined;
  const arcount = q[10]! * 256 + q[11]!;
  if (arcount > 1) return undefined;
  let i = HEADER;
  let upper = false;
  for (;;) {
    const len = q[i];
    if (len === undefined || len > 63) return undefined;
    if (len === 0) break;
    if (i + 1 + len >= q.length) return undefined;
    for (let j = i + 1; j <= i + len; j++) {
      const c = q[j]!;
      if (c >= 0x41 && c <= 0x5a) upper = true;
    }
    i += 1 + len;
  }
  const nameEnd = i + 1;
  const end = nameEnd + 4;
  if (end > q.length) return undefined;
  const qtype = q.readUInt16BE(nameEnd);
  // RFC 5936, RFC 1995: transfers are served by the primary, never from here.
  if (qtype === QTYPE_AXFR || qtype === QTYPE_IXFR) return undefined;
  // The question (name, QTYPE, QCLASS) as one latin1 string, ASCII letters lowered.
  const question = upper ? lowerAscii(q, HEADER, end) : q.toString("latin1", HEADER, end);
  if (arcount === 0) {
    if (end !== q.length) return undefined;
    return { key: `-|${question}`, nameEnd };
  }
  // RFC 6891 §6.1.2: root owner, TYPE 41, CLASS = payload size, TTL = ext-RCODE, VERSION, DO|Z.
  if (end + 11 > q.length || q[end] !== 0 || q.readUInt16BE(end + 1) !== TYPE_OPT) return undefined;
  const udpSize = q.readUInt16BE(end + 3);
  if (q[end + 6] !== 0) return undefined; // version > 0 answers BADVERS on the full path
  const dnssecOk = (q[end + 7]! & 0x80) !== 0;
  const rdlen = q.readUInt16BE(end + 9);
  if (end + 11 + rdlen !== q.length) return undefined;
  let nsid = false;
  for (let o = end + 11; o < q.length; ) {
    if (o + 4 > q.length) return undefined;
    const code = q.readUInt16BE(o);
    const len = q.readUInt16BE(o + 2);
    if (o + 4 + len > q.length) return undefined;
    if (code === OPTION_NSID) nsid = true;
    else if (code !== OPTION_COOKIE) return undefined;
    o += 4 + len;
  }
  return {
    key: `e${nsid ? "n" : ""}${dnssecOk ? "d" : ""}|${question}`,
    nameEnd,
    udpSize,
  };
}

function lowerAscii(q: Buffer, from: number, to: number): string {
  const b = Buffer.from(q.subarray(from, to));
  for (let i = 0; i < b.length; i++) if (b[i]! >= 0x41 && b[i]! <= 0x5a) b[i] = b[i]! + 0x20;
  return b.toString("latin1");
}

/** The answer for one client: the stored bytes with its ID, RD and question name as sent. */
export function renderCached(stored: Buffer, query: Buffer, nameEnd: number): Buffer {
  const out = Buffer.allocUnsafe(stored.length);
  stored.copy(out);
  out[0] = query[0]!;
  out[1] = query[1]!;
  out[2] = stored[2]! | (query[2]! & 0x01);
  query.copy(out, HEADER, HEADER, nameEnd);
  return out;
}
