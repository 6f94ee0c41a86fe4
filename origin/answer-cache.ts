/**
 * The origin's answer cache: finished responses as wire bytes, keyed by what
 * decides their content (query name lower-cased, QTYPE, QCLASS, the EDNS
 * shape), so a repeated query is answered by copying bytes and patching the
 * ID, RD and the question's letter case (0x20, draft-vixie-dnsext-dns0x20)
 * instead of decode, resolve, encode.
 *
 * Invalidation is per RRset: each entry carries the reads its answer was
 * built from (origin/authoritative.ts records them while resolving), and a
 * commit drops only the entries that read something it changed:
 * - an RRset read, found or not (`zone, name, type`): the exact match, each
 *   CNAME hop in whatever zone it lies (RFC 1034 §3.6.2), the NS of every
 *   possible cut above the name (RFC 1034 §4.3.2 step 3b), glue and
 *   additional addresses, the wildcard's RRsets (RFC 4592 §3.3.1);
 * - all RRsets at a name (`zone, name, *`): ANY (RFC 8482 §4.2);
 * - whether a name exists, with the answer seen (`zone, name, ?1` or `?0`):
 *   a change at or below a name can turn NXDOMAIN into NODATA (RFC 8020 §2)
 *   or stop a wildcard from matching (RFC 4592 §2.2.1), so after a change at
 *   N the existence of N and of every ancestor up to the apex is asked again
 *   and the reads that saw the other answer go (a new type at a name that
 *   already existed leaves the name's other answers alone);
 * - the SOA (`zone, apex, SOA`): every update carries the new SOA in its
 *   changes (a new serial), so every answer with the SOA in it — NXDOMAIN
 *   and NODATA (RFC 2308 §3), the SOA itself, ANY at the apex — goes on every
 *   commit to its zone, and no negative answer outlives a serial.
 * A commit's `changes` are exactly what the store applies (store.ts
 * applyRecord), so nothing changes that this does not see. Creating or
 * deleting a zone drops everything: it moves which zone holds a name.
 * Bounded in bytes, oldest entry evicted first. Only plain, unsigned QUERY
 * messages are looked up here: TSIG, transfers and NOTIFY never reach it
 * (origin/dns-server.ts).
 */
import { parentName } from "../core/names.ts";
import { extend } from "../core/objects.ts";
import type { CommittedChange } from "./types.ts";
import type { ZoneSource } from "./zone.ts";

const HEADER = 12;
const TYPE_OPT = 41;
const OPTION_NSID = 3;
const OPTION_COOKIE = 10;
const QTYPE_IXFR = 251;
const QTYPE_AXFR = 252;
/** 30 bits: a small integer (Smi) for V8 on every platform. */
const HASH_MASK = 0x3fffffff;
/** Rough per-entry cost beyond the bytes themselves: the Map slot, the key, the entry object. */
const ENTRY_OVERHEAD = 160;
/** Rough cost of one dependency: its key string (shared) and a slot in its Set. */
const DEP_OVERHEAD = 48;

/** What a query must carry for a cached answer: its key, and what patching and TC need. */
export interface CacheKey {
  /**
   * FNV-1a of the question (name lower-cased, QTYPE, QCLASS) and the EDNS
   * shape, cut to 30 bits: V8 keeps such a number unboxed (a Smi), and a Map
   * probe with it costs a fraction of one with a heap number.
   */
  hash: number;
  /** 0 without EDNS; 1 EDNS, | 2 NSID asked, | 4 DO set. */
  shape: number;
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
  /** What the answer was built from (`readKey`, `namesKey`, `existsKey`); none for REFUSED. */
  deps: readonly string[];
}

/** The dependency on one RRset, read whether or not it existed. */
export function readKey(zone: string, name: string, type: string): string {
  return `${zone}\n${name}\n${type}`;
}

/** The dependency on every RRset at a name (ANY). */
export function namesKey(zone: string, name: string): string {
  return `${zone}\n${name}\n*`;
}

/** The dependency on whether a name exists (owns data, or has some below it), and the answer seen. */
export function existsKey(zone: string, name: string, exists: boolean): string {
  return `${zone}\n${name}\n?${exists ? 1 : 0}`;
}

interface Entry<R> extends CachedAnswer<R> {
  hash: number;
  /** The next entry in the same slot of the table (a chain, almost always empty). */
  next: Entry<R> | undefined;
  shape: number;
  /**
   * Where the question ends in `wire` (and `truncated`). The stored question's
   * name is lower-cased: a query is checked against these bytes, so a lookup
   * reads nothing the answer it renders does not read anyway.
   */
  questionEnd: number;
  bytes: number;
}

/** Slots the table starts with; it doubles whenever entries outnumber slots. */
const INITIAL_SLOTS = 1024;

