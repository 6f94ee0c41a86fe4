/**
 * The authoritative DNS message layer: bytes in, bytes out, never a throw.
 * Decodes with dns-packet, answers with resolveQuestion, and applies the wire
 * rules: FORMERR for malformed queries, NOTIMP for opcodes other than QUERY,
 * REFUSED for classes other than IN, EDNS0 (RFC 6891) with BADVERS and NSID
 * (RFC 5001), TC over UDP (RFC 2181 §9), and the question echoed byte for
 * byte so its letter case survives (0x20 case randomisation).
 */
import type { Answer, OptAnswer, Packet } from "dns-packet";
import dnsPacket from "dns-packet";
import type { RRset, RRType } from "../core/records.ts";
import {
  type AnswerCache,
  type CacheKey,
  cacheKey,
  existsKey,
  namesKey,
  readKey,
  renderCached,
} from "./answer-cache.ts";
import { type Resolution, resolveQuestion } from "./resolve.ts";
import { questionEnd } from "./xfr.ts";
import type { ZoneSource, ZoneView } from "./zone.ts";

export { MAX_CNAME_HOPS, type Resolution, resolveQuestion } from "./resolve.ts";

export interface AnswerOptions {
  /** Set for UDP: the most this server sends in one datagram; TC above the client's limit. */
  maxUdp?: number;
  /** RFC 5001: the name this node gives when a query asks for NSID. */
  nsid?: string;
  /** A zone whose data is no longer authoritative (a followed zone past EXPIRE): SERVFAIL. */
  expired?: (zone: string) => boolean;
  /**
   * Answers already made, as wire bytes (origin/answer-cache.ts); the caller
   * invalidates it on commit. Pass it only for unsigned queries.
   */
  cache?: AnswerCache<Resolution>;
  /**
   * The caller has just asked `cache` for this query (cachedAnswer said "miss"):
   * answer and store without asking again.
   */
  missed?: boolean;
}

export interface QueryAnswer {
  /** The response; empty when nothing must be sent. */
  wire: Buffer;
  resolution?: Resolution;
}

/** RFC 6891 §6.2.5 and DNS Flag Day 2020: the payload size we advertise. */
export const EDNS_PAYLOAD = 1232;
/** RFC 1035 §4.2.1: the limit without EDNS. */
const CLASSIC_UDP = 512;
/** We never send datagrams over this, whatever a client offers. */
export const MAX_EDNS_UDP = 4096;

const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
type Rcode = keyof typeof RCODE | "BADVERS";
const QR = 0x8000;
const AA = 0x0400;
const TC = 0x0200;
const RD = 0x0100;
const NSID = 3;
const CLASS_IN = 1;
const HEADER = 12;

interface Edns {
  udpSize: number;
  version: number;
  nsid: boolean;
}

/** What the reply needs from the query: ID, flags and the question bytes as sent. */
interface Request {
  id: number;
  opcode: number;
  rd: boolean;
  question?: Buffer;
  edns?: Edns;
}

export function answerQuery(
  query: Buffer,
  zones: ZoneSource,
  opts: AnswerOptions = {},
): QueryAnswer {
  const key = opts.cache && cacheKey(query);
  if (key && !opts.missed) {
    const hit = fromCache(query, key, opts.cache!, opts);
    if (hit) return hit;
  }
  // Too short to carry an ID: no client could match a reply.
  if (query.length < 2) return { wire: Buffer.alloc(0) };
  const id = query.readUInt16BE(0);
  if (query.length < HEADER) return { wire: reply({ id, opcode: 0, rd: false }, "FORMERR", opts) };
  const flags = query.readUInt16BE(2);
  // Never answer a response: two servers would bounce errors at each other forever.
  if (flags & QR) return { wire: Buffer.alloc(0) };
  const question = parseQuestion(query);
  const request: Request = { id, opcode: (flags >> 11) & 0xf, rd: (flags & RD) !== 0, ...question };
  if (request.opcode !== 0) return { wire: reply(request, "NOTIMP", opts) };
  if (!question) return { wire: reply(request, "FORMERR", opts) };
  if (question.edns && question.edns.version > 0) return { wire: reply(request, "BADVERS", opts) };
  if (question.qclass !== CLASS_IN) return { wire: reply(request, "REFUSED", opts) };

  // With a cache, resolve through a recorder: what the answer read is what invalidates it.
  const recorder = key ? new ReadRecorder(zones) : undefined;
  const resolution = resolveQuestion(recorder ?? zones, question.qname, question.qtype);
  // RFC 1035 §4.3.5: past EXPIRE a secondary's zone is not answered from its data (nor cached).
  if (resolution.zone !== undefined && opts.expired?.(resolution.zone))
    return { wire: reply(request, "SERVFAIL", opts) };
  const full = encode(request, resolution.rcode, opts, resolution);
  const truncated = () => encode(request, resolution.rcode, opts, resolution, true);
  if (key && recorder)
    remember(opts.cache!, key, query, recorder.deps, resolution, full, truncated());
  const fits = full.length <= udpLimit(request.edns?.udpSize, opts);
  return { wire: fits ? full : truncated(), resolution };
}

