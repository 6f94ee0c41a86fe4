/**
 * ResolverStorage without a JS object per entry, so a million cached RRsets
 * cost little more than their bytes (bench/cache-memory.ts) and a hit walks
 * typed arrays only (bench/resolver-hit-path.ts):
 *
 * - answer bytes live in slabs (4 MiB ArrayBuffers; the first starts at 512 octets and
 *   doubles), each entry in one chunk
 *   of a size class (16-octet steps up to 1 KiB, 256 above): the stored wire
 *   (whose question is the key: storeAnswer writes the lower-cased name
 *   there) followed by its TTL offsets, 16 bits each. Freed chunks go on a
 *   free list per class, linked through their first four octets;
 * - per-entry fields (times, TTL, rcode, flags, LRU links, hash) sit side
 *   by side in one typed array per width (Float64, Int32, Uint16), at the
 *   slot number times that width's field count;
 * - the index from question to slot is open addressing over an Int32Array
 *   (linear probing, backward-shift deletion), keys compared against the
 *   stored question bytes;
 * - the owner-name index (purge by name) is a chained hash of postings in
 *   typed arrays, keyed by a hash of the owner name and confirmed by reading
 *   the owners back from the stored wire.
 *
 * Bounded in bytes like the LRU it replaces: each entry counts its chunk plus
 * ENTRY_OVERHEAD, and the least recently used go first. `CacheEntry` objects
 * exist only as views made on demand (storage.ts).
 */
import { ownersOf, type StoredAnswer } from "./answer.ts";
import { HEADER_LEN, readName } from "./message.ts";
import type { CacheEntry } from "./policy.ts";
import type { LruStats, ResolverStorage } from "./storage.ts";

const SLAB_SHIFT = 22;
const SLAB_SIZE = 1 << SLAB_SHIFT;
const SLAB_MASK = SLAB_SIZE - 1;
/**
 * The first slab's size; it doubles up to SLAB_SIZE before a second one is
 * made. A few entries' worth: the simulator holds one name in each of up
 * to 100,000 caches.
 */
const FIRST_SLAB = 512;
/** Offsets are 32-bit: 1,023 slabs (4 GiB) at most; 0xffffffff ends a free list. */
const MAX_SLABS = 1023;
const END = 0xffffffff;
/** RFC 1035 §4.2.2 / RFC 8484 §6: no DNS message is longer. */
const MAX_WIRE = 65535;

/**
 * Bytes an entry costs beyond its chunk: its slot's typed-array fields
 * (86), its share of the index (8) and its owner postings (~20 each).
 */
export const ENTRY_OVERHEAD = 128;

function chunkClass(size: number): number {
  return size <= 1024 ? (size + 15) >> 4 : 64 + ((size - 1024 + 255) >> 8);
}
function classBytes(c: number): number {
  return c <= 64 ? c << 4 : 1024 + ((c - 64) << 8);
}
const CLASSES = chunkClass(MAX_WIRE + 2 * MAX_WIRE) + 1;

/** What `set` charges for an entry against the bound. */
export function entrySize(e: Pick<CacheEntry, "answer">): number {
  return classBytes(chunkClass(e.answer.wire.length + 2 * e.answer.ttlAt.length)) + ENTRY_OVERHEAD;
}

/** FNV-1a over the name, then the type, then a finaliser so the low bits (the bucket) mix well. */
function keyHash(name: Uint8Array, at: number, len: number, qtype: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < len; i++) h = Math.imul(h ^ name[at + i]!, 0x01000193);
  h = Math.imul(h ^ qtype, 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  return h ^ (h >>> 13);
}

function ownerHash(owner: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < owner.length; i++) h = Math.imul(h ^ owner.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  return h ^ (h >>> 13);
}

type Column = Int32Array | Uint16Array | Float64Array;

/**
 * Arrays cut from one region (`region`: of a buffer shared with other
 * caches while they are small), each a copy of an old one grown to its new
 * length: a cache's slot arrays (and its posting arrays) cost one region,
 * not a buffer each. Every ArrayBuffer has a backing store of its own and an
 * extension the GC tracks, and a simulator holds one cache per resolver.
 * Arrays are taken widest element first from an 8-aligned start, so every
 * view is aligned; `done` checks the region was sized for exactly what was
 * taken.
 */
class Carver {
  private readonly buf: ArrayBuffer;
  private at: number;
  private readonly end: number;

  constructor(bytes: number) {
    [this.buf, this.at] = region(bytes);
    this.end = this.at + bytes;
  }

  take<T extends Column>(old: T, n: number): T {
    const C = old.constructor as new (b: ArrayBuffer, at: number, n: number) => T;
    const col = new C(this.buf, this.at, n);
    col.set(old);
    this.at += n * col.BYTES_PER_ELEMENT;
    return col;
  }

