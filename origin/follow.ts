/**
 * Following a primary that a user already runs: each followed zone is loaded
 * by AXFR, kept up by IXFR when the primary NOTIFYs (RFC 1996) or when the
 * SOA refresh timer fires (RFC 1035 §4.3.5), and every transfer becomes
 * committed changes in the store under the primary's serial, so it reaches
 * caches exactly like an API write (purge events, receipts, measure).
 *
 * Timers run on the injected Clock; the wire is in follow-xfr.ts; NOTIFYs
 * reach `notified` through the DNS server, which checks their form and TSIG.
 */
import type { Clock, TimerId } from "../core/clock.ts";
import type { QueryInfo } from "../core/dns-transport.ts";
import { isInZone, normaliseName } from "../core/names.ts";
import {
  MAX_TTL,
  parseRData,
  type RData,
  type RRset,
  type RRType,
  rrsetKey,
  toRRType,
} from "../core/records.ts";
import { serialGt } from "../core/serial.ts";
import { keyName, type TsigKey } from "../core/tsig.ts";
import { fromWireData } from "../core/wire.ts";
import {
  type AuthSession,
  type Delta,
  type Primary,
  parsePrimary,
  querySoa,
  type SoaRecord,
  type Transfer,
  transfer,
  tsigSession,
  XfrError,
  type XfrLimits,
  type XfrRecord,
} from "./follow-xfr.ts";
import type { RRsetOp, Store } from "./store.ts";

/** One followed zone and where it comes from. */
export interface FollowSource {
  zone: string;
  primary: Primary;
  /** TSIG for transfers and SOA queries; NOTIFYs must then be signed with it too. */
  key?: TsigKey | undefined;
}

export interface FollowerOptions {
  zones: readonly FollowSource[];
  store: Store;
  clock: Clock;
  log: (message: string) => void;
  limits?: Partial<XfrLimits>;
  /** SOA query timeout. */
  soaTimeoutMs?: number;
  /** Wait before trying again while a zone has never loaded (no SOA yet to give RETRY). */
  initialRetryMs?: number;
}

/** RFC 1035 §4.3.5 state of one followed zone. */
export interface FollowedZone {
  zone: string;
  /** The primary, dns://HOST:PORT. */
  primary: string;
  /** Serial we hold; undefined until the first AXFR. */
  serial: number | undefined;
  /** Clock time of the last successful refresh (SOA check or transfer). */
  lastRefresh: number | undefined;
  /** When the next check is due. */
  nextCheck: number | undefined;
  /** Checks started (timer, NOTIFY or start). */
  checks: number;
  /** Failed checks since the last success. */
  failures: number;
  lastError: string | undefined;
  /** No successful refresh for the SOA's EXPIRE seconds. */
  expired: boolean;
}

interface ZoneRuntime extends FollowedZone {
  source: FollowSource;
  timer: TimerId | undefined;
  running: Promise<void> | undefined;
  /** A NOTIFY arrived during a check: check once more after it (RFC 1996 §4.4). */
  again: boolean;
}

const RCODE = { NOERROR: 0, REFUSED: 5 } as const;

/** Counters since start, for /metrics. */
export interface FollowStats {
  transfers: Map<string, number>;
  notifies: Map<string, number>;
  dropped: Map<string, number>;
}

export class Follower {
  readonly stats: FollowStats = { transfers: new Map(), notifies: new Map(), dropped: new Map() };
  private readonly zones = new Map<string, ZoneRuntime>();
  private closed = false;
  /**
   * The expiry of a zone held from before a restart counts from this start:
   * when it was last refreshed is not kept, and a zone whose primary never
   * answers again must not be served as authoritative for ever.
   */
  private readonly startedAt: number;

  constructor(private readonly opts: FollowerOptions) {
    this.startedAt = opts.clock.now();
    for (const source of opts.zones) {
      const { zone } = source;
      this.zones.set(zone, {
        zone,
        source,
        primary: `dns://${where(source.primary)}`,
        serial: undefined,
        lastRefresh: undefined,
        nextCheck: undefined,
        checks: 0,
        failures: 0,
        lastError: undefined,
        expired: false,
        timer: undefined,
        running: undefined,
        again: false,
      });
    }
  }

  /** RFC 1035 §4.3.5: an expired zone is no longer answered authoritatively (SERVFAIL). */
  expired(zone: string): boolean {
    return this.zones.get(zone)?.expired ?? false;
  }

