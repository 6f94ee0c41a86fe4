/**
 * Turns an upstream response into a stored answer: the response's own bytes,
 * normalised once (ID 0, lower-case question, no OPT, one TTL per RRset, the
 * HTTP Age subtracted, TTL clamps applied), plus the offsets of every TTL
 * field so the hot path can count them down without decoding.
 */
import * as packet from "dns-packet";
import { RecentBytes } from "../core/memo.ts";
import { MAX_TTL as MAX, type RRset } from "../core/records.ts";
import { rrsetToAnswers } from "../core/wire.ts";
import {
  HEADER_LEN,
  RCODE,
  type RecordHeader,
  readName,
  readRecords,
  TYPE_OPT,
  TYPE_SOA,
  WireError,
} from "./message.ts";

export class UpstreamError extends Error {
  override readonly name = "UpstreamError";
}

export interface TtlPolicy {
  /** Positive RRset TTLs are raised to at least this (seconds). */
  minTtl: number;
  /** Positive RRset TTLs are lowered to at most this (seconds). */
  maxTtl: number;
  /** Cap on negative caching (RFC 2308 §5), like Unbound's cache-max-negative-ttl. */
  maxNegativeTtl: number;
}

export interface StoredAnswer {
  /** ID 0, QR and RA set, RD clear (patched per query), no OPT. */
  wire: Buffer;
  /**
   * Offsets of the TTL fields; `wire` holds the TTL each had when stored. A
   * plain array of small integers and no copy of the TTLs: per entry that is
   * far less memory than two typed arrays (bench/cache-memory.ts).
   */
  ttlAt: number[];
  rcode: number;
  /** NXDOMAIN or NODATA (RFC 2308 §1). */
  negative: boolean;
  /** Seconds the answer may be served fresh; 0 = do not cache. */
  ttl: number;
  /**
   * Seconds the answer was already past its TTL when it arrived (Age > TTL):
   * an HTTP cache on the path answered with its stale copy (RFC 5861
   * stale-while-revalidate or stale-if-error). Caches round Age up (RFC 9111
   * §5.1), so Age = TTL may still be fresh by a fraction of a second and does
   * not count; nor does TTL 0 (RFC 1035 §3.2.1: not cached at all).
   * Undefined when it arrived fresh.
   */
  staleness: number | undefined;
  /** Owner names this answer depends on (the question and every answer owner), for purge by name. */
  owners: string[];
  /** Every answer record is (question name, QTYPE): no CNAME chain, so a pushed RRset can replace it. */
  direct: boolean;
}

/** RFC 2181 §8: a TTL with the top bit set is treated as zero. */
function readTtl(msg: Buffer, at: number): number {
  const v = msg.readUInt32BE(at);
  return v > 0x7fffffff ? 0 : v;
}

/**
 * Builds the stored form of `response`, the upstream's answer to (`name`, `qtype`).
 * `age` is the seconds the response already spent in HTTP caches (RFC 8484 §5.1).
 */
export function storeAnswer(
  response: Buffer,
  name: Buffer,
  qtype: number,
  age: number,
  policy: TtlPolicy,
): StoredAnswer {
  const msg = Buffer.from(response);
  checkResponse(msg, name, qtype);
  name.copy(msg, HEADER_LEN);
  const p = parsedOf(msg, qtype);
  let wire = msg;
  if (p.cut >= 0) {
    // Additional records are optional: dropping the OPT and what follows keeps every pointer valid.
    wire = msg.subarray(0, p.cut);
    wire.writeUInt16BE(p.arCount, 10);
  }
  const { negative, lifetime } = p;

  // RFC 2181 §5.2: every record of an RRset gets the RRset's lowest TTL.
  const setTtl = p.setMin.map((t) => {
    const left = Math.max(0, t - age);
    return negative ? left : Math.min(policy.maxTtl, Math.max(policy.minTtl, left));
  });
  let ttl: number;
  if (negative) {
    ttl = lifetime === undefined ? 0 : Math.min(policy.maxNegativeTtl, Math.max(0, lifetime - age));
    for (const k of p.soaSets) setTtl[k] = ttl;
  } else {
    ttl = MAX;
    for (const k of p.answerSets) ttl = Math.min(ttl, setTtl[k]!);
  }
  const staleness = lifetime && age > lifetime ? age - lifetime : undefined;

  const ttlAt = p.ttlAt.slice();
  for (let i = 0; i < ttlAt.length; i++) wire.writeUInt32BE(setTtl[p.setOf[i]!]!, ttlAt[i]!);
  wire.writeUInt16BE(0, 0);
  wire[2] = 0x80; // QR; opcode QUERY; AA, TC and RD clear
  wire[3] = 0x80 | p.rcode; // RA (we recurse, within the served zones)
  return {
    wire,
    ttlAt,
    rcode: p.rcode,
    negative,
    ttl,
    staleness,
    owners: p.owners.slice(),
    direct: p.direct,
  };
}

