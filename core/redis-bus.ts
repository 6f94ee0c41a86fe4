/**
 * The purge bus on Redis Streams (Redis >= 7.0), with ioredis.
 *
 * - publish: one script (atomic) runs `XADD <stream> MAXLEN ~ <maxLen> * n <n>
 *   event <json>`, where n is the entry's ordinal (the stream's entries-added
 *   counter). The entry id is the position.
 * - each subscriber has its own connection and reads from its own last id with
 *   `XREAD COUNT <batch> BLOCK <ms> STREAMS <stream> <id>`. Consecutive entries
 *   must have consecutive ordinals: a gap means entries were trimmed (or
 *   deleted) before this node read them, so it resyncs. That costs nothing
 *   per event and is exact.
 * - when the ordinal at its position is unknown (at subscribe, after a
 *   reconnect), it reads once with a MULTI of XREAD and `XINFO STREAM`, so the
 *   entries and the stream's bounds come from one instant, and judges its
 *   position with `lostSince`.
 * - after a disconnect ioredis reconnects and the subscriber reads again from
 *   its last id, so nothing is skipped.
 * - positions: each node's acked id is kept under `HSET <positionsKey> <node>
 *   <id>`, so a restarted node resumes where it stopped.
 * - Redis Cluster: a `redis+cluster://h1:p1,h2:p2` URL (`rediss+cluster://`
 *   for TLS), or several `redis://` URLs joined by commas, are seed nodes of
 *   one cluster (ioredis `Cluster`). The stream and the positions then
 *   default to `{propagate}:purge` and `{propagate}:positions`: the hash tag
 *   puts both in one slot, so the publish script, the MULTI of XREAD and
 *   XINFO, and the position writes each go to one primary. ioredis follows
 *   MOVED and ASK; when that primary dies, reads and publishes fail until a
 *   replica is promoted (cluster-node-timeout), reads retry with backoff and
 *   the cluster client refreshes its slot map. Replication is asynchronous,
 *   so an entry the old primary took but had not yet replicated would be lost
 *   in the failover, and the promoted replica would give the next entry the
 *   same ordinal (no gap to see): so publish resolves only once a replica
 *   holds the entry (WAIT), else it fails and the outbox publishes again.
 * - Redis Sentinel (a primary and its replicas, no cluster): a
 *   `redis+sentinel://[user:pass@]s1:p1,s2:p2/NAME` URL (`rediss+sentinel://`
 *   for TLS to the data nodes) names the sentinels and the monitored master
 *   NAME. ioredis asks a sentinel for NAME's primary at every (re)connect and
 *   checks the node it reaches says `role:master` (else it asks again); a
 *   write answered READONLY (a primary demoted by a graceful failover)
 *   reconnects the same way. Reads from a demoted primary still see every
 *   entry: it replicates from the new one. When the
 *   primary dies, the sentinels promote a replica (`REPLICAOF NO ONE`); reads
 *   and publishes retry with backoff until then; a publish resolves once a
 *   replica holds the entry, as on a cluster.
 *   The credentials are the data nodes'; the sentinels are asked without.
 */
import { Cluster, type ClusterNode, Redis, type RedisOptions } from "ioredis";
import {
  BEGINNING,
  DeliveryPump,
  decodePurgeEvent,
  type PurgeBus,
  type PurgeHandler,
  type SubscribeOptions,
  type Subscription,
  type SubscriptionStats,
  TAIL,
} from "./bus.ts";
import { type Clock, RealClock, type TimerId } from "./clock.ts";
import type { PurgeEvent } from "./purge.ts";