  done(): void {
    if (this.at !== this.end) {
      throw new Error(`arrays ended at ${this.at}, their region at ${this.end}`);
    }
  }
}

/** Shared buffers are this large; regions up to POOLED_MAX octets are cut from them. */
const POOL_BYTES = 1 << 20;
const POOLED_MAX = 4096;
let pool: ArrayBuffer | undefined;
let poolAt = 0;

/**
 * Zeroed room for `bytes` octets, 8-aligned: a region of a buffer shared by
 * many caches when it is small, else a buffer of its own. A cache starts with
 * four small arrays (its slots, its postings, its first slab, the free-list
 * heads), and an ArrayBuffer each is a backing store allocated and zeroed
 * apart, with an extension the collector sweeps at every full collection and
 * external memory that makes V8 collect early: the simulator's 100,000
 * resolvers made 400,000 of them while it built and first filled its
 * caches. A region is never given back or reused (so it is zero when
 * handed out); the shared buffer lives while a view into it does, so it
 * holds at most POOL_BYTES for a few small caches a process has dropped.
 */
function region(bytes: number): [ArrayBuffer, number] {
  if (bytes > POOLED_MAX) return [new ArrayBuffer(bytes), 0];
  const size = (bytes + 7) & ~7;
  if (pool === undefined || poolAt + size > POOL_BYTES) {
    pool = new ArrayBuffer(POOL_BYTES);
    poolAt = 0;
  }
  const at = poolAt;
  poolAt += size;
  return [pool, at];
}

/** A zeroed Uint8Array of `n` octets (`region`). */
function bytesOf(n: number): Uint8Array {
  const [buf, at] = region(n);
  return new Uint8Array(buf, at, n);
}

/**
 * A slot's fields, each width in one typed array with the slot's fields
 * side by side (slot s's field k at s * F64 + k, s * I32 + k, s * U16 + k),
 * not a column per field: a view is an object of ~100 octets the collector
 * marks, and 24 of them were a fifth of a simulated resolver's objects
 * (bench/results/simulate.md). A lookup reads a slot's hash and chunk from
 * one place and its type and name length from another, not four columns.
 * The unsigned 32-bit fields (chunk offsets up to 4 GiB, TTLs, generations)
 * are written as they are (an Int32Array keeps their low 32 bits) and read
 * back with `>>> 0`.
 */
const F_STORED = 0;
const F_EXPIRES = 1;
const F_PREFETCH = 2;
const F_FAILED = 3;
const F_SERIAL = 4;
/** StoredAnswer.staleness (seconds past its TTL on arrival), NaN when none. */
const F_STALENESS = 5;
const F64 = 6;
const I_CHUNK = 0;
const I_TTL = 1;
const I_HASH = 2;
const I_PREV = 3;
const I_NEXT = 4;
const I_GEN = 5;
const I_POST = 6;
const I32 = 7;
const U_WIRE_LEN = 0;
const U_TTL_COUNT = 1;
const U_QTYPE = 2;
const U_NAME_LEN = 3;
/** rcode | INFO_NEGATIVE | INFO_DIRECT. */
const U_INFO = 4;
const U16 = 5;
/** A posting's slot, its owner's hash, the next in its bucket (or free list), the slot's next. */
const P_SLOT = 0;
const P_HASH = 1;
const P_NEXT = 2;
const P_SIB = 3;
const P32 = 4;

/** Bytes per slot of LruStorage's slot fields and its table (two Int32 per slot). */
const SLOT_BYTES = F64 * 8 + I32 * 4 + 2 * 4 + U16 * 2;
/** Bytes per posting of its posting fields and buckets. */
const POSTING_BYTES = P32 * 4 + 4;

/** Offset just past the stored question's name (uncompressed: storeAnswer wrote it). */
function questionNameEnd(wire: Uint8Array): number {
  let at = HEADER_LEN;
  while (at < wire.length && wire[at] !== 0) at += wire[at]! + 1;
  return at + 1;
}

function latin1(slab: Uint8Array, from: number, to: number): string {
  return Buffer.from(slab.buffer, slab.byteOffset + from, to - from).toString("latin1");
}

/**
 * Zero-length arrays every new cache starts from, shared: its constructor
 * carves its own slot and posting arrays, and its free-list heads, at once
 * (growSlots, growPostings, growHeads), and an array
 * made only to be copied from costs two objects (a view and its buffer),
 * which the simulator made for each of its 100,000 resolvers. Never written
 * (a typed array ignores a write past its end).
 */