/**
 * What `storeAnswer` reads of a response that depends on its bytes and
 * QTYPE alone, not on the Age or the TTL policy: its records, which RRset
 * each belongs to and the RRset's lowest TTL, its negative lifetime, its
 * owners. Decoding names is most of a store's cost, and a simulator's
 * resolvers store the same upstream bytes thousands of times (every
 * resolver under an edge refreshes from the same stored body), so the last
 * few are kept by their bytes (`PARSED`).
 */
interface Parsed {
  rcode: number;
  /** Where the OPT record starts (the wire is cut there), or -1. */
  cut: number;
  /** ARCOUNT once the OPT and what follows it are cut. */
  arCount: number;
  negative: boolean;
  /** The freshness lifetime the upstream's TTLs gave, before Age and clamps. */
  lifetime: number | undefined;
  /** Per record kept: its TTL field's offset, and its RRset's index. */
  ttlAt: number[];
  setOf: number[];
  /** Per RRset: the lowest TTL its records carry. */
  setMin: number[];
  /** RRsets of the answer section; SOA RRsets of the authority section. */
  answerSets: number[];
  soaSets: number[];
  owners: string[];
  direct: boolean;
}

/**
 * Responses parsed lately, by their bytes; a handful is enough for the
 * simulator's few versions. The bytes hold the question, which
 * `checkResponse` has matched to the QTYPE, so equal bytes parse alike.
 */
const PARSED = new RecentBytes<Parsed>(8);

/** Drops the responses parsed lately (tests: a store that parses afresh). */
export function forgetParsedAnswers(): void {
  PARSED.clear();
}

function parsedOf(msg: Buffer, qtype: number): Parsed {
  let p = PARSED.get(msg);
  if (p === undefined) {
    p = parse(msg, qtype);
    PARSED.set(msg, p);
  }
  return p;
}

function parse(msg: Buffer, qtype: number): Parsed {
  let records = readRecords(msg);
  const opt = records.findIndex((r) => r.type === TYPE_OPT);
  let cut = -1;
  let arCount = 0;
  let wire = msg;
  if (opt >= 0) {
    cut = records[opt]!.start;
    wire = msg.subarray(0, cut);
    arCount = records.slice(0, opt).filter((r) => r.section === 2).length;
    records = records.slice(0, opt);
  }
  const rcode = msg[3]! & 0x0f;
  const negative = rcode === RCODE.NXDOMAIN || !records.some((r) => r.section === 0);
  const sets = new Map<string, number>();
  const setMin: number[] = [];
  const setOf = records.map((r) => {
    const key = `${r.section}|${readName(wire, r.start)}|${r.type}|${r.klass}`;
    const t = readTtl(wire, r.ttlAt);
    let k = sets.get(key);
    if (k === undefined) {
      k = setMin.length;
      sets.set(key, k);
      setMin.push(t);
    } else setMin[k] = Math.min(setMin[k]!, t);
    return k;
  });
  const answerSets: number[] = [];
  const soaSets: number[] = [];
  let lifetime: number | undefined;
  if (negative) {
    lifetime = negativeLifetime(wire, records);
    records.forEach((r, i) => {
      if (r.section === 1 && r.type === TYPE_SOA) soaSets.push(setOf[i]!);
    });
  } else {
    lifetime = MAX;
    records.forEach((r, i) => {
      if (r.section !== 0) return;
      answerSets.push(setOf[i]!);
      lifetime = Math.min(lifetime!, readTtl(wire, r.ttlAt));
    });
  }
  const { owners, direct } = ownersOf(wire, qtype, records);
  return {
    rcode,
    cut,
    arCount,
    negative,
    lifetime,
    ttlAt: records.map((r) => r.ttlAt),
    setOf,
    setMin,
    answerSets,
    soaSets,
    owners,
    direct,
  };
}

