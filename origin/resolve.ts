/**
 * Authoritative answering as pure policy over a ZoneSource (RFC 1034 §4.3.2),
 * shared by the DNS server and the HTTP reads: exact matches, CNAME chains
 * (RFC 1034 §3.6.2) inside and across the zones served, wildcards (RFC 4592
 * §3.3.1), referrals at delegations below the apex, NXDOMAIN and NODATA with
 * the SOA and its negative TTL (RFC 2308 §3), empty non-terminals as NODATA
 * (RFC 8020), and ANY answered with one RRset (RFC 8482 §4.2).
 */
import type { Answer } from "dns-packet";
import { isInZone, parentName, tryNormaliseName } from "../core/names.ts";
import type { RRset, RRType } from "../core/records.ts";
import { RR_TYPES } from "../core/records.ts";
import { serialMax } from "../core/serial.ts";
import { rrsetToAnswers } from "../core/wire.ts";
import type { ZoneSource, ZoneView } from "./zone.ts";

export type ResolutionRcode = "NOERROR" | "NXDOMAIN" | "REFUSED";

export interface Resolution {
  rcode: ResolutionRcode;
  /** RFC 1035 §4.1.1: set when the answer comes from our zone data, not a referral. */
  aa: boolean;
  answers: Answer[];
  authority: Answer[];
  additional?: Answer[];
  /** The zone that holds the query name. */
  zone?: string;
  /** That zone's SOA serial. */
  serial?: number;
  /** How long the answer may be cached: the minimum TTL of the answer, or the negative TTL. */
  ttl: number;
  /** The newest RRset version in the answer (the zone serial for negative answers). */
  version?: number;
}

/** Bounds a CNAME chain; longer chains, and loops, end with what was found so far. */
export const MAX_CNAME_HOPS = 8;

/** Zone transfers are served as zone files over HTTP, not over DNS. */
const TRANSFER_TYPES = new Set(["AXFR", "IXFR"]);

type Step =
  | { kind: "answer"; sets: RRset[] }
  | { kind: "cname"; set: RRset<"CNAME"> }
  | { kind: "referral"; ns: RRset<"NS"> }
  | { kind: "nodata" }
  | { kind: "nxdomain" };

export function resolveQuestion(zones: ZoneSource, name: string, type: string): Resolution {
  const qtype = type.toUpperCase();
  const qname = tryNormaliseName(name);
  const first = zones.findZone(qname ?? validSuffix(name));
  if (!first || TRANSFER_TYPES.has(qtype)) {
    return { rcode: "REFUSED", aa: false, answers: [], authority: [], ttl: 0 };
  }
  // A name no zone can hold (bad characters, overlong) does not exist in the zone it falls under.
  if (qname === undefined) {
    return {
      zone: first.name,
      serial: first.serial,
      ...negative(first, []),
      rcode: "NXDOMAIN",
      answers: [],
    };
  }

  const answers: Answer[] = [];
  const answered: RRset[] = [];
  const seen = new Set<string>();
  // Each answer names the first zone and its serial as its own first fields,
  // not as a spread of them: on Node 20 a literal that starts with a spread
  // and then adds fields takes V8's slow path (a hidden class made and
  // migrated per object, core/objects.ts), ~8 us of a resolution; own fields
  // first, a spread after them, is fast.
  let zone: ZoneView = first;
  let current = qname;
  for (let hop = 0; ; hop++) {
    seen.add(current);
    const step = lookup(zone, current, qtype);
    if (step.kind === "answer") {
      for (const set of step.sets) answers.push(...rrsetToAnswers(set));
      answered.push(...step.sets);
      return {
        zone: first.name,
        serial: first.serial,
        ...positive(answered, zone),
        rcode: "NOERROR",
        aa: true,
        answers,
        authority: [],
      };
    }
    if (step.kind === "referral") {
      // RFC 1034 §4.3.2 step 3b: a referral is not authoritative data; only a CNAME found before it is.
      const additional = addressesFor(zone, step.ns.data);
      return {
        zone: first.name,
        serial: first.serial,
        rcode: "NOERROR",
        aa: answers.length > 0,
        answers,
        authority: rrsetToAnswers(step.ns),
        ...(additional.length ? { additional } : {}),
        ttl: Math.min(step.ns.ttl, ...answered.map((s) => s.ttl)),
        version: maxVersion([...answered, step.ns], zone),
      };
    }
    if (step.kind === "nodata" || step.kind === "nxdomain") {
      return {
        zone: first.name,
        serial: first.serial,
        ...negative(zone, answered),
        rcode: step.kind === "nxdomain" ? "NXDOMAIN" : "NOERROR",
        answers,
      };
    }
    answers.push(...rrsetToAnswers(step.set));
    answered.push(step.set);
    const target = step.set.data[0]!;
    const next = zones.findZone(target);
    // The chain leaves our data, loops, or runs too long: the client's resolver takes over from here.
    if (!next || seen.has(target) || hop + 1 >= MAX_CNAME_HOPS) {
      return {
        zone: first.name,
        serial: first.serial,
        ...positive(answered, zone),
        rcode: "NOERROR",
        aa: true,
        answers,
        authority: [],
      };
    }
    zone = next;
    current = target;
  }
}

