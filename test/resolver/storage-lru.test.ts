/**
 * resolver/storage-lru.ts: answers in slabs, fields in typed arrays, an
 * open-addressing index and an owner index of postings; bounded in bytes,
 * evictions counted, every index in step with what is stored.
 */
import * as packet from "dns-packet";
import { describe, expect, it } from "vitest";
import { answerFromRRset, type StoredAnswer, storeAnswer } from "../../resolver/answer.ts";
import { toWire } from "../../resolver/handler.ts";
import { type CacheEntry, DEFAULT_CACHE, newEntry } from "../../resolver/policy.ts";
import { parseQuery, type Query } from "../../resolver/query.ts";
import { entrySize, LruStorage } from "../../resolver/storage-lru.ts";
import { renderAnswer, renderStored, type WireOptions } from "../../resolver/wire.ts";
import { makeQuery, SOA_DATA } from "./fake-authority.ts";

const keyOf = (name: string, qtype = 1) => `${toWire(name).toString("latin1")}/${qtype}`;

function entryFor(name: string, qtype: number, answer: StoredAnswer, now = 0): CacheEntry {
  const wireName = toWire(name);
  return newEntry(
    { key: keyOf(name, qtype), name, wireName, qtype },
    answer,
    7,
    now,
    DEFAULT_CACHE,
  );
}

/** An entry for `name` A (`data` a list of addresses), stored at 0. */
function entry(name: string, ...data: string[]): CacheEntry {
  return entryAt(0, name, ...data);
}

/** The same stored at `now`. */
function entryAt(now: number, name: string, ...data: string[]): CacheEntry {
  const answer = answerFromRRset(
    { name, type: "A", ttl: 60, data },
    toWire(name),
    1,
    DEFAULT_CACHE,
  );
  return entryFor(name, 1, answer, now);
}

/** `name` A answered through a CNAME to `target`. */
function aliased(name: string, target: string): CacheEntry {
  const response = packet.encode({
    type: "response",
    id: 0,
    questions: [{ name, type: "A", class: "IN" }],
    answers: [
      { name, type: "CNAME", class: "IN", ttl: 60, data: target },
      { name: target, type: "A", class: "IN", ttl: 30, data: "192.0.2.9" },
    ],
  });
  return entryFor(name, 1, storeAnswer(response, toWire(name), 1, 0, DEFAULT_CACHE));
}