const NONE_F64 = new Float64Array(0);
const NONE_I32 = new Int32Array(0);
const NONE_U16 = new Uint16Array(0);

const INFO_NEGATIVE = 0x10;
const INFO_DIRECT = 0x20;

export class LruStorage implements ResolverStorage {
  private slabs: Uint8Array[] = [];
  /** Bump pointer in the last slab. */
  private tailAt = 0;
  /**
   * Head of each size class's free list (-1: empty), those of a first
   * slab's classes from the start, grown to the largest class freed so far:
   * all CLASSES of them are 6.6 KB, more than a cache with a few small
   * entries holds in answers.
   */
  private freeChunk: Float64Array<ArrayBuffer> = NONE_F64;

  private cap = 0;
  /** Slots ever handed out; below it, free ones are chained through their I_NEXT field. */
  private used = 0;
  private freeSlot = -1;
  /** Each slot's Float64 fields, F64 per slot (slot s's field k at s * F64 + k). */
  private f64: Float64Array<ArrayBuffer> = NONE_F64;
  /** Each slot's 32-bit integer fields, I32 per slot (unsigned ones read back with >>> 0). */
  private ints: Int32Array<ArrayBuffer> = NONE_I32;
  /** Each slot's 16-bit fields, U16 per slot. */
  private u16: Uint16Array<ArrayBuffer> = NONE_U16;
  private head = -1;
  private tail = -1;

  /** Open addressing: slot + 1, 0 = empty; twice the slot capacity. */
  private table: Int32Array<ArrayBuffer> = NONE_I32;
  private tableMask = 0;

  /** Owner postings: the slot, the owner's hash, the next in its bucket (or free list), the slot's next. */
  private pCap = 0;
  private pUsed = 0;
  private pFree = -1;
  /** Each posting's fields, P32 per posting. */
  private posts: Int32Array<ArrayBuffer> = NONE_I32;
  private pHead: Int32Array<ArrayBuffer> = NONE_I32;
  private pMask = 0;

  private count = 0;
  private bytes = 0;
  private evictions = 0;

  constructor(private readonly maxBytes: number) {
    // Small to start: an empty cache costs ~1.5 KB (the simulator makes thousands).
    this.growSlots(8);
    this.growPostings(8);
    // The first slab now, beside the slot arrays and postings in the shared
    // buffer (`region`), not at the first store, when thousands of other
    // caches have taken the regions in between: a lookup reads the index,
    // the slot's fields and the stored name, and at 50,000 caches each read
    // is a miss unless its neighbour brought the line in.
    this.slabs.push(bytesOf(FIRST_SLAB));
    // And the free-list heads of the classes below FIRST_SLAB >> 4 (chunks up
    // to 496 octets, a first slab's answers; a larger class grows them):
    // every refresh frees the answer it replaces and the next takes its chunk.
    this.growHeads(FIRST_SLAB >> 4);
  }

  // ---- hot path ----

  find(wireName: Uint8Array, qtype: number): number {
    const len = wireName.length;
    const h = keyHash(wireName, 0, len, qtype);
    const { table, ints, u16, slabs } = this;
    for (let i = h & this.tableMask; ; i = (i + 1) & this.tableMask) {
      const t = table[i]!;
      if (t === 0) return -1;
      const r = (t - 1) * I32;
      const u = (t - 1) * U16;
      if (ints[r + I_HASH] !== h || u16[u + U_QTYPE] !== qtype || u16[u + U_NAME_LEN] !== len)
        continue;
      const off = ints[r + I_CHUNK]! >>> 0;
      const slab = slabs[off >>> SLAB_SHIFT]!;
      const at = (off & SLAB_MASK) + HEADER_LEN;
      let j = 0;
      while (j < len && slab[at + j] === wireName[j]) j++;
      if (j === len) return t - 1;
    }
  }

  findInQuery(query: Uint8Array, nameEnd: number, qtype: number): number {
    const len = nameEnd - HEADER_LEN;
    // keyHash over the lower-cased name: length octets (<= 63) are below 'A', only letters change.
    let h = 0x811c9dc5;
    for (let i = HEADER_LEN; i < nameEnd; i++) {
      const b = query[i]!;
      h = Math.imul(h ^ (b >= 0x41 && b <= 0x5a ? b | 0x20 : b), 0x01000193);
    }
    h = Math.imul(h ^ qtype, 0x01000193);
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    const { table, ints, u16, slabs } = this;
    for (let i = h & this.tableMask; ; i = (i + 1) & this.tableMask) {
      const t = table[i]!;
      if (t === 0) return -1;
      const r = (t - 1) * I32;
      const u = (t - 1) * U16;
      if (ints[r + I_HASH] !== h || u16[u + U_QTYPE] !== qtype || u16[u + U_NAME_LEN] !== len)
        continue;
      const off = ints[r + I_CHUNK]! >>> 0;
      const slab = slabs[off >>> SLAB_SHIFT]!;
      const at = (off & SLAB_MASK) + HEADER_LEN;
      let j = 0;
      for (; j < len; j++) {
        const b = query[HEADER_LEN + j]!;
        if (slab[at + j] !== (b >= 0x41 && b <= 0x5a ? b | 0x20 : b)) break;
      }
      if (j === len) return t - 1;
    }
  }