/** The longest valid suffix of an invalid name, to find the zone it falls under. */
function validSuffix(name: string): string {
  const labels = name.split(".");
  for (let i = 1; i < labels.length; i++) {
    const suffix = tryNormaliseName(labels.slice(i).join("."));
    if (suffix !== undefined) return suffix;
  }
  return "";
}

function lookup(zone: ZoneView, name: string, qtype: string): Step {
  const cut = delegation(zone, name);
  if (cut) return { kind: "referral", ns: cut };
  if (zone.exists(name)) return match(zone, name, name, qtype);
  // RFC 4592 §3.3.1: a name that does not exist matches "*" below its closest encloser.
  let encloser = parentName(name);
  while (!zone.exists(encloser) && encloser !== zone.name) encloser = parentName(encloser);
  const source = encloser === "" ? "*" : `*.${encloser}`;
  if (zone.exists(source)) return match(zone, source, name, qtype);
  return { kind: "nxdomain" };
}

/** The data at `owner` for qtype, renamed to `name` (differs for wildcard synthesis). */
function match(zone: ZoneView, owner: string, name: string, qtype: string): Step {
  const rename = <T extends RRType>(set: RRset<T>): RRset<T> =>
    owner === name ? set : { ...set, name };
  if (qtype === "ANY") {
    // RFC 8482 §4.2: answer with one RRset the name owns, chosen stably.
    const sets = [...zone.at(owner)].sort(
      (a, b) => RR_TYPES.indexOf(a.type) - RR_TYPES.indexOf(b.type),
    );
    return sets[0] ? { kind: "answer", sets: [rename(sets[0])] } : { kind: "nodata" };
  }
  const exact = (RR_TYPES as readonly string[]).includes(qtype)
    ? zone.get(owner, qtype as RRType)
    : undefined;
  if (exact) return { kind: "answer", sets: [rename(exact)] };
  const cname = zone.get(owner, "CNAME");
  if (cname) return { kind: "cname", set: rename(cname) };
  return { kind: "nodata" };
}

/** RFC 1034 §4.3.2 step 3b: NS records at or above `name`, below the apex, cut the zone there. */
function delegation(zone: ZoneView, name: string): RRset<"NS"> | undefined {
  if (name === zone.name || !isInZone(name, zone.name)) return undefined;
  const between: string[] = [];
  for (let n = name; n !== zone.name; n = parentName(n)) between.push(n);
  for (const cut of between.reverse()) {
    const ns = zone.get(cut, "NS");
    if (ns) return ns;
  }
  return undefined;
}

function positive(
  answered: RRset[],
  zone: ZoneView,
): { ttl: number; version: number; additional?: Answer[] } {
  const targets = answered.flatMap((set) => additionalTargets(set));
  const additional = addressesFor(zone, targets);
  return {
    ttl: Math.min(...answered.map((s) => s.ttl)),
    version: maxVersion(answered, zone),
    ...(additional.length ? { additional } : {}),
  };
}

/** RFC 2308 §3: the SOA goes in the authority section with TTL min(SOA TTL, SOA MINIMUM). */
function negative(
  zone: ZoneView,
  answered: RRset[],
): Pick<Resolution, "aa" | "authority" | "ttl" | "version"> {
  const soa = zone.soa;
  const negativeTtl = Math.min(soa.ttl, soa.data[0]!.minimum);
  return {
    aa: true,
    authority: rrsetToAnswers(soa, negativeTtl),
    ttl: Math.min(negativeTtl, ...answered.map((s) => s.ttl)),
    version: maxVersion(answered, zone, zone.serial),
  };
}

function maxVersion(sets: RRset[], zone: ZoneView, ...also: number[]): number {
  // RFC 1982 §3.2 order, not numeric: after a wrap, serial 2 is newer than 2^32 - 1.
  return [...also, ...sets.map((s) => s.version ?? zone.serial)].reduce(serialMax);
}

/** RFC 1035 §3.3.9, §3.3.11 and RFC 2782: names whose addresses help the client. */
function additionalTargets(set: RRset): string[] {
  if (set.type === "MX") return (set as RRset<"MX">).data.map((d) => d.exchange);
  if (set.type === "SRV") return (set as RRset<"SRV">).data.map((d) => d.target);
  if (set.type === "NS") return (set as RRset<"NS">).data;
  return [];
}

/** A and AAAA records of the targets that lie in the zone (glue included). */
function addressesFor(zone: ZoneView, targets: string[]): Answer[] {
  const out: Answer[] = [];
  for (const target of new Set(targets)) {
    if (!isInZone(target, zone.name)) continue;
    for (const type of ["A", "AAAA"] as const) {
      const set = zone.get(target, type);
      if (set) out.push(...rrsetToAnswers(set));
    }
  }
  return out;
}
