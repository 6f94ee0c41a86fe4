/**
 * EdgeStorage on lru-cache (core/indexed-lru.ts, the resolver's storage too),
 * bounded in bytes (body, headers and key), with evictions counted and
 * entries indexed by their surrogate keys. Plain JavaScript: runs in Node and
 * in a Worker isolate alike.
 */
import { IndexedLru } from "../core/indexed-lru.ts";
import type { CacheEntry } from "./policy.ts";
import type { EdgeStorage } from "./storage.ts";

/** Bookkeeping per entry beyond its bytes (object, arrays, timings). */
const ENTRY_OVERHEAD = 256;

export const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;

export function entrySize(entry: CacheEntry): number {
  let size = ENTRY_OVERHEAD + entry.key.length + entry.body.byteLength;
  for (const [k, v] of entry.headers) size += k.length + v.length + 4;
  return size;
}

export class LruStorage extends IndexedLru<CacheEntry> implements EdgeStorage {
  constructor(maxBytes = DEFAULT_MAX_BYTES) {
    super({
      maxSize: maxBytes,
      size: entrySize,
      keyOf: (e) => e.key,
      tagsOf: (e) => e.surrogateKeys,
    });
  }
}