/** Stores an answer normalised to ID 0 and RD clear, with the reads it was built from. */
function remember(
  cache: AnswerCache<Resolution>,
  key: CacheKey,
  query: Buffer,
  deps: Set<string>,
  resolution: Resolution,
  full: Buffer,
  truncated: Buffer,
): void {
  const normal = (b: Buffer): Buffer => {
    const c = Buffer.from(b);
    c.writeUInt16BE(0, 0);
    c[2] = c[2]! & 0xfe;
    return c;
  };
  // The serial and version are the zone's when the answer was built; a positive answer
  // outlives later commits that do not touch it, so a hit reports neither rather than a stale one.
  const { rcode, aa, answers, authority, additional, zone, ttl } = resolution;
  cache.set(key, query, {
    wire: normal(full),
    truncated: normal(truncated),
    resolution: {
      rcode,
      aa,
      answers,
      authority,
      ttl,
      ...(additional && { additional }),
      ...(zone !== undefined && { zone }),
    },
    deps: [...deps],
  });
}

/**
 * A ZoneSource that notes every read resolveQuestion makes (origin/answer-cache.ts
 * explains the keys): the RRsets looked up, found or not; names listed whole
 * (ANY); names tested for existence; the SOA. The zone's `serial` alone is
 * metadata of the Resolution, never written into the answer's bytes (the SOA
 * record comes from `soa` or `get(apex, "SOA")`), so it is not a dependency.
 */
class ReadRecorder implements ZoneSource {
  readonly deps = new Set<string>();
  constructor(private readonly zones: ZoneSource) {}

  findZone(name: string): ZoneView | undefined {
    const zone = this.zones.findZone(name);
    return zone && new RecordedZone(zone, this.deps);
  }
}

class RecordedZone implements ZoneView {
  readonly name: string;
  constructor(
    private readonly zone: ZoneView,
    private readonly deps: Set<string>,
  ) {
    this.name = zone.name;
  }

  get serial(): number {
    return this.zone.serial;
  }

  get soa(): RRset<"SOA"> {
    this.deps.add(readKey(this.name, this.name, "SOA"));
    return this.zone.soa;
  }

  get<T extends RRType>(name: string, type: T): RRset<T> | undefined {
    this.deps.add(readKey(this.name, name, type));
    return this.zone.get(name, type);
  }

  at(name: string): RRset[] {
    this.deps.add(namesKey(this.name, name));
    return this.zone.at(name);
  }

  exists(name: string): boolean {
    const exists = this.zone.exists(name);
    this.deps.add(existsKey(this.name, name, exists));
    return exists;
  }
}

/**
 * The answer from `cache` when it holds one for this query; "miss" for a plain
 * query it can hold but does not (then answerQuery with `missed` makes it and
 * stores it); undefined for a query it never holds (signed, a transfer, NOTIFY,
 * odd sections). The hot path of the DNS server.
 */
export function cachedAnswer(
  query: Buffer,
  cache: AnswerCache<Resolution>,
  opts: AnswerOptions,
): QueryAnswer | "miss" | undefined {
  const key = cacheKey(query);
  if (!key) return undefined;
  return fromCache(query, key, cache, opts) ?? "miss";
}

function fromCache(
  query: Buffer,
  key: CacheKey,
  cache: AnswerCache<Resolution>,
  opts: AnswerOptions,
): QueryAnswer | undefined {
  const hit = cache.get(key, query);
  if (!hit) return undefined;
  // RFC 1035 §4.3.5: a zone past EXPIRE is answered SERVFAIL by the full path, whatever was
  // cached. Only a follower has zones that expire: the others never touch the resolution here.
  if (opts.expired !== undefined) {
    const zone = hit.resolution.zone;
    if (zone !== undefined && opts.expired(zone)) return undefined;
  }
  const stored = hit.wire.length <= udpLimit(key.udpSize, opts) ? hit.wire : hit.truncated;
  return { wire: renderCached(stored, query, key.nameEnd), resolution: hit.resolution };
}