export interface RedisBusOptions {
  /**
   * redis://[user:pass@]host:port[/db], or rediss:// for TLS. A cluster:
   * redis+cluster://[user:pass@]h1:p1,h2:p2 (rediss+cluster:// for TLS), or
   * several redis:// URLs joined by commas (clusterSeeds).
   */
  url: string;
  /** Extra ioredis options (TLS certificates, timeouts...). */
  redis?: RedisOptions;
  clock?: Clock;
  /** Default "propagate:purge"; on a cluster "{propagate}:purge" (hash-tagged). */
  stream?: string;
  /** Entries the stream keeps. Default 100,000. */
  maxLen?: number;
  /** Trim to exactly maxLen (`MAXLEN n`) instead of `MAXLEN ~ n` (cheaper; whole nodes). */
  exactTrim?: boolean;
  /**
   * Hash of node id -> acked id; false keeps positions in memory only.
   * Default "propagate:positions"; on a cluster "{propagate}:positions" (the stream's slot).
   */
  positionsKey?: string | false;
  /**
   * A node's acked id is written at most this often (and on close), so 100
   * nodes do not add 100 writes per event; a node that crashes may get up to
   * this much again on restart. Default 1000 ms.
   */
  positionSaveMs?: number;
  /**
   * How long one XREAD BLOCK waits before reading again. Default 5000 ms; on a
   * cluster 1000 ms: a reader blocked at a primary whose slot is migrated
   * away is not woken by the move (Redis 7.0), it notices at its next read.
   */
  blockMs?: number;
  /** Entries per read. Default 100. */
  batch?: number;
  /** Connection trouble and undecodable entries. Default console.warn. */
  log?: (message: string) => void;
}

/**
 * XADD with the entry's ordinal: entries-added + 1, read in the same atomic
 * script, so a reader can tell a gap (a trimmed entry) from the next entry.
 */
const PUBLISH_SCRIPT = `
local n = 1
local info = redis.pcall("XINFO", "STREAM", KEYS[1])
if info.err == nil then
  for i = 1, #info, 2 do
    if info[i] == "entries-added" then n = info[i + 1] + 1 end
  end
end
return redis.call("XADD", KEYS[1], "MAXLEN", ARGV[1], ARGV[2], "*", "n", n, "event", ARGV[3])
`;

/** How long a publish behind Sentinel or on a cluster waits for a replica to hold the entry. */
const REPLICA_WAIT_MS = 1000;

/** Bound on events read but not yet handled, per subscriber. */
const HIGH_WATER = 1000;

/** A connection to one Redis or to a cluster: the commands used here are the same. */
type Conn = Redis | Cluster;

/** A cluster's seed nodes and credentials, from the bus URL. */
export interface ClusterSeeds {
  nodes: ClusterNode[];
  username?: string;
  password?: string;
  tls: boolean;
}

/**
 * The seeds when `url` names a cluster: `redis+cluster://[user:pass@]h1:p1,h2:p2`
 * (`rediss+cluster://` for TLS), or `redis://h1:p1,redis://h2:p2` (credentials and
 * TLS from the first); undefined for a single node. Any one reachable seed is
 * enough: the client learns the rest from CLUSTER SLOTS.
 */