export interface AnswerCacheStats {
  entries: number;
  bytes: number;
  hits: number;
  misses: number;
}

/**
 * Entries are found by a number (the key's hash) in an array used as a hash
 * table, and confirmed byte by byte against the stored answer's question, so
 * a lookup builds no string and follows as few pointers as it can: the hot
 * path allocates only the answer it sends.
 */
export class AnswerCache<R = unknown> {
  /** hash & mask -> the first entry of its chain. */
  private table: (Entry<R> | undefined)[] = emptyTable(INITIAL_SLOTS);
  private mask = INITIAL_SLOTS - 1;
  /** Every entry, oldest first (eviction order). */
  private readonly order = new Set<Entry<R>>();
  /** Dependency key -> the entries that read it. */
  private readonly byDep = new Map<string, Set<Entry<R>>>();
  private bytes = 0;
  private hits = 0;
  private misses = 0;

  /**
   * `zones` is what answers are built from, read after a commit to ask which
   * names still exist; without it every existence read near a change is dropped.
   */
  constructor(
    readonly maxBytes = 32 * 1024 * 1024,
    private readonly zones?: ZoneSource,
  ) {}

  /** The entry for `query`, whose key is `key`. */
  get(key: CacheKey, query: Buffer): CachedAnswer<R> | undefined {
    const e = this.find(key, query);
    if (e) this.hits++;
    else this.misses++;
    return e;
  }

  private find(key: CacheKey, query: Buffer): Entry<R> | undefined {
    for (let e = this.table[key.hash & this.mask]; e !== undefined; e = e.next) {
      if (e.hash === key.hash && e.shape === key.shape && sameQuestion(e, query)) return e;
    }
    return undefined;
  }

  /** Stores `answer` (whose wire forms carry `query`'s question) for queries with `key`. */
  set(key: CacheKey, query: Buffer, answer: CachedAnswer<R>): void {
    const questionEnd = key.nameEnd + 4;
    const bytes =
      answer.wire.length +
      answer.truncated.length +
      ENTRY_OVERHEAD +
      answer.deps.length * DEP_OVERHEAD;
    if (bytes > this.maxBytes) return;
    const old = this.find(key, query);
    if (old) this.delete(old);
    while (this.bytes + bytes > this.maxBytes) {
      const oldest = this.order.values().next().value;
      if (oldest === undefined) break;
      this.delete(oldest);
    }
    if (this.order.size >= this.table.length) this.grow();
    const slot = key.hash & this.mask;
    const entry: Entry<R> = extend(answer, {
      wire: lowerName(answer.wire, questionEnd - 4),
      truncated: lowerName(answer.truncated, questionEnd - 4),
      hash: key.hash,
      next: this.table[slot],
      shape: key.shape,
      questionEnd,
      bytes,
    });
    this.table[slot] = entry;
    this.order.add(entry);
    this.bytes += bytes;
    for (const d of entry.deps) {
      const entries = this.byDep.get(d);
      if (entries) entries.add(entry);
      else this.byDep.set(d, new Set([entry]));
    }
  }

  /**
   * store.onCommit: drops the answers that read an RRset the change wrote or
   * deleted (or the existence of its name or an ancestor's), before the
   * writer is answered. A create or delete of a zone drops everything.
   */
  readonly onCommit = (change: Pick<CommittedChange, "op" | "zone" | "changes">): void => {
    if (change.op !== "update") {
      this.clear();
      return;
    }
    const zone = change.zone;
    const now = this.zones?.findZone(zone);
    const view = now?.name === zone ? now : undefined;
    for (const c of change.changes) {
      this.drop(readKey(zone, c.name, c.type));
      this.drop(namesKey(zone, c.name));
      for (let n = c.name; ; n = parentName(n)) {
        if (view) this.drop(existsKey(zone, n, !view.exists(n)));
        else {
          this.drop(existsKey(zone, n, true));
          this.drop(existsKey(zone, n, false));
        }
        if (n === zone || n === "") break;
      }
    }
  };

  clear(): void {
    this.table = emptyTable(INITIAL_SLOTS);
    this.mask = INITIAL_SLOTS - 1;
    this.order.clear();
    this.byDep.clear();
    this.bytes = 0;
  }

  /** Doubles the table and relinks every entry into it. */
  private grow(): void {
    const slots = this.table.length * 2;
    this.table = emptyTable(slots);
    this.mask = slots - 1;
    for (const e of this.order) {
      const slot = e.hash & this.mask;
      e.next = this.table[slot];
      this.table[slot] = e;
    }
  }

  private drop(dep: string): void {
    const entries = this.byDep.get(dep);
    if (!entries) return;
    for (const e of [...entries]) this.delete(e);
  }

