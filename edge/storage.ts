/**
 * What the cache engine needs from storage: a keyed map of entries with a
 * surrogate-key index for purges. Synchronous, so a hit never waits on I/O.
 */
import type { LruStats } from "../core/indexed-lru.ts";
import type { CacheEntry } from "./policy.ts";

export type StorageStats = LruStats;

export interface EdgeStorage {
  get(key: string): CacheEntry | undefined;
  /** Stores the entry; false when it is too large to keep. */
  set(entry: CacheEntry): boolean;
  delete(key: string): boolean;
  /** Cache keys whose entries carry this surrogate key. */
  keysFor(surrogateKey: string): string[];
  /** Every cache key held. */
  keys(): string[];
  clear(): void;
  stats(): StorageStats;
}