  /** The primary a zone is followed from (dns://HOST:PORT), or undefined. */
  primaryOf(zone: string): string | undefined {
    return this.zones.get(zone)?.primary;
  }

  /** Starts every zone's first check now. */
  start(): void {
    for (const z of this.zones.values()) void this.check(z.zone);
  }

  status(): FollowedZone[] {
    return [...this.zones.values()].map(
      ({ timer: _t, running: _r, again: _a, source: _s, ...state }) => state,
    );
  }

  /**
   * Runs one refresh of a zone now (RFC 1996 §3.11: a NOTIFY acts as if the
   * refresh timer expired); resolves when it and any check it queued are done.
   */
  check(zone: string): Promise<void> {
    const z = this.zones.get(zone);
    if (!z || this.closed) return Promise.resolve();
    if (z.running) {
      z.again = true;
      return z.running;
    }
    if (z.timer !== undefined) this.opts.clock.clearTimeout(z.timer);
    z.timer = undefined;
    z.nextCheck = undefined;
    z.checks++;
    z.running = this.refresh(z).finally(() => {
      z.running = undefined;
      if (z.again && !this.closed) {
        z.again = false;
        return this.check(zone);
      }
    });
    return z.running;
  }

  /** Stops the timers and waits for checks under way (which commit nothing more). */
  async close(): Promise<void> {
    this.closed = true;
    for (const z of this.zones.values()) {
      if (z.timer !== undefined) this.opts.clock.clearTimeout(z.timer);
      z.timer = undefined;
    }
    await Promise.allSettled([...this.zones.values()].map((z) => z.running));
  }

  /** A check that outlives close() must not write to a journal being closed. */
  private assertOpen(): void {
    if (this.closed) throw new Error("the origin is closing");
  }

  /**
   * What a NOTIFY for `zone` from `info.address`, verified with TSIG key `key`
   * (undefined: unsigned), is answered: NOERROR and an immediate check when it
   * comes from the zone's primary (with the zone's key, when it has one);
   * REFUSED, counted and logged, and nothing else, otherwise.
   */
  notified(zone: string, info: QueryInfo, key: string | undefined): number {
    const z = this.zones.get(zone);
    const why = !z
      ? "not a followed zone"
      : !sameAddress(info.address, z.source.primary.host)
        ? `only its primary ${z.source.primary.host} may notify`
        : z.source.key && z.source.key.name !== key
          ? `it must be signed with TSIG key ${z.source.key.name}`
          : undefined;
    if (why !== undefined) {
      this.count(this.stats.notifies, "refused");
      this.opts.log(`follow: NOTIFY for ${zone || "."} from ${info.address} refused: ${why}`);
      return RCODE.REFUSED;
    }
    this.count(this.stats.notifies, "accepted");
    // RFC 1996 §3.11: as if the refresh timer had expired.
    void this.check(zone);
    return RCODE.NOERROR;
  }

  private async refresh(z: ZoneRuntime): Promise<void> {
    const { store, clock } = this.opts;
    try {
      const held = store.findState(z.zone);
      if (held?.zone.name !== z.zone) {
        await this.load(z);
      } else {
        const ours: SoaRecord = { ttl: held.zone.soa.ttl, data: held.zone.soaData };
        const theirs = await querySoa(z.source.primary, z.zone, {
          timeoutMs: this.opts.soaTimeoutMs ?? 2000,
          auth: this.session(z),
        });
        // RFC 1035 §4.3.5: transfer only when the primary's serial is ahead of ours (RFC 1982).
        if (serialGt(theirs.data.serial, ours.data.serial)) await this.incremental(z, ours);
        else if (theirs.data.serial !== ours.data.serial) {
          // A primary behind us (restored from a backup, serial reset) is not followed backwards.
          this.opts.log(
            `follow: ${z.zone}: the primary's serial ${theirs.data.serial} is not ahead of ours (${ours.data.serial}, RFC 1982); nothing taken`,
          );
        }
      }
      z.failures = 0;
      z.lastError = undefined;
      z.lastRefresh = clock.now();
      if (z.expired) this.opts.log(`follow: ${z.zone} is fresh again`);
      z.expired = false;
      this.schedule(z, this.soa(z.zone)!.refresh * 1000);
    } catch (err) {
      z.failures++;
      z.lastError = (err as Error).message;
      this.opts.log(`follow: refresh of ${z.zone} from ${z.primary} failed: ${z.lastError}`);
      const soa = this.soa(z.zone);
      // RFC 1035 §4.3.5: past EXPIRE without a refresh the zone's data is no longer authoritative.
      if (soa && !z.expired) {
        if (clock.now() - (z.lastRefresh ?? this.startedAt) >= soa.expire * 1000) {
          z.expired = true;
          this.opts.log(
            `follow: ${z.zone} expired: no refresh from ${z.primary} for ${soa.expire} s (SOA EXPIRE); answering SERVFAIL for it until a refresh succeeds`,
          );
        }
      }
      this.schedule(z, soa ? soa.retry * 1000 : (this.opts.initialRetryMs ?? 10_000));
    } finally {
      z.serial = this.soa(z.zone)?.serial;
    }
  }

