/**
 * EdgeStorage on lru-cache, bounded in bytes (body, headers and key), with
 * evictions counted and a surrogate-key index kept in step with the cache.
 * Plain JavaScript: runs in Node and in a Worker isolate alike.
 */
import { LRUCache } from "lru-cache";
import type { CacheEntry } from "./policy.ts";
import type { EdgeStorage, StorageStats } from "./storage.ts";

/** Bookkeeping per entry beyond its bytes (object, arrays, timings). */
const ENTRY_OVERHEAD = 256;

export const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;

export function entrySize(entry: CacheEntry): number {
  let size = ENTRY_OVERHEAD + entry.key.length + entry.body.byteLength;
  for (const [k, v] of entry.headers) size += k.length + v.length + 4;
  return size;
}

export class LruStorage implements EdgeStorage {
  private readonly lru: LRUCache<string, CacheEntry>;
  private readonly index = new Map<string, Set<string>>();
  private evictions = 0;

  constructor(maxBytes = DEFAULT_MAX_BYTES) {
    this.lru = new LRUCache<string, CacheEntry>({
      maxSize: maxBytes,
      sizeCalculation: entrySize,
      dispose: (entry, key, reason) => {
        if (reason === "evict") this.evictions++;
        this.unindex(key, entry);
      },
    });
  }

  get(key: string): CacheEntry | undefined {
    return this.lru.get(key);
  }

  set(entry: CacheEntry): boolean {
    this.lru.set(entry.key, entry);
    // lru-cache refuses an entry larger than maxSize without storing it.
    if (this.lru.peek(entry.key) !== entry) return false;
    for (const sk of entry.surrogateKeys) {
      const keys = this.index.get(sk);
      if (keys) keys.add(entry.key);
      else this.index.set(sk, new Set([entry.key]));
    }
    return true;
  }

  delete(key: string): boolean {
    return this.lru.delete(key);
  }

  keysFor(surrogateKey: string): string[] {
    return [...(this.index.get(surrogateKey) ?? [])];
  }

  keys(): string[] {
    return [...this.lru.keys()];
  }

  clear(): void {
    this.lru.clear();
    this.index.clear();
  }

  stats(): StorageStats {
    return { entries: this.lru.size, bytes: this.lru.calculatedSize, evictions: this.evictions };
  }

  private unindex(key: string, entry: CacheEntry): void {
    for (const sk of entry.surrogateKeys) {
      const keys = this.index.get(sk);
      keys?.delete(key);
      if (keys?.size === 0) this.index.delete(sk);
    }
  }
}