/**
 * The owner names a stored answer depends on (its question name, then every
 * answer owner, once each) and whether it is `direct` (every answer record
 * is the question's name and type). Read back from the wire, so storage
 * need not keep them (resolver/storage-lru.ts).
 */
export function ownersOf(
  wire: Buffer,
  qtype: number,
  records: readonly RecordHeader[] = readRecords(wire),
): { owners: string[]; direct: boolean } {
  const qname = readName(wire, HEADER_LEN);
  const owners = new Set([qname]);
  let direct = true;
  for (const r of records) {
    if (r.section !== 0) continue;
    const owner = readName(wire, r.start);
    owners.add(owner);
    if (owner !== qname || r.type !== qtype) direct = false;
  }
  return { owners: [...owners], direct };
}

function checkResponse(msg: Buffer, name: Buffer, qtype: number): void {
  if (msg.length < HEADER_LEN || !(msg[2]! & 0x80)) {
    throw new UpstreamError("upstream sent something that is not a DNS response");
  }
  if (msg[2]! & 0x02) throw new UpstreamError("upstream response is truncated (TC)");
  const rcode = msg[3]! & 0x0f;
  if (rcode !== RCODE.NOERROR && rcode !== RCODE.NXDOMAIN) {
    throw new UpstreamError(`upstream answered rcode ${rcode}`);
  }
  const end = HEADER_LEN + name.length;
  const same =
    msg.readUInt16BE(4) === 1 &&
    end + 4 <= msg.length &&
    questionIs(msg, name) &&
    msg.readUInt16BE(end) === qtype;
  if (!same) throw new UpstreamError("upstream response answers a different question");
}

/**
 * The question name at HEADER_LEN is `name` (lower case) but for the case
 * of ASCII letters (RFC 4343 §3; the upstream may echo 0x20 mixed case),
 * compared octet by octet: no strings made per stored answer.
 */
function questionIs(msg: Buffer, name: Buffer): boolean {
  for (let i = 0; i < name.length; i++) {
    const b = msg[HEADER_LEN + i]!;
    if ((b >= 65 && b <= 90 ? b | 32 : b) !== name[i]) return false;
  }
  return true;
}

/**
 * RFC 2308 §5: a negative answer lives min(SOA TTL, SOA MINIMUM) (the caller
 * subtracts the Age and caps it). Without an SOA it is not cached: undefined.
 */
function negativeLifetime(
  wire: Buffer,
  records: ReturnType<typeof readRecords>,
): number | undefined {
  const soa = records.find((r) => r.section === 1 && r.type === TYPE_SOA);
  if (!soa) return undefined;
  if (soa.rdlength < 22) throw new WireError("SOA record data is truncated");
  // MINIMUM is the last of the SOA's five 32-bit fields.
  const minimum = readTtl(wire, soa.rdataAt + soa.rdlength - 4);
  return Math.min(readTtl(wire, soa.ttlAt), minimum);
}

/**
 * The stored answer a pushed RRset stands for: the response an authority
 * would give for (`name`, `qtype`) when `rrset` is its answer, normalised by
 * `storeAnswer` like any upstream response (TTL clamps included). Not the hot
 * path: one encode per pushed entry.
 */
export function answerFromRRset(
  rrset: RRset,
  name: Buffer,
  qtype: number,
  policy: TtlPolicy,
): StoredAnswer {
  const response = packet.encode({
    type: "response",
    id: 0,
    questions: [{ name: rrset.name, type: rrset.type, class: "IN" }],
    answers: rrsetToAnswers(rrset),
  });
  return storeAnswer(response, name, qtype, 0, policy);
}