  private session(z: ZoneRuntime): AuthSession | undefined {
    const { key } = z.source;
    return key && tsigSession(key, () => this.opts.clock.now());
  }

  private soa(zone: string) {
    const held = this.opts.store.findState(zone);
    return held?.zone.name === zone ? held.zone.soaData : undefined;
  }

  private schedule(z: ZoneRuntime, ms: number): void {
    if (this.closed) return;
    z.nextCheck = this.opts.clock.now() + ms;
    z.timer = this.opts.clock.setTimeout(() => {
      z.timer = undefined;
      void this.check(z.zone);
    }, ms);
  }

  /** First load: AXFR, committed as a zone create at the primary's serial. */
  private async load(z: ZoneRuntime): Promise<void> {
    const zone = z.zone;
    const t = await this.transfer(z, undefined);
    if (t.kind !== "full") throw new XfrError(`AXFR of ${zone} came back as ${t.kind}`);
    const rrsets = this.toRRsets(zone, t.records, t.soa);
    this.assertOpen();
    const result = await this.opts.store.createZone({
      name: zone,
      rrsets: [...rrsets.values()].map((s) => ({ ...s, name: `${s.name}.` })),
    });
    if (result.note) this.opts.log(`follow: ${result.note}`);
    this.opts.log(
      `follow: loaded ${zone} from ${z.primary} by AXFR at serial ${result.serial} (${rrsets.size} RRsets)`,
    );
  }

  /** IXFR from the serial we hold; each difference becomes one committed change at its serial. */
  private async incremental(z: ZoneRuntime, ours: SoaRecord): Promise<void> {
    const zone = z.zone;
    const t = await this.transfer(z, ours);
    if (t.kind === "current") return;
    if (t.kind === "full") {
      await this.replace(zone, this.toRRsets(zone, t.records, t.soa));
      return;
    }
    try {
      for (const delta of t.deltas) await this.applyDelta(zone, delta);
    } catch (err) {
      if (!(err instanceof XfrError)) throw err;
      // RFC 1995 §4: differences that do not fit what we hold mean we must take the whole zone.
      this.opts.log(`follow: ${err.message}; taking ${zone} by AXFR`);
      const full = await this.transfer(z, undefined);
      if (full.kind !== "full") throw new XfrError(`AXFR of ${zone} came back as ${full.kind}`);
      await this.replace(zone, this.toRRsets(zone, full.records, full.soa));
    }
  }

  private async transfer(z: ZoneRuntime, ours: SoaRecord | undefined): Promise<Transfer> {
    const type = ours ? "IXFR" : "AXFR";
    try {
      const t = await transfer(z.source.primary, z.zone, ours, {
        ...(this.opts.limits && { limits: this.opts.limits }),
        auth: this.session(z),
      });
      this.count(this.stats.transfers, `${type}|${t.kind}`);
      return t;
    } catch (err) {
      this.count(this.stats.transfers, `${type}|error`);
      throw err;
    }
  }

  private async applyDelta(zone: string, delta: Delta): Promise<void> {
    const held = this.opts.store.getZone(zone).zone;
    if (held.serial !== delta.from) {
      throw new XfrError(`an IXFR difference starts at ${delta.from}, we hold ${held.serial}`);
    }
    const next = new Map(held.all().map((s) => [rrsetKey(s.name, s.type), s] as const));
    for (const [key, part] of this.toRRsets(zone, delta.deleted)) {
      const set = next.get(key);
      const gone = new Set(part.data.map(rdataKey));
      if (!set || part.data.some((d) => !set.data.some((h) => rdataKey(h) === rdataKey(d)))) {
        throw new XfrError(
          `an IXFR difference deletes ${part.type} at ${part.name}, which we do not hold`,
        );
      }
      const data = set.data.filter((d) => !gone.has(rdataKey(d)));
      if (data.length === 0) next.delete(key);
      else next.set(key, { ...set, data } as RRset);
    }
    for (const [key, part] of this.toRRsets(zone, delta.added)) {
      const set = next.get(key);
      const data = [...(set?.data ?? [])];
      for (const d of part.data) if (!data.some((h) => rdataKey(h) === rdataKey(d))) data.push(d);
      // RFC 2181 §5.2: one TTL per RRset; the records just added carry the current one.
      next.set(key, { ...part, data } as RRset);
    }
    next.set(rrsetKey(zone, "SOA"), {
      name: zone,
      type: "SOA",
      ttl: delta.to.ttl,
      data: [delta.to.data],
    });
    await this.replace(zone, next);
  }

