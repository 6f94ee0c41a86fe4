/**
 * An lru-cache bounded by size, with evictions counted and a tag index kept
 * in step: each entry carries tags (the edge's surrogate keys, the
 * resolver's owner names), and a purge asks which keys carry a tag. The
 * edge's storage adapter is built on it (the resolver's keeps its answers in
 * slabs instead: resolver/storage-lru.ts). Plain JavaScript: runs in Node and
 * in a Worker isolate alike.
 */
import { LRUCache } from "lru-cache";

export interface IndexedLruOptions<E> {
  /** Bound on the sum of `size` over the entries. */
  maxSize: number;
  size: (entry: E) => number;
  keyOf: (entry: E) => string;
  tagsOf: (entry: E) => readonly string[];
}

export interface LruStats {
  entries: number;
  bytes: number;
  evictions: number;
}

export class IndexedLru<E extends {}> {
  private readonly lru: LRUCache<string, E>;
  private readonly index = new Map<string, Set<string>>();
  private evictions = 0;
  /** While `set` replaces the entry under this key by one with the same tags: its index stays. */
  private keepingTagsOf: string | undefined;
  private readonly keyOf: (entry: E) => string;
  private readonly tagsOf: (entry: E) => readonly string[];

  constructor(o: IndexedLruOptions<E>) {
    this.keyOf = o.keyOf;
    this.tagsOf = o.tagsOf;
    this.lru = new LRUCache<string, E>({
      maxSize: o.maxSize,
      sizeCalculation: o.size,
      dispose: (entry, key, reason) => {
        if (reason === "evict") this.evictions++;
        if (reason === "set" && key === this.keepingTagsOf) return;
        this.unindex(key, entry);
      },
    });
  }

  /** The entry, marked as recently used. */
  get(key: string): E | undefined {
    return this.lru.get(key);
  }

  /** The entry, recency untouched. */
  peek(key: string): E | undefined {
    return this.lru.peek(key);
  }

  /** Stores the entry, replacing any under its key; false when it is larger than the whole cache. */
  set(entry: E): boolean {
    const key = this.keyOf(entry);
    const tags = this.tagsOf(entry);
    // A replacement carrying the same tags (a revalidated entry: every 304)
    // leaves the index as it is, rather than emptying and refilling its sets.
    const prior = this.lru.peek(key);
    const same = prior !== undefined && sameTags(this.tagsOf(prior), tags);
    // set() disposes a replaced entry (and its tags) synchronously; lru-cache
    // refuses an entry larger than maxSize without storing it, and drops the
    // entry it would have replaced (disposed with reason "set" too: see below).
    this.keepingTagsOf = same ? key : undefined;
    try {
      this.lru.set(key, entry);
    } finally {
      this.keepingTagsOf = undefined;
    }
    if (this.lru.peek(key) !== entry) {
      // Refused: lru-cache dropped the entry it replaced, as a "set"; its tags go too.
      if (same && this.lru.peek(key) === undefined) this.unindex(key, prior);
      return false;
    }
    if (same) return true;
    for (const tag of tags) {
      const keys = this.index.get(tag);
      if (keys) keys.add(key);
      else this.index.set(tag, new Set([key]));
    }
    return true;
  }

  delete(key: string): boolean {
    return this.lru.delete(key);
  }

  /** Keys of the entries carrying `tag`. */
  keysFor(tag: string): string[] {
    return [...(this.index.get(tag) ?? [])];
  }

  /** Every key held, most recently used first. */
  keys(): string[] {
    return [...this.lru.keys()];
  }

  clear(): void {
    this.lru.clear();
    this.index.clear();
  }

  stats(): LruStats {
    return { entries: this.lru.size, bytes: this.lru.calculatedSize, evictions: this.evictions };
  }

  private unindex(key: string, entry: E): void {
    for (const tag of this.tagsOf(entry)) {
      const keys = this.index.get(tag);
      keys?.delete(key);
      if (keys?.size === 0) this.index.delete(tag);
    }
  }
}

function sameTags(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