  touch(slot: number): void {
    if (slot === this.head) return;
    this.unlink(slot);
    this.pushFront(slot);
  }

  storedAt(slot: number): number {
    return this.f64[slot * F64 + F_STORED]!;
  }
  expiresAt(slot: number): number {
    return this.f64[slot * F64 + F_EXPIRES]!;
  }
  prefetchAt(slot: number): number {
    return this.f64[slot * F64 + F_PREFETCH]!;
  }
  failedAt(slot: number): number {
    return this.f64[slot * F64 + F_FAILED]!;
  }
  rcode(slot: number): number {
    return this.u16[slot * U16 + U_INFO]! & 0x0f;
  }

  answerLength(slot: number): number {
    return this.u16[slot * U16 + U_WIRE_LEN]!;
  }

  copyAnswer(slot: number, out: Uint8Array, elapsed: number, fixedTtl: number): void {
    const off = this.ints[slot * I32 + I_CHUNK]! >>> 0;
    const slab = this.slabs[off >>> SLAB_SHIFT]!;
    const at = off & SLAB_MASK;
    const len = this.u16[slot * U16 + U_WIRE_LEN]!;
    // One short-lived Uint8Array view for a memcpy: a byte loop costs 3 ns per octet
    // (700 ns for a 200-octet answer), Buffer.copy validates its arguments in JavaScript.
    out.set(slab.subarray(at, at + len));
    const n = this.u16[slot * U16 + U_TTL_COUNT]!;
    for (let k = 0, p = at + len; k < n; k++, p += 2) {
      const o = (slab[p]! << 8) | slab[p + 1]!;
      // The stored wire keeps each TTL as stored (at most max-ttl, so no sign issue).
      const kept = ((out[o]! << 24) | (out[o + 1]! << 16) | (out[o + 2]! << 8) | out[o + 3]!) >>> 0;
      const v = fixedTtl >= 0 ? fixedTtl : kept > elapsed ? kept - elapsed : 0;
      out[o] = v >>> 24;
      out[o + 1] = (v >>> 16) & 0xff;
      out[o + 2] = (v >>> 8) & 0xff;
      out[o + 3] = v & 0xff;
    }
  }

  // ---- entries ----

  at(slot: number): CacheEntry {
    return new EntryView(this, slot, this.ints[slot * I32 + I_GEN]! >>> 0);
  }

  get(key: string): CacheEntry | undefined {
    const slot = this.findKey(key);
    if (slot < 0) return undefined;
    this.touch(slot);
    return this.at(slot);
  }

  peek(key: string): CacheEntry | undefined {
    const slot = this.findKey(key);
    return slot < 0 ? undefined : this.at(slot);
  }

