/**
 * ResolverStorage on lru-cache (core/indexed-lru.ts), bounded in bytes
 * (stored answer, key and a per-entry overhead), with evictions counted and
 * entries indexed by their answer's owner names.
 */
import { IndexedLru } from "../core/indexed-lru.ts";
import type { CacheEntry } from "./policy.ts";
import type { ResolverStorage } from "./storage.ts";

/** Rough per-entry memory beyond the answer bytes (objects, key, index). */
const ENTRY_OVERHEAD = 256;

export function entrySize(e: CacheEntry): number {
  return e.answer.wire.length + e.key.length + ENTRY_OVERHEAD;
}

export class LruStorage extends IndexedLru<CacheEntry> implements ResolverStorage {
  constructor(maxBytes: number) {
    super({
      maxSize: maxBytes,
      size: entrySize,
      keyOf: (e) => e.key,
      tagsOf: (e) => e.answer.owners,
    });
  }
}
