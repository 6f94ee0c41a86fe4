/**
 * Validation and planning of zone writes, pure: turns what a client asked for
 * into the RRsets a journal record holds, or an InvalidInput naming the field.
 */
import { z } from "zod";
import { isInZone, NameError, normaliseName } from "../core/names.ts";
import {
  parseRData,
  type RData,
  RR_TYPES,
  type RRset,
  type RRType,
  rrsetKey,
  type SoaData,
  toRRType,
  ttlSchema,
} from "../core/records.ts";
import { serialGt, serialNext } from "../core/serial.ts";
import type { RRsetChange, ZoneConfig, ZoneState } from "./types.ts";

/** Bad input: `field` is a path into the request ("rrsets[2].data[0]"). */
export class InvalidInput extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
  }
}

export class RRsetNotFound extends Error {
  constructor(name: string, type: RRType) {
    super(`no ${type} RRset at "${name}"`);
  }
}

export interface RRsetInput {
  name: string;
  type: string;
  ttl?: number | undefined;
  data: readonly unknown[];
  /** Request path of this entry, for error messages; defaults to rrsets[i]. */
  field?: string;
}

export interface RRsetOp extends Omit<RRsetInput, "data"> {
  changetype: "REPLACE" | "DELETE";
  data?: readonly unknown[] | undefined;
  /** DELETE of an absent RRset is an error (single DELETE) rather than a no-op (PATCH). */
  mustExist?: boolean;
}

export interface ZoneInput {
  name: string;
  config?: Partial<ZoneConfig> | undefined;
  /** SOA fields for a zone whose RRsets carry no SOA; defaults fill the rest. */
  soa?: Partial<SoaData> | undefined;
  rrsets: readonly RRsetInput[];
}

/**
 * Resolves an owner name against its zone: "@" is the apex; a name ending in
 * "." is absolute; a name equal to the zone or ending in ".<zone>" is taken as
 * absolute too; anything else is relative to the zone ("www" -> www.<zone>).
 */
export function ownerName(zone: string, input: string, field = "name"): string {
  const raw = typeof input === "string" ? input.trim() : "";
  if (raw === "@") return zone;
  if (raw === "" || raw === ".") {
    throw new InvalidInput(field, `name is empty; use "@" for the apex or a name such as "www"`);
  }
  let name: string;
  try {
    const n = normaliseName(raw);
    name = raw.endsWith(".") || isInZone(n, zone) ? n : normaliseName(`${n}.${zone}`);
  } catch (err) {
    throw new InvalidInput(field, (err as NameError).message);
  }
  if (!isInZone(name, zone)) {
    throw new InvalidInput(
      field,
      `"${input}" is outside zone "${zone}"; use a name under it, a relative name, or "@" for the apex`,
    );
  }
  return name;
}

/** The path of `key` inside the entry at `f` ("" for a single-RRset request). */
function sub(f: string, key: string): string {
  return f ? `${f}.${key}` : key;
}

function rrType(input: string, field: string): RRType {
  const type = typeof input === "string" ? toRRType(input) : undefined;
  if (!type)
    throw new InvalidInput(field, `unsupported type "${input}"; use one of ${RR_TYPES.join(", ")}`);
  return type;
}

function firstIssue(err: unknown): string {
  if (err instanceof z.ZodError) return err.issues[0]?.message ?? "invalid value";
  if (err instanceof NameError) return err.message;
  throw err;
}