  /** Commits the difference between what the store holds and `next` as one change. */
  private async replace(zone: string, next: Map<string, RRset>): Promise<void> {
    const held = this.opts.store.getZone(zone).zone;
    const ops: RRsetOp[] = [];
    for (const set of held.all()) {
      if (!next.has(rrsetKey(set.name, set.type))) {
        ops.push({ name: `${set.name}.`, type: set.type, changetype: "DELETE" });
      }
    }
    for (const [key, set] of next) {
      const old = held.get(set.name, set.type);
      if (old && key !== rrsetKey(zone, "SOA") && sameRRset(old, set)) continue;
      ops.push({
        name: `${set.name}.`,
        type: set.type,
        ttl: set.ttl,
        data: set.data,
        changetype: "REPLACE",
      });
    }
    const soa = next.get(rrsetKey(zone, "SOA"))!.data[0] as { serial: number };
    this.assertOpen();
    const result = await this.opts.store.update(zone, ops);
    if (result.serial !== soa.serial) {
      this.opts.log(
        `follow: ${zone} committed at serial ${result.serial}, the primary is at ${soa.serial}`,
      );
    }
  }

  /**
   * The transfer's records as the project's RRsets. Records of types the
   * project does not model (DNSSEC, HINFO, ...), outside the zone, of other
   * classes or with rdata our schemas reject are dropped and counted by type.
   */
  private toRRsets(zone: string, records: XfrRecord[], soa?: SoaRecord): Map<string, RRset> {
    const sets = new Map<string, RRset>();
    const dropped = new Map<string, number>();
    const drop = (why: string) => dropped.set(why, (dropped.get(why) ?? 0) + 1);
    if (soa) {
      sets.set(rrsetKey(zone, "SOA"), { name: zone, type: "SOA", ttl: soa.ttl, data: [soa.data] });
    }
    for (const r of records) {
      const type = toRRType(String(r.type));
      if (!type) {
        drop(String(r.type));
        continue;
      }
      if ((r as { class?: string }).class !== "IN") {
        drop(`${type} (class ${(r as { class?: string }).class})`);
        continue;
      }
      const parsed = recordOf(zone, type, r);
      if (!parsed || (type === "SOA" && parsed.name === zone)) {
        if (!parsed) drop(`${type} (outside the zone or invalid)`);
        continue;
      }
      const key = rrsetKey(parsed.name, type);
      const set = sets.get(key);
      if (!set)
        sets.set(key, { name: parsed.name, type, ttl: parsed.ttl, data: [parsed.data] } as RRset);
      else if (!set.data.some((d) => rdataKey(d) === rdataKey(parsed.data))) {
        (set.data as RData[]).push(parsed.data);
        set.ttl = Math.min(set.ttl, parsed.ttl);
      }
    }
    if (dropped.size > 0) {
      for (const [why, n] of dropped) this.count(this.stats.dropped, why, n);
      const list = [...dropped]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([why, n]) => `${n} ${why}`)
        .join(", ");
      this.opts.log(`follow: ${zone}: dropped records the origin does not serve: ${list}`);
    }
    return sets;
  }

  /**
   * Prometheus text (0.0.4) of the follower's counters and per-zone state, for
   * /metrics; every sample carries the `node` label like the registry's families.
   */
  metricsText(node: string): string {
    const esc = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"');
    const n = `,node="${esc(node)}"`;
    const lines = [
      "# HELP origin_follow_transfers_total zone transfers from followed primaries, by type and outcome",
      "# TYPE origin_follow_transfers_total counter",
      ...[...this.stats.transfers].map(([k, count]) => {
        const [type, result] = k.split("|");
        return `origin_follow_transfers_total{type="${type}",result="${result}"${n}} ${count}`;
      }),
      "# HELP origin_follow_notifies_total NOTIFY messages received, by outcome",
      "# TYPE origin_follow_notifies_total counter",
      ...[...this.stats.notifies].map(
        ([k, count]) => `origin_follow_notifies_total{result="${k}"${n}} ${count}`,
      ),
      "# HELP origin_follow_records_dropped_total transferred records the origin does not serve, by type",
      "# TYPE origin_follow_records_dropped_total counter",
      ...[...this.stats.dropped].map(
        ([k, count]) => `origin_follow_records_dropped_total{type="${esc(k)}"${n}} ${count}`,
      ),
      "# HELP origin_follow_zone_serial serial held of each followed zone (absent until loaded)",
      "# TYPE origin_follow_zone_serial gauge",
      ...this.status()
        .filter((z) => z.serial !== undefined)
        .map((z) => `origin_follow_zone_serial{zone="${z.zone}"${n}} ${z.serial}`),
      "# HELP origin_follow_zone_expired 1 when a followed zone had no refresh for its SOA EXPIRE",
      "# TYPE origin_follow_zone_expired gauge",
      ...this.status().map(
        (z) => `origin_follow_zone_expired{zone="${z.zone}"${n}} ${z.expired ? 1 : 0}`,
      ),
    ];
    return `${lines.join("\n")}\n`;
  }

  private count(map: Map<string, number>, key: string, n = 1): void {
    map.set(key, (map.get(key) ?? 0) + n);
  }
}

