/**
 * The zone store: zones in memory, every change journaled before it is
 * acknowledged.
 *
 * Writes are planned and validated against the *head* (every accepted change,
 * durable or not), so concurrent writes see each other and get consecutive
 * serials; readers see the *visible* zones, which a change reaches only once
 * its journal record is on disk. So a cache never reads a serial that a crash
 * could take back. Both are built by the same `applyRecord`, as is recovery.
 */
import { randomBytes } from "node:crypto";
import type { Clock } from "../core/clock.ts";
import { type NameError, normaliseName, parentName } from "../core/names.ts";
import type { RRset, SoaData } from "../core/records.ts";
import { serialGt, serialLt } from "../core/serial.ts";
import { InvalidInput, planCreate, planUpdate, type RRsetOp, type ZoneInput } from "./plan.ts";
import { type CommittedChange, type ZoneConfig, ZoneState } from "./types.ts";
import type { ZoneSource, ZoneView } from "./zone.ts";

export {
  InvalidInput,
  ownerName,
  type RRsetInput,
  RRsetNotFound,
  type RRsetOp,
  type ZoneInput,
} from "./plan.ts";
export {
  type CommittedChange,
  type RRsetChange,
  type ZoneConfig,
  ZoneState,
} from "./types.ts";

export const ZONE_DEFAULTS: ZoneConfig = {
  ttl: 3600,
  staleWhileRevalidate: 30,
  staleIfError: 86_400,
};

export type JournalRecord =
  | (CommittedChange & { op: "update" })
  | (CommittedChange & { op: "delete" })
  | (CommittedChange & { op: "create"; config: ZoneConfig });

export interface ZoneSnapshot {
  name: string;
  config: ZoneConfig;
  rrsets: RRset[];
  /** Serial the retained change log starts after. */
  base: number;
  changes: CommittedChange[];
}

/** A deleted zone's last serial: a zone created again under its name continues after it. */
export interface Tombstone {
  zone: string;
  serial: number;
}

export interface StoreSnapshot {
  zones: ZoneSnapshot[];
  /** Oldest deletion first; absent in snapshots written before tombstones existed. */
  tombstones?: Tombstone[];
}

/** Where records go to become durable; `onDurable` runs once they are, in order. */
export interface Durability {
  append(record: JournalRecord, onDurable: () => void): Promise<void>;
}

export interface StoreOptions {
  clock: Clock;
  durability: Durability;
  /** Changes kept per zone for `changesSince`; older ones answer Gone. */
  changeLogLimit: number;
  /** Deleted zones whose last serial is remembered; the oldest deletion is forgotten first. */
  tombstoneLimit?: number;
  warn: (message: string) => void;
}

/** Default `tombstoneLimit`: about 1 MB of memory and snapshot with typical zone names. */
export const TOMBSTONE_LIMIT = 10_000;

export interface CommitResult {
  zone: string;
  serial: number;
  changeId: string;
  /** Why the serial is not the one asked for (a create continuing a deleted zone's serials). */
  note?: string;
}

export class ZoneNotFound extends Error {
  constructor(readonly zone: string) {
    super(`zone "${zone}" not found; create it with PUT /v1/zones/${zone}`);
  }
}

export class ZoneExists extends Error {
  constructor(
    readonly zone: string,
    readonly serial: number,
  ) {
    super(
      `zone "${zone}" already exists at serial ${serial}; change it with PATCH or DELETE it first`,
    );
  }
}

export class SerialMismatch extends Error {
  constructor(
    readonly zone: string,
    readonly serial: number,
    readonly expected: number,
  ) {
    super(`zone "${zone}" is at serial ${serial}, not ${expected}; re-read it and retry`);
  }
}

export class ChangesGone extends Error {
  constructor(
    readonly zone: string,
    readonly serial: number,
    detail: string,
  ) {
    super(`${detail}; journal compacted; resync by GET /v1/zones/${zone}`);
  }
}

export class StoreUnavailable extends Error {}

/** The zones, and the last serial of each deleted zone (oldest deletion first, bounded). */
interface StoreState {
  zones: Map<string, ZoneState>;
  tombstones: Map<string, number>;
}

interface Limits {
  changes: number;
  tombstones: number;
}

function cloneState(state: StoreState): StoreState {
  return {
    zones: new Map([...state.zones].map(([name, s]) => [name, s.clone()])),
    tombstones: new Map(state.tombstones),
  };
}