  set(entry: CacheEntry): boolean {
    const a = entry.answer;
    const { wire } = a;
    // The key is the stored question (storeAnswer wrote the lower-cased name there).
    const nameEnd = questionNameEnd(wire);
    const len = nameEnd - HEADER_LEN;
    const qtype = nameEnd + 2 <= wire.length ? (wire[nameEnd]! << 8) | wire[nameEnd + 1]! : -1;
    const old = qtype < 0 ? -1 : this.find(wire.subarray(HEADER_LEN, nameEnd), qtype);
    if (old >= 0) this.remove(old, false);
    const size = entrySize(entry);
    if (qtype < 0 || wire.length > MAX_WIRE || size > this.maxBytes) return false;
    while (this.bytes + size > this.maxBytes && this.tail >= 0) this.remove(this.tail, true);

    const slot = this.allocSlot();
    const cls = chunkClass(wire.length + 2 * a.ttlAt.length);
    const off = this.allocChunk(cls);
    const slab = this.slabs[off >>> SLAB_SHIFT]!;
    let p = off & SLAB_MASK;
    slab.set(wire, p);
    p += wire.length;
    for (const o of a.ttlAt) {
      slab[p++] = o >>> 8;
      slab[p++] = o & 0xff;
    }
    this.ints[slot * I32 + I_CHUNK] = off;
    this.u16[slot * U16 + U_WIRE_LEN] = wire.length;
    this.u16[slot * U16 + U_TTL_COUNT] = a.ttlAt.length;
    this.u16[slot * U16 + U_NAME_LEN] = len;
    this.u16[slot * U16 + U_QTYPE] = qtype;
    this.u16[slot * U16 + U_INFO] =
      a.rcode | (a.negative ? INFO_NEGATIVE : 0) | (a.direct ? INFO_DIRECT : 0);
    this.ints[slot * I32 + I_TTL] = a.ttl;
    this.f64[slot * F64 + F_STORED] = entry.storedAt;
    this.f64[slot * F64 + F_EXPIRES] = entry.expiresAt;
    this.f64[slot * F64 + F_PREFETCH] = entry.prefetchAt;
    this.f64[slot * F64 + F_FAILED] = entry.failedAt ?? Number.NaN;
    this.f64[slot * F64 + F_SERIAL] = entry.serial ?? Number.NaN;
    this.f64[slot * F64 + F_STALENESS] = a.staleness ?? Number.NaN;
    const h = keyHash(slab, (off & SLAB_MASK) + HEADER_LEN, len, qtype);
    this.ints[slot * I32 + I_HASH] = h;
    let i = h & this.tableMask;
    while (this.table[i] !== 0) i = (i + 1) & this.tableMask;
    this.table[i] = slot + 1;
    this.pushFront(slot);
    this.ints[slot * I32 + I_POST] = -1;
    for (const owner of a.owners) this.addPosting(slot, owner);
    this.bytes += size;
    this.count++;
    return true;
  }

  delete(key: string): boolean {
    const slot = this.findKey(key);
    if (slot < 0) return false;
    this.remove(slot, false);
    return true;
  }

  keysFor(owner: string): string[] {
    const h = ownerHash(owner);
    const slots: number[] = [];
    for (let p = this.pHead[h & this.pMask]!; p >= 0; p = this.posts[p * P32 + P_NEXT]!) {
      if (this.posts[p * P32 + P_HASH] !== h) continue;
      const s = this.posts[p * P32 + P_SLOT]!;
      if (slots.includes(s)) continue;
      // Confirm: another owner may share the hash.
      if (
        this.nameOf(s) === owner ||
        ownersOf(this.wireOf(s), this.u16[s * U16 + U_QTYPE]!).owners.includes(owner)
      )
        slots.push(s);
    }
    // Postings are pushed at the bucket's head: oldest first, as they were indexed.
    return slots.reverse().map((s) => this.keyOf(s));
  }

  keys(): string[] {
    const out: string[] = [];
    for (let s = this.head; s >= 0; s = this.ints[s * I32 + I_NEXT]!) out.push(this.keyOf(s));
    return out;
  }

  stats(): LruStats {
    return { entries: this.count, bytes: this.bytes, evictions: this.evictions };
  }

  /** Bytes of slab handed out (chunks in use, free chunks kept for reuse, none returned). */
  slabBytes(): number {
    return this.slabs.length === 0 ? 0 : (this.slabs.length - 1) * SLAB_SIZE + this.tailAt;
  }

  // ---- for EntryView ----

  /** The slot still holds the entry of generation `g`. */
  holds(slot: number, g: number): boolean {
    return this.ints[slot * I32 + I_GEN]! >>> 0 === g && this.u16[slot * U16 + U_WIRE_LEN] !== 0;
  }
  setExpiresAt(slot: number, v: number): void {
    this.f64[slot * F64 + F_EXPIRES] = v;
  }
  setFailedAt(slot: number, v: number | undefined): void {
    this.f64[slot * F64 + F_FAILED] = v ?? Number.NaN;
  }
  serialOf(slot: number): number | undefined {
    const v = this.f64[slot * F64 + F_SERIAL]!;
    return Number.isNaN(v) ? undefined : v;
  }
  qtypeOf(slot: number): number {
    return this.u16[slot * U16 + U_QTYPE]!;
  }

  /** The question name, lower-case presentation form (labels of the stored question). */
  nameOf(slot: number): string {
    const off = this.ints[slot * I32 + I_CHUNK]! >>> 0;
    const slab = this.slabs[off >>> SLAB_SHIFT]!;
    const labels: string[] = [];
    for (let p = (off & SLAB_MASK) + HEADER_LEN; slab[p] !== 0; p += slab[p]! + 1)
      labels.push(latin1(slab, p + 1, p + 1 + slab[p]!));
    return labels.join(".");
  }

