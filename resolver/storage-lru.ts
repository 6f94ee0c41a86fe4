/**
 * ResolverStorage on lru-cache, bounded in bytes (stored answer, key and a
 * per-entry overhead), with evictions counted and the owner-name index kept
 * in step with the cache.
 */
import { LRUCache } from "lru-cache";
import type { CacheEntry } from "./policy.ts";
import type { ResolverStorage, StorageStats } from "./storage.ts";

/** Rough per-entry memory beyond the answer bytes (objects, key, index). */
const ENTRY_OVERHEAD = 256;

export function entrySize(e: CacheEntry): number {
  return e.answer.wire.length + e.key.length + ENTRY_OVERHEAD;
}

export class LruStorage implements ResolverStorage {
  private readonly lru: LRUCache<string, CacheEntry>;
  /** Owner name -> keys of the entries whose answer depends on it (purge by name). */
  private readonly byOwner = new Map<string, Set<string>>();
  private evictions = 0;

  constructor(maxBytes: number) {
    this.lru = new LRUCache<string, CacheEntry>({
      maxSize: maxBytes,
      sizeCalculation: entrySize,
      dispose: (e, _key, reason) => {
        this.unindex(e);
        if (reason === "evict") this.evictions++;
      },
    });
  }

  get(key: string): CacheEntry | undefined {
    return this.lru.get(key);
  }

  peek(key: string): CacheEntry | undefined {
    return this.lru.peek(key);
  }

  set(e: CacheEntry): boolean {
    this.lru.set(e.key, e);
    // set() disposed any previous entry (and its index) synchronously; lru-cache
    // refuses an entry larger than maxSize without storing it.
    if (this.lru.peek(e.key) !== e) return false;
    for (const owner of e.answer.owners) {
      const keys = this.byOwner.get(owner);
      if (keys) keys.add(e.key);
      else this.byOwner.set(owner, new Set([e.key]));
    }
    return true;
  }

  delete(key: string): boolean {
    return this.lru.delete(key);
  }

  keysFor(owner: string): string[] {
    return [...(this.byOwner.get(owner) ?? [])];
  }

  keys(): string[] {
    return [...this.lru.keys()];
  }

  stats(): StorageStats {
    return { entries: this.lru.size, bytes: this.lru.calculatedSize, evictions: this.evictions };
  }

  private unindex(e: CacheEntry): void {
    for (const owner of e.answer.owners) {
      const keys = this.byOwner.get(owner);
      keys?.delete(e.key);
      if (keys?.size === 0) this.byOwner.delete(owner);
    }
  }
}