/** Validates one RRset (owner name already resolved): TTL, rdata, per-type rules. */
function buildRRset(
  zone: string,
  name: string,
  type: RRType,
  input: RRsetOp,
  defaultTtl: number,
  f: string,
): RRset {
  const ttl = input.ttl ?? defaultTtl;
  const parsedTtl = ttlSchema.safeParse(ttl);
  if (!parsedTtl.success)
    throw new InvalidInput(sub(f, "ttl"), "expected an integer from 0 to 2147483647 (RFC 2181 §8)");
  if (!Array.isArray(input.data) || input.data.length === 0) {
    throw new InvalidInput(
      sub(f, "data"),
      "at least one record is needed; to remove an RRset, delete it",
    );
  }
  const data = new Map<string, RData>();
  input.data.forEach((value, j) => {
    let rdata: RData;
    try {
      rdata = parseRData(type, value);
    } catch (err) {
      throw new InvalidInput(sub(f, `data[${j}]`), firstIssue(err));
    }
    // RFC 2181 §5: an RRset holds no duplicate records; repeats collapse.
    data.set(rdataKey(rdata), rdata);
  });
  if (type === "SOA" && name !== zone) {
    throw new InvalidInput(
      sub(f, "name"),
      `an SOA may only be at the zone apex "${zone}" (use "@")`,
    );
  }
  if ((type === "SOA" || type === "CNAME") && data.size > 1) {
    // RFC 1035 §5.2 (one SOA per zone), RFC 2181 §10.1 (one CNAME per name).
    throw new InvalidInput(sub(f, "data"), `a ${type} RRset holds exactly one record`);
  }
  return { name, type, ttl: parsedTtl.data, data: [...data.values()] } as RRset;
}

/** Comparable form of one rdata; names compare case-insensitively (RFC 4343). */
function rdataKey(data: RData): string {
  return typeof data === "string" ? data.toLowerCase() : JSON.stringify(data);
}

/** RFC 1034 §3.6.2, RFC 2181 §10.1: a CNAME owner has no other data. */
function checkCname(name: string, types: Iterable<RRType>, field: string): void {
  const set = new Set(types);
  if (set.has("CNAME") && set.size > 1) {
    const others = [...set].filter((t) => t !== "CNAME").join(", ");
    throw new InvalidInput(
      field,
      `a CNAME cannot coexist with other data at "${name}" (it has ${others}; RFC 1034 §3.6.2); delete those in the same batch or use another name`,
    );
  }
}

function defaultSoa(zone: string, given: Partial<SoaData> | undefined): SoaData {
  const soa = {
    mname: `ns1.${zone}`,
    rname: `hostmaster.${zone}`,
    serial: 1,
    refresh: 3600,
    retry: 600,
    expire: 604_800,
    // RFC 2308 §4: the negative-caching TTL.
    minimum: 300,
    ...given,
  };
  try {
    return parseRData("SOA", soa);
  } catch (err) {
    throw new InvalidInput("soa", firstIssue(err));
  }
}

/** A new zone: its RRsets, each stamped with its starting serial, and why that serial if not the one asked for. */
export interface PlannedZone {
  rrsets: RRset[];
  serial: number;
  note?: string;
}

/**
 * The RRsets of a new zone. `tombstone` is the last serial of a deleted zone
 * of the same name: a starting serial not above it (RFC 1982) continues from
 * it instead, because caches keep version floors per zone name, and an
 * answer below a floor is refetched and never cached.
 */
