/** resolver/storage-lru.ts: bounded in bytes, evictions counted, the owner index in step. */
import { describe, expect, it } from "vitest";
import { answerFromRRset } from "../../resolver/answer.ts";
import { toWire } from "../../resolver/handler.ts";
import { DEFAULT_CACHE, newEntry } from "../../resolver/policy.ts";
import { entrySize, LruStorage } from "../../resolver/storage-lru.ts";

/** An entry for `name` A, stored under `key` (its own key unless given). */
function entry(name: string, data: string, key = `${name}/1`) {
  const answer = answerFromRRset(
    { name, type: "A", ttl: 60, data: [data] },
    toWire(name),
    1,
    DEFAULT_CACHE,
  );
  return newEntry({ key, name, wireName: toWire(name), qtype: 1 }, answer, 1, 0, DEFAULT_CACHE);
}

describe("LruStorage", () => {
  it("indexes entries by owner name, and forgets them on replace and delete", () => {
    const s = new LruStorage(1 << 20);
    const a = entry("a.example.test", "192.0.2.1");
    expect(s.set(a)).toBe(true);
    expect(s.keysFor("a.example.test")).toEqual([a.key]);
    // Replaced by an answer with other owners: the old owner no longer points at it.
    const other = entry("b.example.test", "192.0.2.2", a.key);
    s.set(other);
    expect(s.peek(a.key)).toBe(other);
    expect(s.keysFor("a.example.test")).toEqual([]);
    expect(s.keysFor("b.example.test")).toEqual([a.key]);
    s.delete(a.key);
    expect(s.keysFor("b.example.test")).toEqual([]);
    expect(s.stats()).toMatchObject({ entries: 0, bytes: 0, evictions: 0 });
  });

  it("evicts the least recently used beyond its bytes, counting it and dropping its index", () => {
    const a = entry("a.example.test", "192.0.2.1");
    const b = entry("b.example.test", "192.0.2.2");
    const c = entry("c.example.test", "192.0.2.3");
    const s = new LruStorage(entrySize(a) + entrySize(b));
    s.set(a);
    s.set(b);
    s.get(a.key); // a is now the most recent
    s.set(c);
    expect(s.keys().sort()).toEqual([a.key, c.key].sort());
    expect(s.keysFor("b.example.test")).toEqual([]);
    expect(s.stats()).toMatchObject({ entries: 2, evictions: 1 });
  });

  it("peek leaves recency alone", () => {
    const a = entry("a.example.test", "192.0.2.1");
    const b = entry("b.example.test", "192.0.2.2");
    const s = new LruStorage(entrySize(a) + entrySize(b));
    s.set(a);
    s.set(b);
    s.peek(a.key);
    s.set(entry("c.example.test", "192.0.2.3"));
    expect(s.peek(a.key)).toBeUndefined();
  });

  it("refuses an entry larger than the whole cache", () => {
    const a = entry("a.example.test", "192.0.2.1");
    const s = new LruStorage(entrySize(a) - 1);
    expect(s.set(a)).toBe(false);
    expect(s.keysFor("a.example.test")).toEqual([]);
  });
});