  /** The key `keys()` lists: the lower-cased wire name (latin1) and `/QTYPE`, as resolver/query.ts makes it. */
  keyOf(slot: number): string {
    const off = this.ints[slot * I32 + I_CHUNK]! >>> 0;
    const at = (off & SLAB_MASK) + HEADER_LEN;
    const name = latin1(
      this.slabs[off >>> SLAB_SHIFT]!,
      at,
      at + this.u16[slot * U16 + U_NAME_LEN]!,
    );
    return `${name}/${this.u16[slot * U16 + U_QTYPE]}`;
  }

  /** A copy of the stored wire. */
  wireOf(slot: number): Buffer {
    const off = this.ints[slot * I32 + I_CHUNK]! >>> 0;
    const at = off & SLAB_MASK;
    return Buffer.from(
      this.slabs[off >>> SLAB_SHIFT]!.subarray(at, at + this.u16[slot * U16 + U_WIRE_LEN]!),
    );
  }

  answerOf(slot: number): StoredAnswer {
    const wire = this.wireOf(slot);
    const off = this.ints[slot * I32 + I_CHUNK]! >>> 0;
    const slab = this.slabs[off >>> SLAB_SHIFT]!;
    const ttlAt: number[] = [];
    for (
      let k = 0, p = (off & SLAB_MASK) + wire.length;
      k < this.u16[slot * U16 + U_TTL_COUNT]!;
      k++, p += 2
    )
      ttlAt.push((slab[p]! << 8) | slab[p + 1]!);
    const info = this.u16[slot * U16 + U_INFO]!;
    const staleness = this.f64[slot * F64 + F_STALENESS]!;
    const direct = (info & INFO_DIRECT) !== 0;
    const owners = this.ownersIn(wire, slot);
    return {
      wire,
      ttlAt,
      rcode: info & 0x0f,
      negative: (info & INFO_NEGATIVE) !== 0,
      ttl: this.ints[slot * I32 + I_TTL]! >>> 0,
      staleness: Number.isNaN(staleness) ? undefined : staleness,
      owners,
      direct,
    };
  }

  /**
   * `answerOf(slot).owners`, read from the slab in place: a refresh asks for
   * them (its version floor, resolver/cache.ts) and needs nothing else of
   * the answer.
   */
  ownersOf(slot: number): string[] {
    const off = this.ints[slot * I32 + I_CHUNK]! >>> 0;
    const slab = this.slabs[off >>> SLAB_SHIFT]!;
    const len = this.u16[slot * U16 + U_WIRE_LEN]!;
    return this.ownersIn(Buffer.from(slab.buffer, slab.byteOffset + (off & SLAB_MASK), len), slot);
  }

  // ---- internals ----

  /** The owner names of the slot's answer, whose stored wire is `wire`. */
  private ownersIn(wire: Buffer, slot: number): string[] {
    // A direct answer's records are all owned by the question name (answer.ts
    // ownersOf): the name alone, without walking the records.
    return (this.u16[slot * U16 + U_INFO]! & INFO_DIRECT) !== 0
      ? [readName(wire, HEADER_LEN)]
      : ownersOf(wire, this.u16[slot * U16 + U_QTYPE]!).owners;
  }

  private findKey(key: string): number {
    const cut = key.lastIndexOf("/");
    const qtype = Number(key.slice(cut + 1));
    if (cut < 1 || !Number.isInteger(qtype)) return -1;
    return this.find(Buffer.from(key.slice(0, cut), "latin1"), qtype);
  }

  private remove(slot: number, evicted: boolean): void {
    // Index: backward-shift deletion keeps every probe sequence unbroken.
    const mask = this.tableMask;
    let i = this.ints[slot * I32 + I_HASH]! & mask;
    while (this.table[i] !== slot + 1) i = (i + 1) & mask;
    this.table[i] = 0;
    for (let j = (i + 1) & mask; this.table[j] !== 0; j = (j + 1) & mask) {
      const home = this.ints[(this.table[j]! - 1) * I32 + I_HASH]! & mask;
      const between = i <= j ? i < home && home <= j : i < home || home <= j;
      if (between) continue;
      this.table[i] = this.table[j]!;
      this.table[j] = 0;
      i = j;
    }
    this.unlink(slot);
    for (let p = this.ints[slot * I32 + I_POST]!; p >= 0; ) {
      const sib = this.posts[p * P32 + P_SIB]!;
      this.dropPosting(p);
      p = sib;
    }
    const cls = chunkClass(
      this.u16[slot * U16 + U_WIRE_LEN]! + 2 * this.u16[slot * U16 + U_TTL_COUNT]!,
    );
    this.bytes -= classBytes(cls) + ENTRY_OVERHEAD;
    this.freeChunkAt(this.ints[slot * I32 + I_CHUNK]! >>> 0, cls);
    this.u16[slot * U16 + U_WIRE_LEN] = 0;
    this.ints[slot * I32 + I_GEN] = ((this.ints[slot * I32 + I_GEN]! >>> 0) + 1) >>> 0;
    this.ints[slot * I32 + I_NEXT] = this.freeSlot;
    this.freeSlot = slot;
    this.count--;
    if (evicted) this.evictions++;
  }

