/**
 * One DNS query in, one answer out: parse the query minimally, refuse what is
 * not ours to serve, answer from the cache policy through the wire patcher.
 * A cache hit stays synchronous end to end.
 */
import type { DnsHandler, Transport } from "../core/dns-transport.ts";
import type { ResolverCache, Served } from "./cache.ts";
import { RCODE } from "./message.ts";
import { parseQuery, type Query, TYPE_ANY } from "./query.ts";
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
      return renderRefusal(msg, { ...q, rcode: RCODE.REFUSED, reason }, opts.wire);
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