export function planCreate(
  zone: string,
  config: ZoneConfig,
  input: ZoneInput,
  tombstone?: number,
): PlannedZone {
  const sets = new Map<string, RRset>();
  const fields = new Map<string, string>();
  input.rrsets.forEach((entry, i) => {
    const f = entry.field ?? `rrsets[${i}]`;
    const name = ownerName(zone, entry.name, sub(f, "name"));
    const type = rrType(entry.type, sub(f, "type"));
    const key = rrsetKey(name, type);
    if (sets.has(key))
      throw new InvalidInput(f, `${type} at "${name}" is given twice; merge its records`);
    sets.set(key, buildRRset(zone, name, type, { ...entry, changetype: "REPLACE" }, config.ttl, f));
    fields.set(name, sub(f, "type"));
  });
  let soa = sets.get(rrsetKey(zone, "SOA")) as RRset<"SOA"> | undefined;
  if (soa && input.soa)
    throw new InvalidInput("soa", "the SOA is given twice: in rrsets and as soa; keep one");
  soa ??= { name: zone, type: "SOA", ttl: config.ttl, data: [defaultSoa(zone, input.soa)] };
  sets.set(rrsetKey(zone, "SOA"), soa);
  const byName = new Map<string, RRType[]>();
  for (const s of sets.values()) byName.set(s.name, [...(byName.get(s.name) ?? []), s.type]);
  for (const [name, types] of byName) checkCname(name, types, fields.get(name) ?? "rrsets");
  let serial = soa.data[0]!.serial;
  let note: string | undefined;
  if (tombstone !== undefined && !serialGt(serial, tombstone)) {
    serial = serialNext(tombstone);
    sets.set(rrsetKey(zone, "SOA"), { ...soa, data: [{ ...soa.data[0]!, serial }] });
    note =
      `zone ${zone} existed before at serial ${tombstone}; its serials continue from ${serial} ` +
      `so that caches' version floors keep working`;
  }
  const rrsets = [...sets.values()].map((s) => ({ ...s, version: serial }));
  return note === undefined ? { rrsets, serial } : { rrsets, serial, note };
}

/**
 * The changes of one batch against the zone's head, plus the new SOA: the
 * serial increments (RFC 1982), or takes a client's SOA serial that is ahead.
 */
export function planUpdate(state: ZoneState, ops: readonly RRsetOp[]): RRsetChange[] {
  const zone = state.zone;
  const next = new Map<string, RRsetChange>();
  const fields = new Map<string, string>();
  ops.forEach((op, i) => {
    const f = op.field ?? `rrsets[${i}]`;
    const name = ownerName(zone.name, op.name, sub(f, "name"));
    const type = rrType(op.type, sub(f, "type"));
    const key = rrsetKey(name, type);
    if (next.has(key))
      throw new InvalidInput(
        f,
        `${type} at "${name}" appears twice in one batch; merge the entries`,
      );
    fields.set(name, sub(f, "type"));
    if (op.changetype === "DELETE") {
      if (type === "SOA")
        throw new InvalidInput(
          sub(f, "type"),
          "the SOA cannot be deleted; delete the zone instead",
        );
      if (op.mustExist && !zone.get(name, type)) throw new RRsetNotFound(name, type);
      next.set(key, { name, type, rrset: null });
    } else {
      next.set(key, {
        name,
        type,
        rrset: buildRRset(zone.name, name, type, op, state.config.ttl, f),
      });
    }
  });
  // The batch's changes by owner, so a batch of N names costs O(N), not O(N²).
  const byName = new Map<string, RRsetChange[]>();
  for (const c of next.values()) {
    const list = byName.get(c.name);
    if (list) list.push(c);
    else byName.set(c.name, [c]);
  }
  for (const [name, field] of fields) {
    const types = new Set(zone.at(name).map((s) => s.type));
    for (const c of byName.get(name) ?? []) {
      if (c.rrset) types.add(c.type);
      else types.delete(c.type);
    }
    checkCname(name, types, field);
  }
  const serial = nextSerial(
    zone.soaData,
    next.get(rrsetKey(zone.name, "SOA"))?.rrset as RRset<"SOA"> | undefined,
  );
  const soaBase =
    (next.get(rrsetKey(zone.name, "SOA"))?.rrset as RRset<"SOA"> | undefined) ?? zone.soa;
  const soa: RRset<"SOA"> = { ...soaBase, data: [{ ...soaBase.data[0]!, serial }] };
  next.set(rrsetKey(zone.name, "SOA"), { name: zone.name, type: "SOA", rrset: soa });
  return [...next.values()].map((c) =>
    c.rrset ? { ...c, rrset: { ...c.rrset, version: serial } } : c,
  );
}

function nextSerial(current: SoaData, given: RRset<"SOA"> | undefined): number {
  const asked = given?.data[0]?.serial;
  return asked !== undefined && serialGt(asked, current.serial)
    ? asked
    : serialNext(current.serial);
}
