/**
 * One DNS query in, one answer out: parse the query minimally, refuse what is
 * not ours to serve, answer from the cache policy through the wire patcher.
 * A cache hit stays synchronous end to end.
 */
import type { DnsHandler, Transport } from "../core/dns-transport.ts";
import { extend } from "../core/objects.ts";
import type { ResolverCache, Served } from "./cache.ts";
import { CLASS_IN, HEADER_LEN, RCODE, TYPE_OPT } from "./message.ts";
import { type Edns, parseQuery, type Query, TYPE_ANY } from "./query.ts";
import {
  EDE,
  hinfoRfc8482,
  renderAnswer,
  renderRefusal,
  renderStored,
  renderSynthesized,
  type WireOptions,
} from "./wire.ts";

export interface HandlerOptions {
  /** Zones the resolver answers for (normalised names); anything else is REFUSED. */
  zones: readonly string[];
  wire: WireOptions;
  staleTtl: number;
}

/** RFC 8482 §4.2 leaves the synthesized record's TTL open; an hour keeps repeated ANY cheap. */
const ANY_TTL = 3600;

export interface HandlerMetrics {
  queries: number;
  dropped: number;
  /** Answers sent, indexed by RCODE (extended RCODEs included). */
  rcodes: number[];
}

export interface Handler {
  handler: DnsHandler;
  metrics: HandlerMetrics;
  /** Replaces the zones answered (normalised names); names outside them get REFUSED from now on. */
  setZones(zones: readonly string[]): void;
}

export function createHandler(cache: ResolverCache, opts: HandlerOptions): Handler {
  const metrics: HandlerMetrics = { queries: 0, dropped: 0, rcodes: new Array(4096).fill(0) };
  let zones = opts.zones.map(toWire);
  const hinfo = hinfoRfc8482(ANY_TTL);
  const { rcodes } = metrics;
  const store = cache.store;

  // Defined once, not per query: the hit path allocates no closures.
  const render = (s: Served, msg: Buffer, q: Query, transport: Transport) => {
    rcodes[s.answer.rcode]!++;
    const staleTtl = s.stale ? opts.staleTtl : undefined;
    return renderAnswer(s.answer, s.elapsed, staleTtl, msg, q, transport, opts.wire);
  };

  const handler: DnsHandler = (msg, info) => {
    metrics.queries++;
    // The common shape answered from the cache without parseQuery's copies and objects.
    if (readPlainQuery(msg, zones)) {
      const slot = cache.hitInQuery(msg, plain.nameEnd, plain.qtype);
      if (slot >= 0) {
        rcodes[store.rcode(slot)]!++;
        const elapsed = cache.hitElapsed;
        return renderStored(store, slot, elapsed, undefined, msg, plain, info.transport, opts.wire);
      }
    }
    const parsed = parseQuery(msg);
    if (!parsed) {
      metrics.dropped++;
      return undefined;
    }
    if ("refusal" in parsed) {
      rcodes[parsed.refusal.rcode]!++;
      return renderRefusal(msg, parsed.refusal, opts.wire);
    }
    const q = parsed.query;
    if (!inAnyZone(q, zones)) {
      rcodes[RCODE.REFUSED]!++;
      const reason = "outside the served zones";
      return renderRefusal(msg, extend(q, { rcode: RCODE.REFUSED, reason }), opts.wire);
    }
    if (q.qtype === TYPE_ANY) {
      rcodes[RCODE.NOERROR]!++;
      return renderSynthesized(msg, q, RCODE.NOERROR, hinfo, opts.wire);
    }
    // A fresh hit renders straight from the storage's slab: no object per query.
    const slot = cache.hit(q.name, q.qtype, q.key);
    if (slot >= 0) {
      rcodes[store.rcode(slot)]!++;
      return renderStored(
        store,
        slot,
        cache.hitElapsed,
        undefined,
        msg,
        q,
        info.transport,
        opts.wire,
      );
    }
    const served = cache.lookup(q.key, q.name, q.qtype);
    if (!(served instanceof Promise)) return render(served, msg, q, info.transport);
    // The policy has counted and reported the upstream failure; the client gets SERVFAIL with EDE 22.
    return served.then(
      (s) => render(s, msg, q, info.transport),
      () => {
        rcodes[RCODE.SERVFAIL]!++;
        return renderSynthesized(
          msg,
          q,
          RCODE.SERVFAIL,
          undefined,
          opts.wire,
          EDE.NO_REACHABLE_AUTHORITY,
        );
      },
    );
  };
  const setZones = (names: readonly string[]) => {
    zones = names.map(toWire);
  };
  return { handler, metrics, setZones };
}

/**
 * The fast path's parse, into one reused `Query` (the render reads it
 * synchronously and keeps nothing): true for a plain query of ours, the
 * shape nearly every client sends: QUERY, one question of class IN, no
 * answer or authority records, and either no additional record or one OPT
 * right after the question (version 0, well-formed options), the name within
 * a served zone, the type neither OPT, a zone transfer, MAILA/MAILB nor ANY.
 * Anything else is false and goes through `parseQuery`, which answers every
 * case (FORMERR, NOTIMP, BADVERS, REFUSED, RFC 8482). `name`, `labelStarts`
 * and `key` are not filled: the fast path does not use them.
 */