/** A write through the API to a zone that follows a primary (409). */
export class ZoneFollowed extends Error {
  constructor(
    readonly zone: string,
    readonly primary: string,
  ) {
    super(
      `zone "${zone}" follows the primary ${primary}; change it there (propagate takes the change by IXFR)`,
    );
  }
}

/** What `--follow` and a topology's `origin.follow` say: a primary and the zones taken from it. */
export interface FollowConfig {
  /** dns://IP:PORT */
  primary: string;
  zones: readonly string[];
  /** TSIG key name, from the key file. */
  key?: string | undefined;
}

/** Validates follow settings into sources; throws naming the bad value. */
export function followSources(
  configs: readonly FollowConfig[],
  keyFile: { file?: string; keys: readonly TsigKey[] } = { keys: [] },
): FollowSource[] {
  const seen = new Map<string, string>();
  const out: FollowSource[] = [];
  for (const c of configs) {
    const primary = parsePrimary(c.primary);
    const wanted = c.key === undefined ? undefined : keyName(c.key);
    const key = keyFile.keys.find((k) => k.name === wanted);
    if (wanted !== undefined && !key) {
      throw new Error(
        keyFile.file === undefined
          ? `TSIG key ${wanted} for ${c.primary} needs a key file (--tsig-keys FILE, written by tsig-keygen)`
          : `TSIG key ${wanted} for ${c.primary} is not in ${keyFile.file}`,
      );
    }
    for (const raw of c.zones) {
      const zone = normaliseName(raw);
      if (zone === "") throw new Error("the root zone cannot be followed");
      const other = seen.get(zone);
      if (other !== undefined) {
        throw new Error(
          `zone ${zone} is followed twice (from ${other} and ${c.primary}); keep one`,
        );
      }
      seen.set(zone, c.primary);
      out.push({ zone, primary, key });
    }
  }
  return out;
}

function where({ host, port }: Primary): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

function recordOf(
  zone: string,
  type: RRType,
  r: XfrRecord,
): { name: string; ttl: number; data: RData } | undefined {
  try {
    const name = normaliseName(r.name);
    if (!isInZone(name, zone)) return undefined;
    const data = parseRData(type, fromWireData(type, r.data));
    // RFC 2181 §8: a TTL with the most significant bit set is taken as zero.
    const ttl = r.ttl !== undefined && r.ttl <= MAX_TTL ? r.ttl : 0;
    return { name, ttl, data };
  } catch {
    return undefined;
  }
}

/** Comparable form of one rdata (already normalised by parseRData). */
function rdataKey(data: RData): string {
  return typeof data === "string" ? data : JSON.stringify(data);
}

function sameRRset(a: RRset, b: RRset): boolean {
  if (a.ttl !== b.ttl || a.data.length !== b.data.length) return false;
  const keys = new Set(a.data.map(rdataKey));
  return b.data.every((d) => keys.has(rdataKey(d)));
}

function sameAddress(a: string, b: string): boolean {
  const strip = (s: string) => s.replace(/^::ffff:/i, "").toLowerCase();
  return strip(a) === strip(b);
}