describe("LruStorage", () => {
  it("indexes entries by owner name, and forgets them on replace and delete", () => {
    const s = new LruStorage(1 << 20);
    const a = aliased("a.example.test", "b.example.test");
    expect(s.set(a)).toBe(true);
    expect(s.keysFor("a.example.test")).toEqual([keyOf("a.example.test")]);
    expect(s.keysFor("b.example.test")).toEqual([keyOf("a.example.test")]);
    // Replaced by an answer without the CNAME: its target no longer points at it.
    s.set(entry("a.example.test", "192.0.2.1"));
    expect(s.stats().entries).toBe(1);
    expect(s.keysFor("b.example.test")).toEqual([]);
    expect(s.keysFor("a.example.test")).toEqual([keyOf("a.example.test")]);
    expect(s.peek(keyOf("a.example.test"))?.answer.direct).toBe(true);
    expect(s.delete(keyOf("a.example.test"))).toBe(true);
    expect(s.delete(keyOf("a.example.test"))).toBe(false);
    expect(s.keysFor("a.example.test")).toEqual([]);
    expect(s.stats()).toMatchObject({ entries: 0, bytes: 0, evictions: 0 });
  });

  it("reads a slot's owner names as its answer lists them, direct or through a CNAME", () => {
    const s = new LruStorage(1 << 20);
    const a = aliased("a.example.test", "b.example.test");
    const c = entry("c.example.test", "192.0.2.3");
    s.set(a);
    s.set(c);
    const slotA = s.find(toWire("a.example.test"), 1);
    const slotC = s.find(toWire("c.example.test"), 1);
    expect(s.ownersOf(slotA)).toEqual(["a.example.test", "b.example.test"]);
    expect(s.ownersOf(slotA)).toEqual(s.answerOf(slotA).owners);
    expect(s.ownersOf(slotC)).toEqual(["c.example.test"]);
    expect(s.ownersOf(slotC)).toEqual(s.answerOf(slotC).owners);
    // After a replace, the slot's new answer's.
    s.set(entry("a.example.test", "192.0.2.1"));
    expect(s.ownersOf(s.find(toWire("a.example.test"), 1))).toEqual(["a.example.test"]);
  });

  it("evicts the least recently used beyond its bytes, counting it and dropping its index", () => {
    const a = entry("a.example.test", "192.0.2.1");
    const b = entry("b.example.test", "192.0.2.2");
    const c = entry("c.example.test", "192.0.2.3");
    const s = new LruStorage(entrySize(a) + entrySize(b));
    s.set(a);
    s.set(b);
    s.get(keyOf("a.example.test")); // a is now the most recent
    s.set(c);
    expect(s.keys()).toEqual([keyOf("c.example.test"), keyOf("a.example.test")]);
    expect(s.keysFor("b.example.test")).toEqual([]);
    expect(s.stats()).toMatchObject({ entries: 2, evictions: 1 });
    expect(s.stats().bytes).toBe(entrySize(a) + entrySize(c));
  });

  it("peek and find leave recency alone; touch moves a slot to the front", () => {
    const a = entry("a.example.test", "192.0.2.1");
    const b = entry("b.example.test", "192.0.2.2");
    const s = new LruStorage(entrySize(a) + entrySize(b));
    s.set(a);
    s.set(b);
    s.peek(keyOf("a.example.test"));
    expect(s.find(toWire("a.example.test"), 1)).toBeGreaterThanOrEqual(0);
    s.set(entry("c.example.test", "192.0.2.3"));
    expect(s.peek(keyOf("a.example.test"))).toBeUndefined();
    s.touch(s.find(toWire("b.example.test"), 1));
    s.set(entry("d.example.test", "192.0.2.4"));
    expect(s.keys()).toEqual([keyOf("d.example.test"), keyOf("b.example.test")]);
  });

  it("refuses an entry larger than the whole cache", () => {
    const a = entry("a.example.test", "192.0.2.1");
    const s = new LruStorage(entrySize(a) - 1);
    expect(s.set(a)).toBe(false);
    expect(s.keysFor("a.example.test")).toEqual([]);
    expect(s.stats()).toMatchObject({ entries: 0, bytes: 0 });
  });

  it("gives back what was stored: the answer, times, serial, and a negative answer's flags", () => {
    const s = new LruStorage(1 << 20);
    const nx = packet.encode({
      type: "response",
      id: 0,
      flags: 3,
      questions: [{ name: "nope.example.test", type: "AAAA", class: "IN" }],
      authorities: [{ name: "example.test", type: "SOA", class: "IN", ttl: 300, data: SOA_DATA }],
    });
    const neg = entryFor(
      "nope.example.test",
      28,
      storeAnswer(nx, toWire("nope.example.test"), 28, 0, DEFAULT_CACHE),
      1_000,
    );
    const pos = aliased("www.example.test", "web.example.test");
    s.set(neg);
    s.set(pos);
    for (const e of [neg, pos]) {
      const got = s.peek(keyOf(e.name, e.qtype))!;
      expect(got).toMatchObject({
        name: e.name,
        qtype: e.qtype,
        storedAt: e.storedAt,
        expiresAt: e.expiresAt,
        prefetchAt: e.prefetchAt,
        serial: 7,
        failedAt: undefined,
      });
      expect(got.answer).toEqual(e.answer);
      expect(got.wireName).toEqual(e.wireName);
      expect(s.rcode(s.find(e.wireName, e.qtype))).toBe(e.answer.rcode);
    }
    expect(s.peek(keyOf("nope.example.test", 28))?.answer).toMatchObject({
      negative: true,
      rcode: 3,
    });
  });

  it("writes a view's expiresAt and failedAt through, but never into the entry that replaced it", () => {
    const s = new LruStorage(1 << 20);
    s.set(entry("a.example.test", "192.0.2.1"));
    const view = s.peek(keyOf("a.example.test"))!;
    view.expiresAt = 5;
    view.failedAt = 3;
    const slot = s.find(toWire("a.example.test"), 1);
    expect([s.expiresAt(slot), s.failedAt(slot)]).toEqual([5, 3]);
    expect(s.peek(keyOf("a.example.test"))).toMatchObject({ expiresAt: 5, failedAt: 3 });
    view.failedAt = undefined;
    expect(s.failedAt(slot)).toBeNaN();
    // Replaced (the same slot is reused): the old view keeps its values, writes go nowhere.
    s.set(entry("a.example.test", "192.0.2.2"));
    const fresh = s.find(toWire("a.example.test"), 1);
    view.expiresAt = 1;
    expect(s.expiresAt(fresh)).toBe(60_000);
    expect(view.expiresAt).toBe(1);
  });

  it("keeps the index, the owner index and the bound right through growth, churn and eviction", () => {
    const types = [1, 28, 16, 15];
    const s = new LruStorage(1 << 30);
    const all: CacheEntry[] = [];
    for (let i = 0; i < 1_500; i++) {
      // Answers of different sizes (1 to 8 addresses), so chunks of several classes.
      const data = Array.from({ length: 1 + (i % 8) }, (_, k) => `192.0.2.${k}`);
      // Stored at its own instant, so every slot's times differ (the fields move on growth).
      const e = entryAt(1_000 * i, `h${i}.example.test`, ...data);
      all.push(i % 5 === 0 ? aliased(`c${i}.example.test`, `h${i}.example.test`) : e);
    }
    for (const e of all) expect(s.set(e)).toBe(true);
    expect(s.stats().entries).toBe(all.length);
    const slab = s.slabBytes();
    // Every mismatch collected, one assertion: cheap on a loaded machine.
    const wrong: string[] = [];
    for (const [i, e] of all.entries()) {
      const slot = s.find(e.wireName, 1);
      if (slot < 0 || !s.at(slot).answer.wire.equals(e.answer.wire)) wrong.push(`${e.name} wire`);
      const got = slot < 0 ? undefined : s.at(slot);
      if (
        got?.storedAt !== e.storedAt ||
        got.expiresAt !== e.expiresAt ||
        got.prefetchAt !== e.prefetchAt ||
        got.serial !== e.serial
      ) {
        wrong.push(`${e.name} times`);
      }
      // Other types of the name are not there.
      if (types.slice(1).some((t) => s.find(e.wireName, t) !== -1)) wrong.push(`${e.name} type`);
      const owners = s.keysFor(`h${i}.example.test`);
      const want = keyOf(i % 5 === 0 ? `c${i}.example.test` : `h${i}.example.test`);
      if (owners.length !== 1 || owners[0] !== want) wrong.push(`${e.name} owners ${owners}`);
    }
    expect(wrong).toEqual([]);
    // Delete every other entry, then store them again: the freed chunks are reused.
    for (const [i, e] of all.entries()) if (i % 2) expect(s.delete(keyOf(e.name))).toBe(true);
    for (const [i, e] of all.entries()) {
      if (s.find(e.wireName, 1) >= 0 !== (i % 2 === 0)) wrong.push(`${e.name} find`);
      if (s.keysFor(e.name).length !== (i % 2 ? 0 : 1)) wrong.push(`${e.name} keysFor`);
    }
    expect(wrong).toEqual([]);
    for (const [i, e] of all.entries()) if (i % 2) s.set(e);
    expect(s.slabBytes()).toBe(slab);
    expect(s.keys()).toHaveLength(all.length);
    // Squeeze to a third: the least recently stored go, bytes stay within the bound.
    const bound = Math.floor(s.stats().bytes / 3);
    const small = new LruStorage(bound);
    for (const e of all) small.set(e);
    expect(small.stats().bytes).toBeLessThanOrEqual(bound);
    const kept = small.stats().entries;
    expect(small.stats().evictions).toBe(all.length - kept);
    expect(small.keys()).toEqual(
      all
        .slice(-kept)
        .reverse()
        .map((e) => keyOf(e.name)),
    );
    expect(all.slice(0, -kept).filter((e) => small.find(e.wireName, 1) !== -1)).toEqual([]);
  });

  it("starts small: thousands of caches with one entry each hold kilobytes, not a slab each", () => {
    const before = process.memoryUsage().arrayBuffers;
    const e = entry("a.example.test", "192.0.2.1");
    const many = Array.from({ length: 2_000 }, () => new LruStorage(64 << 20));
    for (const s of many) s.set(e);
    const perCache = (process.memoryUsage().arrayBuffers - before) / many.length;
    // 512 octets of first slab and ~1 KB of typed arrays; a 4 MiB slab each would be 2,000x more.
    expect(perCache).toBeLessThan(4 * 1024);
    expect(many.every((s) => s.find(e.wireName, 1) >= 0)).toBe(true);
  });

  /** A cache's typed arrays by field name (white-box). */
  const arraysOf = (s: LruStorage) =>
    Object.entries(s).filter((e): e is [string, ArrayBufferView] => ArrayBuffer.isView(e[1]));
  /** Whether two views share an octet. */
  const overlap = (x: ArrayBufferView, y: ArrayBufferView) =>
    x.buffer === y.buffer &&
    x.byteOffset < y.byteOffset + y.byteLength &&
    y.byteOffset < x.byteOffset + x.byteLength;

  it("keeps a new cache's slot and posting fields in six arrays of its own, and its free-list heads", () => {
    // White-box: the arrays start as shared zero-length ones (ad22fad), and one
    // left uncarved would drop every write to it without an error. Six, not a
    // column per field: each view is an object the collector marks, and the
    // simulator holds one cache per resolver. Small arrays of many caches
    // are regions of one shared buffer: apart, never overlapping.
    const a = arraysOf(new LruStorage(1 << 16));
    const b = arraysOf(new LruStorage(1 << 16));
    expect(a.map(([name]) => name).sort()).toEqual([
      "f64",
      "freeChunk",
      "ints",
      "pHead",
      "posts",
      "table",
      "u16",
    ]);
    // The heads of a first slab's classes, all empty.
    const heads = a.find(([name]) => name === "freeChunk")![1] as Float64Array;
    expect(heads.length).toBe(32);
    expect(heads.every((h) => h === -1)).toBe(true);
    for (const [name, col] of a) {
      expect(col.byteLength, name).toBeGreaterThan(0);
      for (const [other, col2] of [...a, ...b]) {
        if (col2 !== col) expect(overlap(col, col2), `${name} / ${other}`).toBe(false);
      }
    }
  });

  it("keeps the entries and arrays of thousands of small caches apart, across shared buffers", () => {
    // ~1.5 KB of small arrays a cache once it holds and has freed an answer:
    // 2,000 of them cross several of the 1 MiB buffers they are cut from.
    const caches = Array.from({ length: 2000 }, () => new LruStorage(1 << 16));
    caches.forEach((c, i) => {
      c.set(entry(`c${i}.example.test`, "192.0.2.1"));
      // A second answer under the name frees the first's chunk: the free-list heads are made.
      c.set(entry(`c${i}.example.test`, "192.0.2.2"));
    });
    caches.forEach((c, i) => {
      const slot = c.find(toWire(`c${i}.example.test`), 1);
      expect(slot, `cache ${i}`).toBeGreaterThanOrEqual(0);
      expect(c.answerOf(slot).wire.includes(Buffer.from([192, 0, 2, 2])), `cache ${i}`).toBe(true);
      expect(c.find(toWire(`c${(i + 1) % 2000}.example.test`), 1), `cache ${i}`).toBe(-1);
    });
    // Every array of every cache (slabs included) apart from every other's.
    const views = caches.flatMap((c) => [
      ...arraysOf(c).map(([, v]) => v),
      ...(c as unknown as { slabs: Uint8Array[] }).slabs,
    ]);
    const buffers = new Set(views.map((v) => v.buffer));
    expect(buffers.size).toBeGreaterThan(1);
    expect(buffers.size).toBeLessThan(100);
    for (const buf of buffers) {
      const inBuf = views
        .filter((v) => v.buffer === buf && v.byteLength > 0)
        .sort((x, y) => x.byteOffset - y.byteOffset);
      for (let k = 1; k < inBuf.length; k++) {
        expect(inBuf[k]!.byteOffset).toBeGreaterThanOrEqual(
          inBuf[k - 1]!.byteOffset + inBuf[k - 1]!.byteLength,
        );
      }
    }
  });

  it("reads back unsigned fields past 2^31 as written (a TTL of 2^32 - 1)", () => {
    const s = new LruStorage(1 << 16);
    const e = entry("big.example.test", "192.0.2.1");
    const big = { ...e, answer: { ...e.answer, ttl: 0xffffffff } };
    expect(s.set(big)).toBe(true);
    expect(s.answerOf(s.find(e.wireName, 1)).ttl).toBe(0xffffffff);
  });

  it("keeps two caches' entries apart through growth", () => {
    const a = new LruStorage(1 << 16);
    const b = new LruStorage(1 << 16);
    const names = Array.from({ length: 40 }, (_, i) => `n${i}.example.test`);
    // Past the first growth of slots (8) and postings (8): every array carved again.
    for (const name of names) a.set(entry(name, "192.0.2.1"));
    expect(names.every((n) => a.find(toWire(n), 1) >= 0)).toBe(true);
    expect(names.some((n) => b.find(toWire(n), 1) >= 0)).toBe(false);
    expect(b.stats().entries).toBe(0);
    b.set(entry("other.example.test", "192.0.2.2"));
    expect(a.find(toWire("other.example.test"), 1)).toBe(-1);
    expect(a.stats().entries).toBe(names.length);
  });

  it("renders a stored answer (renderStored) exactly as renderAnswer renders the answer object", () => {
    const opts: WireOptions = { udpPayload: 1232, nsid: Buffer.from("res-1") };
    const s = new LruStorage(1 << 20);
    const e = aliased("www.example.test", "web.example.test");
    s.set(e);
    const slot = s.find(e.wireName, 1);
    const parsed = parseQuery(makeQuery("WWW.example.TEST", "A", { edns: 4096, nsid: true }));
    const q = (parsed as { query: Query }).query;
    const msg = makeQuery("WWW.example.TEST", "A", { edns: 4096, nsid: true });
    for (const [elapsed, staleTtl] of [
      [0, undefined],
      [25, undefined],
      [90, undefined],
      [0, 30],
    ] as const) {
      const want = renderAnswer(e.answer, elapsed, staleTtl, msg, q, "udp", opts);
      expect(renderStored(s, slot, elapsed, staleTtl, msg, q, "udp", opts)).toEqual(want);
    }
    const decoded = packet.decode(renderStored(s, slot, 25, undefined, msg, q, "udp", opts));
    expect(decoded.answers?.map((a) => (a as { ttl?: number }).ttl)).toEqual([35, 5]);
    expect(decoded.questions?.[0]?.name).toBe("WWW.example.TEST");
  });
});