  stats(): AnswerCacheStats {
    return { entries: this.order.size, bytes: this.bytes, hits: this.hits, misses: this.misses };
  }

  private delete(entry: Entry<R>): void {
    if (!this.order.delete(entry)) return;
    this.bytes -= entry.bytes;
    const slot = entry.hash & this.mask;
    if (this.table[slot] === entry) this.table[slot] = entry.next;
    else {
      for (let e = this.table[slot]; e !== undefined; e = e.next) {
        if (e.next === entry) {
          e.next = entry.next;
          break;
        }
      }
    }
    for (const d of entry.deps) {
      const entries = this.byDep.get(d);
      entries?.delete(entry);
      if (entries?.size === 0) this.byDep.delete(d);
    }
  }
}

/**
 * Whether `query`'s question equals the entry's (lower-cased), ASCII case
 * ignored (RFC 4343). Both names are label sequences, so equal bytes up to the
 * stored question's end mean the same name, type and class.
 */
function sameQuestion<R>(e: Entry<R>, query: Buffer): boolean {
  const stored = e.wire;
  const end = e.questionEnd;
  if (query.length < end) return false;
  for (let i = HEADER; i < end; i++) {
    let c = query[i]!;
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    if (c !== stored[i]) return false;
  }
  return true;
}

/** A copy of `wire` with the question's name (header to `nameEnd`) in lower case. */
function lowerName(wire: Buffer, nameEnd: number): Buffer {
  const b = Buffer.from(wire);
  for (let i = HEADER; i < nameEnd; i++) if (b[i]! >= 0x41 && b[i]! <= 0x5a) b[i] = b[i]! + 0x20;
  return b;
}

function emptyTable<T>(slots: number): (T | undefined)[] {
  return new Array<T | undefined>(slots).fill(undefined);
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
  // FNV-1a (32-bit) over the question with ASCII letters lowered, as the name is walked.
  let hash = 0x811c9dc5;
  let i = HEADER;
  for (;;) {
    const len = q[i];
    if (len === undefined || len > 63) return undefined;
    if (i + 1 + len >= q.length) return undefined;
    for (let j = i; j <= i + len; j++) {
      let c = q[j]!;
      if (c >= 0x41 && c <= 0x5a) c += 0x20;
      hash = Math.imul(hash ^ c, 0x01000193);
    }
    i += 1 + len;
    if (len === 0) break;
  }
  const nameEnd = i;
  const end = nameEnd + 4;
  if (end > q.length) return undefined;
  const qtype = q.readUInt16BE(nameEnd);
  // RFC 5936, RFC 1995: transfers are served by the primary, never from here.
  if (qtype === QTYPE_AXFR || qtype === QTYPE_IXFR) return undefined;
  for (let j = nameEnd; j < end; j++) hash = Math.imul(hash ^ q[j]!, 0x01000193);
  if (arcount === 0) {
    if (end !== q.length) return undefined;
    return { hash: hash & HASH_MASK, shape: 0, nameEnd };
  }
  // RFC 6891 §6.1.2: root owner, TYPE 41, CLASS = payload size, TTL = ext-RCODE, VERSION, DO|Z.
  if (end + 11 > q.length || q[end] !== 0 || q.readUInt16BE(end + 1) !== TYPE_OPT) return undefined;
  const udpSize = q.readUInt16BE(end + 3);
  if (q[end + 6] !== 0) return undefined; // version > 0 answers BADVERS on the full path
  let shape = 1;
  if (q[end + 7]! & 0x80) shape |= 4;
  const rdlen = q.readUInt16BE(end + 9);
  if (end + 11 + rdlen !== q.length) return undefined;
  for (let o = end + 11; o < q.length; ) {
    if (o + 4 > q.length) return undefined;
    const code = q.readUInt16BE(o);
    const len = q.readUInt16BE(o + 2);
    if (o + 4 + len > q.length) return undefined;
    if (code === OPTION_NSID) shape |= 2;
    else if (code !== OPTION_COOKIE) return undefined;
    o += 4 + len;
  }
  return { hash: Math.imul(hash ^ shape, 0x01000193) & HASH_MASK, shape, nameEnd, udpSize };
}

/** The answer for one client: the stored bytes with its ID, RD and question name as sent. */
export function renderCached(stored: Buffer, query: Buffer, nameEnd: number): Buffer {
  // From Node's pool and a native copy (TypedArray#set): Buffer#copy's JS wrapper and a
  // second copy call for a name of a few dozen bytes cost more than the bytes themselves.
  const out = Buffer.allocUnsafe(stored.length);
  out.set(stored);
  out[0] = query[0]!;
  out[1] = query[1]!;
  out[2] = stored[2]! | (query[2]! & 0x01);
  for (let i = HEADER; i < nameEnd; i++) out[i] = query[i]!;
  return out;
}