export function clusterSeeds(url: string): ClusterSeeds | undefined {
  const m = /^(rediss?)\+cluster:\/\/(?:([^@/]*)@)?([^/?#]+)\/?$/.exec(url);
  if (m) {
    // user:pass, where only the first ":" separates (a password may hold one).
    const cred = m[2] ?? "";
    const colon = cred.indexOf(":");
    const [user, pass] =
      colon < 0 ? [cred, undefined] : [cred.slice(0, colon), cred.slice(colon + 1)];
    return {
      nodes: m[3]!.split(",").map((h) => hostPort(h, url)),
      ...(user && { username: decodeURIComponent(user) }),
      ...(pass !== undefined && { password: decodeURIComponent(pass) }),
      tls: m[1] === "rediss",
    };
  }
  if (!url.includes(",")) return undefined;
  const urls = url.split(",").map((u) => {
    try {
      return new URL(u.trim());
    } catch {
      throw new Error(`bus URL "${u}" is not a URL: give redis://host:port,redis://host:port`);
    }
  });
  const first = urls[0]!;
  return {
    nodes: urls.map((u) => hostPort(u.host, url)),
    ...(first.username && { username: decodeURIComponent(first.username) }),
    ...(first.password && { password: decodeURIComponent(first.password) }),
    tls: first.protocol === "rediss:",
  };
}

/** The sentinels and master name of a `redis+sentinel://` URL. */
export interface SentinelTarget {
  sentinels: { host: string; port: number }[];
  name: string;
  username?: string;
  password?: string;
  tls: boolean;
}

/**
 * The target when `url` is `redis+sentinel://[user:pass@]s1:p1,s2:p2/NAME`
 * (`rediss+sentinel://` for TLS), undefined for any other URL.
 */
export function sentinelTarget(url: string): SentinelTarget | undefined {
  const m = /^(rediss?)\+sentinel:\/\/(?:([^@/]*)@)?([^/?#]+)\/([^/?#]+)$/.exec(url);
  if (!m) {
    if (/^rediss?\+sentinel:/.test(url))
      throw new Error(`bus URL "${url}" is not redis+sentinel://HOST:PORT[,HOST:PORT]/MASTER-NAME`);
    return undefined;
  }
  const cred = m[2] ?? "";
  const colon = cred.indexOf(":");
  const [user, pass] =
    colon < 0 ? [cred, undefined] : [cred.slice(0, colon), cred.slice(colon + 1)];
  return {
    sentinels: m[3]!.split(",").map((h) => hostPort(h, url)),
    name: decodeURIComponent(m[4]!),
    ...(user && { username: decodeURIComponent(user) }),
    ...(pass !== undefined && { password: decodeURIComponent(pass) }),
    tls: m[1] === "rediss",
  };
}

function hostPort(hp: string, url: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(hp.trim());
  if (!m) throw new Error(`cluster seed "${hp}" in "${url}" is not host:port`);
  return { host: m[1]!.replace(/^\[|\]$/g, ""), port: Number(m[2]) };
}

export class RedisBus implements PurgeBus {
  readonly stream: string;
  private readonly o: Required<Omit<RedisBusOptions, "redis" | "positionsKey">> & {
    redis: RedisOptions;
    positionsKey: string | false;
  };
  private readonly cmd: Conn;
  private readonly seeds: ClusterSeeds | undefined;
  private readonly sentinel: SentinelTarget | undefined;
  private readonly subs = new Set<RedisSubscription>();
  private closed = false;

  constructor(opts: RedisBusOptions) {
    const scheme = /^(rediss?\+[a-z]+):/.exec(opts.url)?.[1];
    if (scheme && !/^rediss?\+(cluster|sentinel)$/.test(scheme)) {
      throw new Error(
        `bus URL scheme "${scheme}:" is unknown; use redis+cluster: or redis+sentinel:`,
      );
    }
    this.sentinel = sentinelTarget(opts.url);
    this.seeds = this.sentinel ? undefined : clusterSeeds(opts.url);
    // One hash tag for both keys: one slot, one primary (see the header).
    const prefix = this.seeds ? "{propagate}" : "propagate";
    this.o = {
      clock: new RealClock(),
      stream: `${prefix}:purge`,
      maxLen: 100_000,
      exactTrim: false,
      positionsKey: `${prefix}:positions`,
      positionSaveMs: 1000,
      blockMs: this.seeds ? 1000 : 5000,
      batch: 100,
      log: (m) => console.warn(m),
      redis: {},
      ...opts,
    };
    this.stream = this.o.stream;
    // Publishes fail after ioredis's retries (the caller reports it); reads wait for Redis.
    this.cmd = this.connect("propagate-bus", {});
  }

  async publish(event: PurgeEvent): Promise<string> {
    if (this.closed) throw new Error("RedisBus is closed; publish on an open bus");
    const trim = this.o.exactTrim ? "=" : "~";
    const reply = await this.cmd.call(
      "EVAL",
      PUBLISH_SCRIPT,
      "1",
      this.stream,
      trim,
      String(this.o.maxLen),
      JSON.stringify(event),
    );
    if (typeof reply !== "string") {
      throw new Error(`XADD on ${this.stream} answered ${JSON.stringify(reply)}, not an entry id`);
    }
    if (this.sentinel || this.seeds) await this.confirmReplicated(reply);
    return reply;
  }

  /**
   * Behind Sentinel or on a cluster, an entry the primary took but had not
   * yet replicated dies with it, and the promoted replica gives the next entry
   * the same ordinal: a subscriber that had not read it sees no gap, and the
   * change is silently missed (found by test/faults/redis-failover.test.ts for
   * Sentinel, test/e2e/cluster.test.ts for a cluster). So a publish waits
   * (WAIT, https://redis.io/commands/wait) until a replica holds the entry,
   * then checks the entry is on the primary it talks to now (the promoted one
   * after a failover: ioredis resends ROLE, WAIT and XRANGE there). Otherwise
   * it fails and the caller (the origin's outbox) publishes again: a duplicate
   * at worst, which receivers ignore. A primary with no replica attached is as
   * durable as a single Redis, and is accepted.
   */
  private async confirmReplicated(id: string): Promise<void> {
    // Replicas attached now; none (the promoted primary before its old one returns):
    // nothing to wait for, WAIT would only time out.
    const role = await this.onStreamPrimary("ROLE");
    const replicas = Array.isArray(role) && Array.isArray(role[2]) ? role[2].length : 0;
    const acked =
      replicas > 0 ? Number(await this.onStreamPrimary("WAIT", "1", String(REPLICA_WAIT_MS))) : 0;
    const found = await this.cmd.call("XRANGE", this.stream, id, id);
    if (!Array.isArray(found) || found.length === 0) {
      throw new Error(`entry ${id} of ${this.stream} was lost in a failover; publish it again`);
    }
    if (replicas > 0 && acked === 0) {
      throw new Error(
        `entry ${id} of ${this.stream} reached none of ${replicas} replicas in ${REPLICA_WAIT_MS} ms; publish it again`,
      );
    }
  }

  /**
   * A keyless command (ROLE, WAIT) on the primary holding the stream. A cluster
   * client sends a keyless command to any node; in a pipeline behind a command
   * on the stream's key it goes where that key lives (ioredis routes a
   * pipeline by its keys' slot, following MOVED/ASK). One Redis or Sentinel:
   * the one primary, the same either way.
   */
  private async onStreamPrimary(command: string, ...args: string[]): Promise<unknown> {
    const replies = await this.cmd
      .pipeline()
      .exists(this.stream)
      .call(command, ...args)
      .exec();
    const [err, value] = replies?.[1] ?? [new Error(`${command}: no reply from Redis`), undefined];
    if (err) throw err;
    return value;
  }

  async subscribe(
    nodeId: string,
    handler: PurgeHandler,
    opts: SubscribeOptions = {},
  ): Promise<Subscription> {
    if (this.closed) throw new Error("RedisBus is closed; subscribe on an open bus");
    for (const s of this.subs) {
      if (s.nodeId === nodeId)
        throw new Error(`node "${nodeId}" is already subscribed; close that subscription first`);
    }
    const key = this.o.positionsKey;
    const stored = opts.from === undefined && key ? await this.cmd.hget(key, nodeId) : null;
    const from = opts.from ?? stored ?? TAIL;
    const start = from === TAIL ? await this.tail() : parseStreamId(from);
    // Remembered at once, so a node that stops before any event resumes here, not at a later tail.
    if (key) await this.cmd.hset(key, nodeId, start);
    const conn = this.connect(`propagate-${nodeId}`, { maxRetriesPerRequest: null });
    const sub = new RedisSubscription(this.context(), conn, nodeId, start, handler, opts);
    this.subs.add(sub);
    return sub;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.subs].map((s) => s.close()));
    if (this.cmd.status === "ready") await this.cmd.quit();
    else this.cmd.disconnect();
  }

  /** What a subscription needs from its bus. */
  private context(): SubscriberContext {
    const { stream, batch, blockMs, clock, log, positionsKey, positionSaveMs } = this.o;
    return {
      stream,
      batch,
      blockMs,
      positionSaveMs,
      clock,
      log,
      forget: (sub) => this.subs.delete(sub),
      // A failed or skipped write is logged; the node's next ack writes again, and
      // a stale stored position only means a few events are delivered twice.
      savePosition: async (nodeId, id) => {
        if (!positionsKey) return;
        if (this.cmd.status !== "ready") {
          log(`purge bus: position ${id} of ${nodeId} not saved: Redis is not connected`);
          return;
        }
        await this.cmd.hset(positionsKey, nodeId, id).catch((err: Error) => {
          log(`purge bus: saving the position of ${nodeId} (${id}) failed: ${err.message}`);
        });
      },
    };
  }

  /** The stream's last id ("0-0" while it does not exist): where TAIL starts. */
  private async tail(): Promise<string> {
    try {
      return parseStreamInfo(await this.cmd.call("XINFO", "STREAM", this.stream)).lastGeneratedId;
    } catch (err) {
      if (err instanceof Error && /no such key/i.test(err.message)) return "0-0";
      throw err;
    }
  }

  /** One connection, whose trouble is logged once per outage, not once per retry. */
  private connect(name: string, extra: RedisOptions): Conn {
    const seeds = this.seeds;
    const options: RedisOptions = { connectionName: name, ...extra, ...this.o.redis };
    const conn: Conn = seeds
      ? new Cluster(seeds.nodes, {
          redisOptions: {
            ...(seeds.username && { username: seeds.username }),
            ...(seeds.password && { password: seeds.password }),
            ...(seeds.tls && { tls: {} }),
            ...options,
          },
          // A failover takes cluster-node-timeout and more: retry redirected and
          // CLUSTERDOWN commands on a short delay rather than failing them.
          retryDelayOnFailover: 100,
          retryDelayOnClusterDown: 100,
          retryDelayOnTryAgain: 100,
          // Commands for a dead primary wait in its connection's queue until the slot
          // map drops it: refresh each second (one CLUSTER SLOTS), not every 5 s.
          slotsRefreshInterval: 1000,
          // With TLS, connect to the names the cluster announces, not their addresses,
          // so certificates (issued for names: managed clusters) verify.
          ...(seeds.tls && { dnsLookup: (address, done) => done(null, address) }),
        })
      : this.sentinel
        ? new Redis(sentinelOptions(this.sentinel, options))
        : new Redis(this.o.url, options);
    let down = false;
    conn.on("error", (err: Error) => {
      if (down) return;
      down = true;
      this.o.log(`purge bus: ${name}: Redis connection error: ${err.message}; reconnecting`);
    });
    conn.on("ready", () => {
      if (down) this.o.log(`purge bus: ${name}: reconnected to Redis`);
      down = false;
    });
    return conn;
  }
}

/** ioredis options for a Sentinel-monitored primary (see the header). */
function sentinelOptions(t: SentinelTarget, options: RedisOptions): RedisOptions {
  return {
    sentinels: t.sentinels,
    name: t.name,
    role: "master",
    // A primary demoted by a graceful failover answers writes READONLY: reconnect
    // (asking a sentinel again) and resend. ioredis's failoverDetector is not used: with
    // it, the connections closed at +switch-master and never came back (the test).
    reconnectOnError: (err) => (/^READONLY/.test(err.message) ? 2 : false),
    // While no sentinel answers (or names a primary yet), keep asking, with backoff.
    sentinelRetryStrategy: (times) => Math.min(times * 100, 2000),
    ...(t.username && { username: t.username }),
    ...(t.password && { password: t.password }),
    ...(t.tls && { tls: {} }),
    ...options,
  };
}

interface SubscriberContext {
  stream: string;
  batch: number;
  blockMs: number;
  positionSaveMs: number;
  clock: Clock;
  log: (message: string) => void;
  forget(sub: RedisSubscription): void;
  savePosition(nodeId: string, id: string): Promise<void>;
}

class RedisSubscription implements Subscription {
  private readonly pump: DeliveryPump;
  /** The id after which the next read starts (ahead of the acked position). */
  private readPos: string;
  /** Ordinal of the entry at readPos; undefined when unknown (then read with XINFO). */
  private readN: number | undefined;
  /** Counts (re)connections: a blocking read that spans one is read again with XINFO. */
  private epoch = 0;
  private closed = false;
  private backoff: { id: TimerId; resolve: () => void } | undefined;
  private readonly loop: Promise<void>;
  /** Latest acked id not yet written, the timer that will write it, and a write in progress. */
  private unsaved: string | undefined;
  private saveTimer: TimerId | undefined;
  private saving: Promise<void> | undefined;

  constructor(
    private readonly ctx: SubscriberContext,
    private readonly conn: Conn,
    readonly nodeId: string,
    start: string,
    handler: PurgeHandler,
    opts: SubscribeOptions,
  ) {
    this.readPos = start;
    conn.on("ready", () => {
      this.epoch++;
    });
    this.pump = new DeliveryPump({
      ...opts,
      nodeId,
      handler,
      clock: ctx.clock,
      start,
      onPosition: (id) => {
        this.unsaved = id;
        this.saveTimer ??= ctx.clock.setTimeout(() => {
          this.saveTimer = undefined;
          this.saving ??= this.save();
        }, ctx.positionSaveMs);
      },
    });
    this.loop = this.read();
  }

  position(): string | undefined {
    return this.pump.position();
  }

  stats(): SubscriptionStats {
    return this.pump.stats();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.ctx.forget(this);
    if (this.backoff) {
      this.ctx.clock.clearTimeout(this.backoff.id);
      this.backoff.resolve();
    }
    this.conn.disconnect(); // interrupts a pending XREAD BLOCK
    // The pump first: it releases a reader waiting for room in its queue.
    await this.pump.close();
    await this.loop;
    if (this.saveTimer !== undefined) this.ctx.clock.clearTimeout(this.saveTimer);
    await this.saving;
    await this.save();
  }

  private async save(): Promise<void> {
    for (let id = this.unsaved; id !== undefined; id = this.unsaved) {
      this.unsaved = undefined;
      await this.ctx.savePosition(this.nodeId, id);
    }
    this.saving = undefined;
  }

  private async read(): Promise<void> {
    let failures = 0;
    while (!this.closed) {
      try {
        await this.pump.waitForRoom(HIGH_WATER);
        if (this.closed) return;
        if (this.readN === undefined) await this.readChecked();
        else await this.readNext();
        failures = 0;
      } catch (err) {
        if (this.closed) return;
        failures++;
        if (failures === 1) {
          this.ctx.log(
            `purge bus: ${this.nodeId}: reading ${this.ctx.stream} after ${this.readPos} failed: ${(err as Error).message}; retrying`,
          );
        }
        await this.sleep(Math.min(2000, 50 * 2 ** failures));
      }
    }
  }

  /** Reads with the stream's bounds from the same instant, and judges the position. */
  private async readChecked(): Promise<void> {
    const { stream, batch } = this.ctx;
    const snap = await this.conn
      .multi()
      .call("XREAD", "COUNT", String(batch), "STREAMS", stream, this.readPos)
      .call("XINFO", "STREAM", stream)
      .exec();
    const { entries, info } = parseSnapshot(snap);
    const lost = lostSince(this.readPos, info);
    if (lost) {
      const tail = info?.lastGeneratedId ?? "0-0";
      this.pump.resync(`${lost}; continuing from ${tail}`, tail);
      this.readPos = tail;
      this.readN = info?.entriesAdded ?? 0;
    } else if (entries.length === 0) {
      // Nothing after readPos and nothing lost: readPos is the stream's last id.
      this.readN = info?.entriesAdded ?? 0;
    } else {
      this.take(entries);
    }
  }

  /** Waits for entries after readPos; checks their ordinals follow on. */
  private async readNext(): Promise<void> {
    const { stream, batch, blockMs } = this.ctx;
    const epoch = this.epoch;
    const reply = await this.conn.call(
      "XREAD",
      "COUNT",
      String(batch),
      "BLOCK",
      String(blockMs),
      "STREAMS",
      stream,
      this.readPos,
    );
    if (epoch !== this.epoch) {
      // Redis may have restarted, even without its data: read again, with the check.
      this.readN = undefined;
      return;
    }
    this.take(parseXRead(reply));
  }

  private take(entries: Entry[]): void {
    for (const [id, fields] of entries) {
      const n = ordinalOf(fields);
      const prev = this.readN;
      if (n !== undefined && prev !== undefined && n !== prev + 1) {
        const reason =
          n > prev + 1
            ? `${n - prev - 1} entries after ${this.readPos} were trimmed or deleted before ${this.nodeId} read them`
            : `the stream was reset: entry ${id} is number ${n}, after number ${prev}`;
        this.pump.resync(reason, this.readPos);
      }
      this.offer(id, fields);
      this.readPos = id;
      // An entry without an ordinal (not written by publish) makes the next read a checked one.
      this.readN = n;
    }
  }

  private offer(id: string, fields: string[]): void {
    const i = fields.indexOf("event");
    try {
      if (i < 0 || i % 2 !== 0 || fields[i + 1] === undefined) throw new Error("no event field");
      this.pump.offer(decodePurgeEvent(fields[i + 1]!), id);
    } catch (err) {
      this.ctx.log(
        `purge bus: ${this.nodeId}: skipping entry ${id} of ${this.ctx.stream}: ${(err as Error).message}`,
      );
      this.pump.skip(id);
    }
  }

  private sleep(ms: number): Promise<void> {
    const clock = this.ctx.clock;
    return new Promise((resolve) => {
      const id = clock.setTimeout(() => {
        this.backoff = undefined;
        resolve();
      }, ms);
      this.backoff = { id, resolve };
    });
  }
}

export interface StreamInfo {
  length: number;
  lastGeneratedId: string;
  maxDeletedEntryId: string;
  entriesAdded: number;
  firstEntryId: string | undefined;
}

/**
 * Why entries after `last` are gone, or undefined if none is. Trimming removes
 * the oldest entries and leaves no trace of their ids, so when the oldest
 * entry kept is after `last` and anything was ever removed, the answer is
 * "lost": conservative (it can resync a node that had read right up to the
 * trim), never silent.
 */
export function lostSince(last: string, info: StreamInfo | undefined): string | undefined {
  if (!info) {
    return compareStreamIds(last, "0-0") > 0
      ? `position ${last} is gone: the stream does not exist (deleted, or Redis lost its data)`
      : undefined;
  }
  if (compareStreamIds(last, info.lastGeneratedId) > 0) {
    return `position ${last} is ahead of the stream's last id ${info.lastGeneratedId}: the stream was reset`;
  }
  if (compareStreamIds(info.maxDeletedEntryId, last) > 0) {
    return `entries after position ${last} were deleted (up to ${info.maxDeletedEntryId})`;
  }
  const removed = info.entriesAdded - info.length;
  if (removed === 0) return undefined;
  if (info.firstEntryId === undefined) {
    return compareStreamIds(info.lastGeneratedId, last) > 0
      ? `position ${last} was trimmed: all ${removed} entries after it are gone`
      : undefined;
  }
  if (compareStreamIds(info.firstEntryId, last) > 0) {
    return `position ${last} was trimmed: the stream's oldest entry is ${info.firstEntryId} (${removed} entries trimmed; raise maxLen if this recurs)`;
  }
  return undefined;
}

/** Normalises a position: "0" -> "0-0", "1700000000000" -> "1700000000000-0". */
export function parseStreamId(id: string): string {
  if (id === BEGINNING) return "0-0";
  const m = /^(\d+)(?:-(\d+))?$/.exec(id);
  if (!m) {
    throw new Error(
      `"${id}" is not a Redis stream id; pass one returned by publish() or position(), "${BEGINNING}" or "${TAIL}"`,
    );
  }
  return `${m[1]}-${m[2] ?? "0"}`;
}

/** Orders "ms-seq" ids numerically (both parts are 64-bit: compare as BigInt). */
export function compareStreamIds(a: string, b: string): -1 | 0 | 1 {
  const [am, as] = parseStreamId(a).split("-").map(BigInt) as [bigint, bigint];
  const [bm, bs] = parseStreamId(b).split("-").map(BigInt) as [bigint, bigint];
  if (am !== bm) return am < bm ? -1 : 1;
  if (as !== bs) return as < bs ? -1 : 1;
  return 0;
}

type Entry = [id: string, fields: string[]];

function ordinalOf(fields: string[]): number | undefined {
  const i = fields.indexOf("n");
  const n = i >= 0 && i % 2 === 0 ? Number(fields[i + 1]) : Number.NaN;
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

function parseSnapshot(reply: [Error | null, unknown][] | null): {
  entries: Entry[];
  info: StreamInfo | undefined;
} {
  if (reply?.length !== 2) throw new Error("the MULTI of XREAD and XINFO was aborted");
  const [[readErr, read], [infoErr, info]] = reply as [
    [Error | null, unknown],
    [Error | null, unknown],
  ];
  if (readErr) throw readErr;
  if (infoErr && !/no such key/i.test(infoErr.message)) throw infoErr;
  return { entries: parseXRead(read), info: infoErr ? undefined : parseStreamInfo(info) };
}

/** XREAD's reply for one stream: [[stream, [[id, [field, value, ...]], ...]]] or null. */
function parseXRead(reply: unknown): Entry[] {
  if (reply === null) return [];
  const streams = asArray(reply, "XREAD reply");
  const entries = asArray(asArray(streams[0], "XREAD stream")[1], "XREAD entries");
  return entries.map((e) => {
    const [id, fields] = asArray(e, "XREAD entry");
    if (typeof id !== "string") throw new Error("XREAD entry without an id");
    return [id, asArray(fields, "XREAD fields").map(String)];
  });
}

function parseStreamInfo(reply: unknown): StreamInfo {
  const flat = asArray(reply, "XINFO STREAM reply");
  const m = new Map<string, unknown>();
  for (let i = 0; i + 1 < flat.length; i += 2) m.set(String(flat[i]), flat[i + 1]);
  if (!m.has("entries-added") || !m.has("max-deleted-entry-id")) {
    throw new Error("XINFO STREAM has no entries-added: RedisBus needs Redis 7.0 or later");
  }
  const first = m.get("first-entry");
  return {
    length: Number(m.get("length")),
    lastGeneratedId: String(m.get("last-generated-id")),
    maxDeletedEntryId: String(m.get("max-deleted-entry-id")),
    entriesAdded: Number(m.get("entries-added")),
    firstEntryId: Array.isArray(first) ? String(first[0]) : undefined,
  };
}

function asArray(x: unknown, what: string): unknown[] {
  if (!Array.isArray(x)) throw new Error(`unexpected ${what} from Redis: ${JSON.stringify(x)}`);
  return x;
}
