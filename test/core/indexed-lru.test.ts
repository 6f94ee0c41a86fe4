/** core/indexed-lru.ts: the LRU both cache tiers store in, with its tag index. */
import { describe, expect, it } from "vitest";
import { IndexedLru } from "../../core/indexed-lru.ts";

interface Item {
  key: string;
  tags: string[];
  size: number;
}

const lru = (maxSize: number) =>
  new IndexedLru<Item>({
    maxSize,
    size: (i) => i.size,
    keyOf: (i) => i.key,
    tagsOf: (i) => i.tags,
  });

describe("IndexedLru", () => {
  it("finds entries by tag, most recently used first among keys", () => {
    const c = lru(100);
    c.set({ key: "a", tags: ["t1", "t2"], size: 10 });
    c.set({ key: "b", tags: ["t2"], size: 10 });
    expect(c.keysFor("t1")).toEqual(["a"]);
    expect(c.keysFor("t2").sort()).toEqual(["a", "b"]);
    expect(c.keys()).toEqual(["b", "a"]);
    expect(c.stats()).toEqual({ entries: 2, bytes: 20, evictions: 0 });
  });

  it("keeps the index through replacements with the same tags, other tags, and one too large", () => {
    const c = lru(100);
    c.set({ key: "a", tags: ["t", "u"], size: 10 });
    c.set({ key: "b", tags: ["t"], size: 10 });
    // A revalidated entry: same key, same tags.
    c.set({ key: "a", tags: ["t", "u"], size: 12 });
    expect(c.keysFor("t").sort()).toEqual(["a", "b"]);
    expect(c.keysFor("u")).toEqual(["a"]);
    expect(c.stats()).toEqual({ entries: 2, bytes: 22, evictions: 0 });
    // Other tags: the old ones go.
    c.set({ key: "a", tags: ["v"], size: 10 });
    expect(c.keysFor("t")).toEqual(["b"]);
    expect(c.keysFor("u")).toEqual([]);
    expect(c.keysFor("v")).toEqual(["a"]);
    // Too large for the cache, same tags: refused, and the entry it replaced is gone with its tags.
    expect(c.set({ key: "b", tags: ["t"], size: 1_000 })).toBe(false);
    expect(c.peek("b")).toBeUndefined();
    expect(c.keysFor("t")).toEqual([]);
    // Deleting still drops the tags of an entry whose tags were kept.
    c.set({ key: "a", tags: ["v"], size: 10 });
    c.delete("a");
    expect(c.keysFor("v")).toEqual([]);
  });

  it("counts evictions by size and keeps the index in step", () => {
    const c = lru(25);
    c.set({ key: "a", tags: ["t"], size: 10 });
    c.set({ key: "b", tags: ["t"], size: 10 });
    c.set({ key: "c", tags: ["u"], size: 10 });
    expect(c.keysFor("t")).toEqual(["b"]);
    expect(c.stats()).toEqual({ entries: 2, bytes: 20, evictions: 1 });
  });

  it("clear drops entries and index, and is no eviction", () => {
    const c = lru(100);
    c.set({ key: "a", tags: ["t"], size: 10 });
    c.clear();
    expect(c.keysFor("t")).toEqual([]);
    expect(c.stats()).toEqual({ entries: 0, bytes: 0, evictions: 0 });
  });
});