interface Question {
  question: Buffer;
  qname: string;
  qtype: string;
  qclass: number;
  edns?: Edns;
}

/** Decodes a query with exactly one question; undefined when it is malformed (FORMERR). */
function parseQuestion(query: Buffer): Question | undefined {
  if (query.readUInt16BE(4) !== 1) return undefined;
  const end = questionEnd(query);
  if (end === undefined) return undefined;
  let packet: ReturnType<typeof dnsPacket.decode>;
  try {
    packet = dnsPacket.decode(query);
  } catch {
    return undefined;
  }
  const q = packet.questions?.[0];
  const opts = (packet.additionals ?? []).filter((a) => a.type === "OPT");
  // RFC 6891 §6.1.1: more than one OPT record is a FORMERR.
  if (!q || opts.length > 1) return undefined;
  const opt = opts[0] as OptAnswer | undefined;
  const edns = opt && {
    // RFC 6891 §6.2.5: values below 512 are treated as 512.
    udpSize: Math.max(CLASSIC_UDP, opt.udpPayloadSize),
    version: opt.ednsVersion,
    nsid: (opt.options as { code: number }[]).some((o) => o.code === NSID),
  };
  return {
    question: query.subarray(HEADER, end),
    qname: q.name,
    qtype: q.type,
    qclass: query.readUInt16BE(end - 2),
    ...(edns ? { edns } : {}),
  };
}

function reply(
  request: Request,
  rcode: Rcode,
  opts: AnswerOptions,
  resolution?: Resolution,
): Buffer {
  const full = encode(request, rcode, opts, resolution);
  const limit = udpLimit(request.edns?.udpSize, opts);
  if (full.length <= limit) return full;
  // RFC 2181 §9: what does not fit is dropped whole and TC set; the client retries over TCP.
  return encode(request, rcode, opts, resolution, true);
}

/** `ednsSize` is the client's EDNS UDP size, undefined without EDNS. */
function udpLimit(ednsSize: number | undefined, opts: AnswerOptions): number {
  if (opts.maxUdp === undefined) return Number.POSITIVE_INFINITY;
  const client =
    ednsSize === undefined ? CLASSIC_UDP : Math.min(Math.max(CLASSIC_UDP, ednsSize), MAX_EDNS_UDP);
  return Math.min(client, Math.max(CLASSIC_UDP, opts.maxUdp));
}

function encode(
  request: Request,
  rcode: Rcode,
  opts: AnswerOptions,
  resolution: Resolution | undefined,
  truncated = false,
): Buffer {
  const aa = resolution?.aa ? AA : 0;
  const code = rcode === "BADVERS" ? 0 : RCODE[rcode];
  const packet: Packet = {
    type: "response",
    id: request.id,
    flags: (request.opcode << 11) | aa | (truncated ? TC : 0) | (request.rd ? RD : 0) | code,
    questions: [],
    answers: truncated ? [] : (resolution?.answers ?? []),
    authorities: truncated ? [] : (resolution?.authority ?? []),
    additionals: [
      ...(truncated ? [] : (resolution?.additional ?? [])),
      ...optRecord(request, rcode, opts),
    ],
  };
  let body: Buffer;
  try {
    body = dnsPacket.encode(packet);
  } catch {
    // Data that dns-packet cannot encode is our fault, not the client's.
    if (rcode === "SERVFAIL") throw new Error("cannot encode even an empty SERVFAIL");
    return encode(request, "SERVFAIL", opts, undefined);
  }
  if (!request.question) return body;
  // Splice in the question exactly as the client sent it (dns-packet does not compress, so offsets hold).
  body.writeUInt16BE(1, 4);
  return Buffer.concat([body.subarray(0, HEADER), request.question, body.subarray(HEADER)]);
}

/** RFC 6891 §7: a response carries an OPT record when the query did. */
function optRecord(request: Request, rcode: Rcode, opts: AnswerOptions): Answer[] {
  if (!request.edns) return [];
  const options =
    request.edns.nsid && opts.nsid !== undefined
      ? [{ code: NSID, data: Buffer.from(opts.nsid) }]
      : [];
  return [
    {
      name: ".",
      type: "OPT",
      udpPayloadSize: EDNS_PAYLOAD,
      // RFC 6891 §6.1.3: BADVERS is extended RCODE 16, upper 8 bits = 1.
      extendedRcode: rcode === "BADVERS" ? 1 : 0,
      ednsVersion: 0,
      flags: 0,
      flag_do: false,
      options,
    } as unknown as Answer,
  ];
}
