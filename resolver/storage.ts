/**
 * What the resolver's cache engine needs from storage: a map from question
 * (wire name, QTYPE) to stored answers with an owner-name index for purges
 * (every answer that has a name among its owners, so a purge of a CNAME's
 * target reaches the alias too). Synchronous, so a hit never waits on I/O.
 * The edge's is `edge/storage.ts`.
 *
 * Two ways in. The hot path works on slot numbers: `find` the question's
 * slot, read its times, `touch` it, and render it through `AnswerStore`
 * (resolver/wire.ts) without a JS object per entry. Everything else (fills,
 * purges, the admin listing) works on `CacheEntry` views: `at(slot)` and
 * `peek(key)` build one on demand, and its `expiresAt`/`failedAt` setters
 * write through to the slot while it still holds that entry.
 */
import type { LruStats } from "../core/indexed-lru.ts";
import type { StoredAnswer } from "./answer.ts";
import type { CacheEntry } from "./policy.ts";
import type { AnswerStore } from "./wire.ts";

export type { LruStats };

export interface ResolverStorage extends AnswerStore {
  /** The slot holding the answer to (lower-cased wire name, QTYPE), or -1. Recency untouched. */
  find(wireName: Uint8Array, qtype: number): number;
  /** `find` for the question of a query, `query[12..nameEnd)`, compared ASCII case-insensitively. */
  findInQuery(query: Uint8Array, nameEnd: number, qtype: number): number;
  /** Marks the slot most recently used. */
  touch(slot: number): void;
  /** Epoch ms the slot's entry was stored; when it stops being fresh; when prefetch starts. */
  storedAt(slot: number): number;
  expiresAt(slot: number): number;
  prefetchAt(slot: number): number;
  /** Epoch ms of the last failed refresh, NaN when none. */
  failedAt(slot: number): number;
  rcode(slot: number): number;
  /** A view of the slot's entry (see above). */
  at(slot: number): CacheEntry;
  /** The slot's answer, as `at(slot).answer` reads it, without the view (a fresh hit's). */
  answerOf(slot: number): StoredAnswer;
  /** `answerOf(slot).owners`, without the rest of the answer. */
  ownersOf(slot: number): string[];

  /** The entry under a key of `keys()`/`keysFor()`, marked as recently used. */
  get(key: string): CacheEntry | undefined;
  /** The entry, recency untouched (purges and bookkeeping). */
  peek(key: string): CacheEntry | undefined;
  /**
   * Stores the entry under its question (`wireName`, `qtype`; `entry.key` is
   * not read), replacing any there; false when it is too large to keep.
   */
  set(entry: CacheEntry): boolean;
  delete(key: string): boolean;
  /** Keys of the entries whose answer has `owner` among its owner names. */
  keysFor(owner: string): string[];
  /** Every key held, most recently used first. */
  keys(): string[];
  stats(): LruStats;
}
