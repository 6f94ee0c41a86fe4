/**
 * What the resolver's cache engine needs from storage: a keyed map of entries
 * with an owner-name index for purges (every answer that has a name among its
 * owners, so a purge of a CNAME's target reaches the alias too). Synchronous,
 * so a hit never waits on I/O. The edge's is `edge/storage.ts`.
 */
import type { LruStats } from "../core/indexed-lru.ts";
import type { CacheEntry } from "./policy.ts";

export interface ResolverStorage {
  /** The entry, marked as recently used. */
  get(key: string): CacheEntry | undefined;
  /** The entry, recency untouched (purges and bookkeeping). */
  peek(key: string): CacheEntry | undefined;
  /** Stores the entry, replacing any under its key; false when it is too large to keep. */
  set(entry: CacheEntry): boolean;
  delete(key: string): boolean;
  /** Keys of the entries whose answer has `owner` among its owner names. */
  keysFor(owner: string): string[];
  /** Every key held. */
  keys(): string[];
  stats(): LruStats;
}