export function readPlainQuery(msg: Buffer, zones: readonly Buffer[]): boolean {
  const len = msg.length;
  // QR clear, opcode QUERY (RFC 1035 §4.1.1); QDCOUNT 1, ANCOUNT and NSCOUNT 0, ARCOUNT <= 1.
  if (len < 17 || (msg[2]! & 0xf8) !== 0) return false;
  if (msg[4] !== 0 || msg[5] !== 1 || msg[6] !== 0 || msg[7] !== 0 || msg[8] !== 0) return false;
  if (msg[9] !== 0 || msg[10] !== 0 || msg[11]! > 1) return false;
  let labels = 0;
  let pos = HEADER_LEN;
  for (;;) {
    const l = msg[pos];
    if (l === undefined || l > 63 || labels === LABEL_STARTS.length) return false;
    if (l === 0) break;
    LABEL_STARTS[labels++] = pos - HEADER_LEN;
    pos += 1 + l;
  }
  const nameEnd = pos + 1;
  if (nameEnd - HEADER_LEN > 255 || nameEnd + 4 > len) return false;
  const qtype = (msg[nameEnd]! << 8) | msg[nameEnd + 1]!;
  if (msg[nameEnd + 2] !== 0 || msg[nameEnd + 3] !== 1) return false;
  if (qtype === TYPE_OPT || (qtype >= 251 && qtype <= 255)) return false;
  let edns: Edns | undefined;
  if (msg[11] === 1) {
    // RFC 6891 §6.1.2: root owner, TYPE 41, and nothing after its RDATA.
    const at = nameEnd + 4;
    if (len < at + 11 || msg[at] !== 0 || msg[at + 1] !== 0 || msg[at + 2] !== TYPE_OPT)
      return false;
    const rdEnd = at + 11 + ((msg[at + 9]! << 8) | msg[at + 10]!);
    if (rdEnd !== len || msg[at + 6] !== 0) return false;
    let nsid = false;
    for (let off = at + 11; off < rdEnd; ) {
      if (off + 4 > rdEnd) return false;
      const end = off + 4 + ((msg[off + 2]! << 8) | msg[off + 3]!);
      if (end > rdEnd) return false;
      if (msg[off] === 0 && msg[off + 1] === OPTION_NSID) nsid = true;
      off = end;
    }
    edns = PLAIN_EDNS;
    edns.udpSize = Math.max(512, (msg[at + 3]! << 8) | msg[at + 4]!);
    edns.dnssecOk = (msg[at + 7]! & 0x80) !== 0;
    edns.nsid = nsid;
  }
  if (!inAnyZoneRaw(msg, nameEnd, labels, zones)) return false;
  plain.id = (msg[0]! << 8) | msg[1]!;
  plain.flags = msg[2]!;
  plain.nameEnd = nameEnd;
  plain.qtype = qtype;
  plain.edns = edns;
  return true;
}

const OPTION_NSID = 3;
/** A name of at most 255 octets has at most 127 labels. */
const LABEL_STARTS = new Int32Array(128);
const PLAIN_EDNS: Edns = { udpSize: 512, version: 0, dnssecOk: false, nsid: false };
const plain: Query = {
  id: 0,
  flags: 0,
  nameEnd: 0,
  name: Buffer.alloc(0),
  labelStarts: [],
  qtype: 0,
  qclass: CLASS_IN,
  key: "",
  edns: undefined,
};

/** `inAnyZone` on the name as the query carries it: ASCII case-insensitive. */
function inAnyZoneRaw(
  msg: Buffer,
  nameEnd: number,
  labels: number,
  zones: readonly Buffer[],
): boolean {
  const nameLen = nameEnd - HEADER_LEN;
  for (let z = 0; z < zones.length; z++) {
    const zone = zones[z]!;
    const off = nameLen - zone.length;
    if (off < 0) continue;
    let boundary = off === 0;
    for (let k = 0; k < labels && !boundary; k++) boundary = LABEL_STARTS[k] === off;
    if (!boundary) continue;
    let i = 0;
    for (; i < zone.length; i++) {
      const b = msg[HEADER_LEN + off + i]!;
      if ((b >= 0x41 && b <= 0x5a ? b | 0x20 : b) !== zone[i]) break;
    }
    if (i === zone.length) return true;
  }
  return false;
}

/** A normalised name in wire form (lower-case labels, root terminator). */
export function toWire(name: string): Buffer {
  const parts = name === "" ? [] : name.split(".");
  return Buffer.concat([
    ...parts.map((l) => Buffer.concat([Buffer.of(l.length), Buffer.from(l)])),
    Buffer.of(0),
  ]);
}

/** A loop, not `some()` with a closure: this runs for every query. */
function inAnyZone(q: Query, zones: readonly Buffer[]): boolean {
  for (let i = 0; i < zones.length; i++) if (inZone(q, zones[i]!)) return true;
  return false;
}

/** The question is the zone or below it: the zone's wire form ends the name at a label boundary. */
function inZone(q: Query, zone: Buffer): boolean {
  const { name } = q;
  const off = name.length - zone.length;
  if (off < 0 || (off > 0 && !q.labelStarts.includes(off))) return false;
  // Byte loop: zone names are short, Buffer.compare's argument checks cost more.
  for (let i = 0; i < zone.length; i++) if (name[off + i] !== zone[i]) return false;
  return true;
}