  private allocSlot(): number {
    if (this.freeSlot >= 0) {
      const s = this.freeSlot;
      this.freeSlot = this.ints[s * I32 + I_NEXT]!;
      return s;
    }
    if (this.used === this.cap) this.growSlots(this.cap * 2);
    return this.used++;
  }

  private growSlots(cap: number): void {
    this.cap = cap;
    const c = new Carver(cap * SLOT_BYTES);
    this.f64 = c.take(this.f64, cap * F64);
    this.ints = c.take(this.ints, cap * I32);
    // At most half full: short probe sequences. Filled again below, not copied.
    this.table = c.take(NONE_I32, cap * 2);
    this.tableMask = cap * 2 - 1;
    this.u16 = c.take(this.u16, cap * U16);
    c.done();
    for (let s = this.head; s >= 0; s = this.ints[s * I32 + I_NEXT]!) {
      let i = this.ints[s * I32 + I_HASH]! & this.tableMask;
      while (this.table[i] !== 0) i = (i + 1) & this.tableMask;
      this.table[i] = s + 1;
    }
  }

  private pushFront(slot: number): void {
    this.ints[slot * I32 + I_PREV] = -1;
    this.ints[slot * I32 + I_NEXT] = this.head;
    if (this.head >= 0) this.ints[this.head * I32 + I_PREV] = slot;
    this.head = slot;
    if (this.tail < 0) this.tail = slot;
  }

  private unlink(slot: number): void {
    const p = this.ints[slot * I32 + I_PREV]!;
    const n = this.ints[slot * I32 + I_NEXT]!;
    if (p >= 0) this.ints[p * I32 + I_NEXT] = n;
    else this.head = n;
    if (n >= 0) this.ints[n * I32 + I_PREV] = p;
    else this.tail = p;
  }

  private allocChunk(cls: number): number {
    const free = cls < this.freeChunk.length ? this.freeChunk[cls]! : -1;
    if (free >= 0) {
      const slab = this.slabs[free >>> SLAB_SHIFT]!;
      const at = free & SLAB_MASK;
      const next =
        (slab[at]! | (slab[at + 1]! << 8) | (slab[at + 2]! << 16) | (slab[at + 3]! << 24)) >>> 0;
      this.freeChunk[cls] = next === END ? -1 : next;
      return free;
    }
    const bytes = classBytes(cls);
    const last = this.slabs.length - 1;
    const need = this.tailAt + bytes;
    if (last < 0 || need > this.slabs[last]!.length) {
      if (last >= 0 && need <= SLAB_SIZE) {
        // The last slab starts small and doubles up to SLAB_SIZE (offsets in it stay valid):
        // a process with thousands of small caches (the simulator) holds no 4 MiB each.
        let size = this.slabs[last]!.length * 2;
        while (size < need) size *= 2;
        const grownSlab = bytesOf(Math.min(size, SLAB_SIZE));
        grownSlab.set(this.slabs[last]!);
        this.slabs[last] = grownSlab;
      } else {
        if (this.slabs.length === MAX_SLABS) throw new RangeError("resolver cache slabs exhausted");
        let size = last < 0 ? FIRST_SLAB : SLAB_SIZE;
        while (size < bytes) size *= 2;
        this.slabs.push(bytesOf(size));
        this.tailAt = 0;
      }
    }
    const off = (this.slabs.length - 1) * SLAB_SIZE + this.tailAt;
    this.tailAt += bytes;
    return off;
  }

  private freeChunkAt(off: number, cls: number): void {
    if (cls >= this.freeChunk.length) {
      this.growHeads(Math.min(CLASSES, Math.max(cls + 1, this.freeChunk.length * 2)));
    }
    const link = this.freeChunk[cls]!;
    const slab = this.slabs[off >>> SLAB_SHIFT]!;
    const at = off & SLAB_MASK;
    const v = link < 0 ? END : link;
    slab[at] = v & 0xff;
    slab[at + 1] = (v >>> 8) & 0xff;
    slab[at + 2] = (v >>> 16) & 0xff;
    slab[at + 3] = v >>> 24;
    this.freeChunk[cls] = off;
  }

  /** The free-list heads for classes below `n`, the new ones empty (-1). */
  private growHeads(n: number): void {
    const [buf, at] = region(n * 8);
    const heads = new Float64Array(buf, at, n);
    heads.fill(-1, this.freeChunk.length).set(this.freeChunk);
    this.freeChunk = heads;
  }