function bury(tombstones: Map<string, number>, zone: string, serial: number, limit: number): void {
  tombstones.delete(zone); // re-inserted as the newest
  tombstones.set(zone, serial);
  for (const oldest of tombstones.keys()) {
    if (tombstones.size <= limit) break;
    tombstones.delete(oldest);
  }
}

/** Applies one journal record to a state: the single path for writes, visibility and replay. */
function applyRecord(state: StoreState, record: JournalRecord, limits: Limits): void {
  const { zones, tombstones } = state;
  switch (record.op) {
    case "create": {
      const rrsets = record.changes.map((c) => c.rrset).filter((s): s is RRset => s !== null);
      zones.set(
        record.zone,
        ZoneState.fromRRsets(record.zone, record.config, rrsets, record.serial),
      );
      // The live zone's serial is above the tombstone's now, and carries the guarantee.
      tombstones.delete(record.zone);
      return;
    }
    case "delete":
      zones.delete(record.zone);
      bury(tombstones, record.zone, record.serial, limits.tombstones);
      return;
    case "update": {
      const target = zones.get(record.zone);
      if (!target) throw new Error(`journal updates zone "${record.zone}", which does not exist`);
      for (const c of record.changes) {
        if (c.rrset) target.zone.put(c.rrset);
        else target.zone.delete(c.name, c.type);
      }
      target.remember(record, limits.changes);
    }
  }
}

/** Random bytes for change ids, drawn 4 KiB at a time: one CSPRNG call per ~800 ids, not per write. */
const ID_POOL = 4096;
let idPool = Buffer.alloc(0);
let idPoolAt = 0;

function changeId(ts: number): string {
  if (idPoolAt + 5 > idPool.length) {
    idPool = randomBytes(ID_POOL);
    idPoolAt = 0;
  }
  const hex = idPool.toString("hex", idPoolAt, idPoolAt + 5);
  idPoolAt += 5;
  return `chg_${ts.toString(36)}_${hex}`;
}

export class Store implements ZoneSource {
  private readonly visible: StoreState;
  private readonly head: StoreState;
  private readonly limits: Limits;
  private readonly listeners = new Set<(change: CommittedChange) => void>();
  private failure: Error | undefined;

  constructor(
    private readonly opts: StoreOptions,
    recovered: { snapshot?: StoreSnapshot | undefined; records?: readonly JournalRecord[] } = {},
  ) {
    this.limits = {
      changes: opts.changeLogLimit,
      tombstones: opts.tombstoneLimit ?? TOMBSTONE_LIMIT,
    };
    this.visible = { zones: new Map(), tombstones: new Map() };
    for (const z of recovered.snapshot?.zones ?? []) {
      const state = ZoneState.fromRRsets(z.name, z.config, z.rrsets, z.base);
      state.changes.push(...z.changes);
      this.visible.zones.set(z.name, state);
    }
    for (const t of recovered.snapshot?.tombstones ?? []) {
      bury(this.visible.tombstones, t.zone, t.serial, this.limits.tombstones);
    }
    for (const r of recovered.records ?? []) applyRecord(this.visible, r, this.limits);
    this.head = cloneState(this.visible);
  }

  /** ZoneSource: the zone with the longest name that contains `name`. */
  findZone(name: string): ZoneView | undefined {
    return this.findState(name)?.zone;
  }

  findState(name: string): ZoneState | undefined {
    for (let n = name; ; n = parentName(n)) {
      const state = this.visible.zones.get(n);
      if (state) return state;
      if (n === "") return undefined;
    }
  }

  /** The zone named exactly `zone`, as readers see it. */
  getZone(zone: string): ZoneState {
    const state = this.visible.zones.get(zone);
    if (!state) throw new ZoneNotFound(zone);
    return state;
  }

  zones(): ZoneState[] {
    return [...this.visible.zones.values()].sort((a, b) => a.zone.name.localeCompare(b.zone.name));
  }

  /** Calls `listener` after each change is durable, before its writer is answered. */
  onCommit(listener: (change: CommittedChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Creates a zone. A zone of that name deleted before leaves its last serial
   * behind (a tombstone), and the new zone's serials continue after it: the
   * result's `note` says so when the serial asked for was not above it.
   */
  async createZone(input: ZoneInput): Promise<CommitResult> {
    this.assertWritable();
    const name = zoneName(input.name);
    const existing = this.head.zones.get(name);
    if (existing) throw new ZoneExists(name, existing.zone.serial);
    const config: ZoneConfig = { ...ZONE_DEFAULTS, ...input.config };
    const { rrsets, serial, note } = planCreate(
      name,
      config,
      input,
      this.head.tombstones.get(name),
    );
    const ts = this.opts.clock.now();
    const changes = rrsets.map((rrset) => ({ name: rrset.name, type: rrset.type, rrset }));
    const result = await this.commit({
      op: "create",
      changeId: changeId(ts),
      zone: name,
      serial,
      ts,
      changes,
      config,
    });
    return note === undefined ? result : { ...result, note };
  }

  async deleteZone(zone: string, ifMatch?: number): Promise<CommitResult> {
    const state = this.headState(zone, ifMatch);
    const ts = this.opts.clock.now();
    const serial = state.zone.serial;
    return this.commit({ op: "delete", changeId: changeId(ts), zone, serial, ts, changes: [] });
  }

  /** Applies a batch of RRset changes atomically under one new serial. */
  async update(zone: string, ops: readonly RRsetOp[], ifMatch?: number): Promise<CommitResult> {
    const state = this.headState(zone, ifMatch);
    const changes = planUpdate(state, ops);
    const serial = (changes.find((c) => c.type === "SOA")!.rrset!.data[0] as SoaData).serial;
    const ts = this.opts.clock.now();
    return this.commit({ op: "update", changeId: changeId(ts), zone, serial, ts, changes });
  }

  /** Committed changes after serial `since`, oldest first (an IXFR-like feed). */
  changesSince(zone: string, since: number): { serial: number; changes: CommittedChange[] } {
    const state = this.getZone(zone);
    const serial = state.zone.serial;
    if (serialGt(since, serial)) {
      throw new ChangesGone(
        zone,
        serial,
        `since=${since} is ahead of the zone serial ${serial} (was the zone re-created?)`,
      );
    }
    if (serialLt(since, state.base)) {
      // A log that never filled up has dropped nothing: the caller is from before the
      // zone was created (e.g. since=0), and the creation is the change it missed.
      if (state.changes.length < this.limits.changes) {
        const created: CommittedChange = {
          changeId: `create:${zone}:${state.base}`,
          op: "create",
          zone,
          serial: state.base,
          ts: 0,
          changes: [],
        };
        return { serial, changes: [created, ...state.changes] };
      }
      throw new ChangesGone(zone, serial, `changes before serial ${state.base} are no longer kept`);
    }
    return { serial, changes: state.changes.filter((c) => serialGt(c.serial, since)) };
  }

  /** The visible state, for a snapshot; call only when every journaled record is visible. */
  snapshot(): StoreSnapshot {
    return {
      zones: [...this.visible.zones.values()].map((s) => ({
        name: s.zone.name,
        config: s.config,
        rrsets: s.zone.all(),
        base: s.base,
        changes: [...s.changes],
      })),
      tombstones: [...this.visible.tombstones].map(([zone, serial]) => ({ zone, serial })),
    };
  }

  private headState(zone: string, ifMatch: number | undefined): ZoneState {
    this.assertWritable();
    const state = this.head.zones.get(zone);
    if (!state) throw new ZoneNotFound(zone);
    if (ifMatch !== undefined && ifMatch !== state.zone.serial) {
      throw new SerialMismatch(zone, state.zone.serial, ifMatch);
    }
    return state;
  }

  private async commit(record: JournalRecord): Promise<CommitResult> {
    applyRecord(this.head, record, this.limits);
    try {
      await this.opts.durability.append(record, () => {
        applyRecord(this.visible, record, this.limits);
        this.publish(record);
      });
    } catch (err) {
      // The head now holds a change the disk may not: stop taking writes until a restart replays.
      this.failure ??= err as Error;
      throw new StoreUnavailable(`write not committed: ${(err as Error).message}`);
    }
    return { zone: record.zone, serial: record.serial, changeId: record.changeId };
  }

  private publish(record: JournalRecord): void {
    const { changeId, op, zone, serial, ts, changes } = record;
    for (const listener of this.listeners) {
      try {
        listener({ changeId, op, zone, serial, ts, changes });
      } catch (err) {
        this.opts.warn(`onCommit listener failed for ${changeId}: ${(err as Error).message}`);
      }
    }
  }

  private assertWritable(): void {
    if (this.failure) {
      throw new StoreUnavailable(
        `the journal failed (${this.failure.message}); writes are refused until the origin restarts`,
      );
    }
  }
}

/** Validates a zone name from a URL or body. */
export function zoneName(input: string): string {
  let name: string;
  try {
    name = normaliseName(input);
  } catch (err) {
    throw new InvalidInput("zone", (err as NameError).message);
  }
  if (name === "")
    throw new InvalidInput(
      "zone",
      "the root zone cannot be hosted here; name a zone such as example.test",
    );
  return name;
}