  private addPosting(slot: number, owner: string): void {
    let p = this.pFree;
    if (p >= 0) this.pFree = this.posts[p * P32 + P_NEXT]!;
    else {
      if (this.pUsed === this.pCap) this.growPostings(this.pCap * 2);
      p = this.pUsed++;
    }
    const h = ownerHash(owner);
    const b = h & this.pMask;
    this.posts[p * P32 + P_SLOT] = slot;
    this.posts[p * P32 + P_HASH] = h;
    this.posts[p * P32 + P_NEXT] = this.pHead[b]!;
    this.pHead[b] = p;
    this.posts[p * P32 + P_SIB] = this.ints[slot * I32 + I_POST]!;
    this.ints[slot * I32 + I_POST] = p;
  }

  private dropPosting(p: number): void {
    const b = this.posts[p * P32 + P_HASH]! & this.pMask;
    if (this.pHead[b] === p) this.pHead[b] = this.posts[p * P32 + P_NEXT]!;
    else {
      let q = this.pHead[b]!;
      while (this.posts[q * P32 + P_NEXT] !== p) q = this.posts[q * P32 + P_NEXT]!;
      this.posts[q * P32 + P_NEXT] = this.posts[p * P32 + P_NEXT]!;
    }
    this.posts[p * P32 + P_SLOT] = -1;
    this.posts[p * P32 + P_NEXT] = this.pFree;
    this.pFree = p;
  }

  private growPostings(cap: number): void {
    this.pCap = cap;
    const c = new Carver(cap * POSTING_BYTES);
    this.posts = c.take(this.posts, cap * P32);
    // Rechained into buckets as many as the postings; free postings keep their list.
    this.pHead = c.take(NONE_I32, cap).fill(-1);
    c.done();
    this.pMask = cap - 1;
    for (let p = 0; p < this.pUsed; p++) {
      if (this.posts[p * P32 + P_SLOT]! < 0) continue;
      const b = this.posts[p * P32 + P_HASH]! & this.pMask;
      this.posts[p * P32 + P_NEXT] = this.pHead[b]!;
      this.pHead[b] = p;
    }
  }
}

/**
 * A `CacheEntry` read from a slot. Scalars are read when it is made;
 * `answer` and `wireName` on first use (a copy of the stored wire). The
 * `expiresAt` and `failedAt` setters (soft purges, failed refreshes) write
 * through while the slot still holds this entry; once it was replaced or
 * evicted the view keeps its last values and writes go nowhere.
 */
class EntryView implements CacheEntry {
  readonly key: string;
  readonly name: string;
  readonly qtype: number;
  readonly storedAt: number;
  readonly prefetchAt: number;
  readonly serial: number | undefined;
  #expiresAt: number;
  #failedAt: number | undefined;
  #answer: StoredAnswer | undefined;

  constructor(
    private readonly store: LruStorage,
    private readonly slot: number,
    private readonly gen: number,
  ) {
    this.key = store.keyOf(slot);
    this.name = store.nameOf(slot);
    this.qtype = store.qtypeOf(slot);
    this.storedAt = store.storedAt(slot);
    this.prefetchAt = store.prefetchAt(slot);
    this.serial = store.serialOf(slot);
    this.#expiresAt = store.expiresAt(slot);
    const f = store.failedAt(slot);
    this.#failedAt = Number.isNaN(f) ? undefined : f;
  }

  private get live(): boolean {
    return this.store.holds(this.slot, this.gen);
  }

  get answer(): StoredAnswer {
    if (this.#answer === undefined) {
      if (!this.live)
        throw new Error(`cache entry ${this.name} was dropped before its answer was read`);
      this.#answer = this.store.answerOf(this.slot);
    }
    return this.#answer;
  }

  get wireName(): Buffer {
    const { wire } = this.answer;
    return wire.subarray(HEADER_LEN, questionNameEnd(wire));
  }

  get expiresAt(): number {
    if (this.live) this.#expiresAt = this.store.expiresAt(this.slot);
    return this.#expiresAt;
  }
  set expiresAt(v: number) {
    this.#expiresAt = v;
    if (this.live) this.store.setExpiresAt(this.slot, v);
  }

  get failedAt(): number | undefined {
    if (this.live) {
      const f = this.store.failedAt(this.slot);
      this.#failedAt = Number.isNaN(f) ? undefined : f;
    }
    return this.#failedAt;
  }
  set failedAt(v: number | undefined) {
    this.#failedAt = v;
    if (this.live) this.store.setFailedAt(this.slot, v);
  }
}
