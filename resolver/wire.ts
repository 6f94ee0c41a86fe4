/**
 * The hot path: an answer for one client, made from a stored answer by copying
 * its bytes and patching the ID, RD, the question's case (0x20) and every TTL
 * at offsets computed when it was stored. No decoding, no encoding. Also the
 * small hand-built answers: errors, RFC 8482 ANY, and TC truncation.
 */
import type { Transport } from "../core/dns-transport.ts";
import type { StoredAnswer } from "./answer.ts";
import { HEADER_LEN, TYPE_OPT } from "./message.ts";
import type { Edns, Query, Refusal } from "./query.ts";

/** RFC 8914 §4: Extended DNS Error codes used here. */
export const EDE = { STALE_ANSWER: 3, NO_REACHABLE_AUTHORITY: 22 } as const;
const OPTION_NSID = 3;
const OPTION_EDE = 15;
/** RFC 1035 §4.2.1: without EDNS a UDP answer is at most 512 octets. */
const CLASSIC_UDP = 512;
const TYPE_HINFO = 13;

export interface WireOptions {
  /** Largest UDP answer we send and the size we advertise in OPT (RFC 6891 §6.2.5; 1232 per DNS Flag Day 2020). */
  udpPayload: number;
  /** RFC 5001 NSID payload: the node id. */
  nsid: Buffer;
}

interface Extra {
  /** Extended DNS Error INFO-CODE to attach (only possible when the client sent EDNS). */
  ede?: number;
  /** Extended RCODE bits (RFC 6891 §6.1.3), for BADVERS. */
  extendedRcode?: number;
}

/** Shared, never written: the hit path allocates no option objects. */
const NO_EXTRA: Extra = Object.freeze({});
const STALE_EXTRA: Extra = Object.freeze({ ede: EDE.STALE_ANSWER });

/**
 * The client's answer from a stored one. `elapsed` is whole seconds since it
 * was stored; with `staleTtl` set every TTL becomes that and EDE 3 is attached
 * (RFC 8767 §4, RFC 8914 §4.4).
 */
export function renderAnswer(
  stored: StoredAnswer,
  elapsed: number,
  staleTtl: number | undefined,
  query: Buffer,
  q: Query,
  transport: Transport,
  opts: WireOptions,
): Buffer {
  const { wire, ttlAt } = stored;
  const extra = staleTtl === undefined ? NO_EXTRA : STALE_EXTRA;
  const out = Buffer.allocUnsafe(wire.length + optLength(q.edns, opts, extra));
  // TypedArray set and plain byte stores: Buffer.copy and write*BE validate their
  // arguments in JavaScript on every call, which shows in the hit path's profile.
  out.set(wire);
  out[0] = query[0]!;
  out[1] = query[1]!;
  out[2] = wire[2]! | (q.flags & 0x01);
  for (let i = HEADER_LEN; i < q.nameEnd; i++) out[i] = query[i]!;
  for (let i = 0; i < ttlAt.length; i++) {
    const at = ttlAt[i]!;
    // The stored wire keeps each TTL as stored (at most max-ttl, so no sign issue).
    const kept =
      ((wire[at]! << 24) | (wire[at + 1]! << 16) | (wire[at + 2]! << 8) | wire[at + 3]!) >>> 0;
    const v = Math.max(staleTtl ?? kept - elapsed, 0);
    out[at] = v >>> 24;
    out[at + 1] = (v >>> 16) & 0xff;
    out[at + 2] = (v >>> 8) & 0xff;
    out[at + 3] = v & 0xff;
  }
  if (q.edns) {
    writeOpt(out, wire.length, q.edns, opts, extra);
    const arcount = ((out[10]! << 8) | out[11]!) + 1;
    out[10] = arcount >> 8;
    out[11] = arcount & 0xff;
  }
  return out.length > sizeLimit(q.edns, transport, opts)
    ? truncated(out, query, q, opts, extra)
    : out;
}

/**
 * Stored answers kept outside a `StoredAnswer` object (resolver/storage-lru.ts
 * keeps them in a slab): the hot path renders one by its slot number.
 */
export interface AnswerStore {
  /** Bytes of the stored answer (header, question, records; no OPT). */
  answerLength(slot: number): number;
  /**
   * Copies the slot's answer to the start of `out` with each TTL counted
   * down by `elapsed` seconds (at least 0), or set to `fixedTtl` when >= 0.
   */
  copyAnswer(slot: number, out: Uint8Array, elapsed: number, fixedTtl: number): void;
}

/**
 * `renderAnswer` for an answer held in an `AnswerStore`: the same bytes,
 * made without a per-entry object (the cache hit path).
 */
export function renderStored(
  store: AnswerStore,
  slot: number,
  elapsed: number,
  staleTtl: number | undefined,
  query: Buffer,
  q: Query,
  transport: Transport,
  opts: WireOptions,
): Buffer {
  const extra = staleTtl === undefined ? NO_EXTRA : STALE_EXTRA;
  const length = store.answerLength(slot);
  const out = Buffer.allocUnsafe(length + optLength(q.edns, opts, extra));
  store.copyAnswer(slot, out, elapsed, staleTtl ?? -1);
  out[0] = query[0]!;
  out[1] = query[1]!;
  out[2] = out[2]! | (q.flags & 0x01);
  for (let i = HEADER_LEN; i < q.nameEnd; i++) out[i] = query[i]!;
  if (q.edns) {
    writeOpt(out, length, q.edns, opts, extra);
    const arcount = ((out[10]! << 8) | out[11]!) + 1;
    out[10] = arcount >> 8;
    out[11] = arcount & 0xff;
  }
  return out.length > sizeLimit(q.edns, transport, opts)
    ? truncated(out, query, q, opts, extra)
    : out;
}

/** The error answer for a refused or malformed query, echoing what could be read of it. */
export function renderRefusal(query: Buffer, r: Refusal, opts: WireOptions): Buffer {
  const extra: Extra = { extendedRcode: r.rcode >> 4 };
  return frame(query, r.flags, r.nameEnd, r.rcode & 0x0f, undefined, r.edns, opts, extra);
}

/** An answer with no cached data behind it: SERVFAIL, or the synthesized RFC 8482 ANY answer. */
export function renderSynthesized(
  query: Buffer,
  q: Query,
  rcode: number,
  answer: Buffer | undefined,
  opts: WireOptions,
  ede?: number,
): Buffer {
  return frame(
    query,
    q.flags,
    q.nameEnd,
    rcode,
    answer,
    q.edns,
    opts,
    ede === undefined ? {} : { ede },
  );
}

/**
 * RFC 8482 §4.2: answer ANY with one synthesized HINFO record instead of
 * everything at the name. The owner is a pointer to the question (0xc00c).
 */
export function hinfoRfc8482(ttl: number): Buffer {
  const cpu = Buffer.from("RFC8482");
  const rr = Buffer.alloc(12 + 2 + cpu.length);
  rr.writeUInt16BE(0xc00c, 0);
  rr.writeUInt16BE(TYPE_HINFO, 2);
  rr.writeUInt16BE(1, 4);
  rr.writeUInt32BE(ttl, 6);
  rr.writeUInt16BE(2 + cpu.length, 10);
  rr[12] = cpu.length;
  cpu.copy(rr, 13);
  rr[13 + cpu.length] = 0; // empty OS string
  return rr;
}

function frame(
  query: Buffer,
  flags: number,
  nameEnd: number | undefined,
  rcode: number,
  answer: Buffer | undefined,
  edns: Edns | undefined,
  opts: WireOptions,
  extra: Extra,
): Buffer {
  const question = nameEnd === undefined ? 0 : nameEnd + 4 - HEADER_LEN;
  const body = HEADER_LEN + question + (answer?.length ?? 0);
  const out = Buffer.alloc(body + optLength(edns, opts, extra));
  out[0] = query[0]!;
  out[1] = query[1]!;
  out[2] = 0x80 | (flags & 0x79); // QR, with the query's opcode and RD
  out[3] = 0x80 | rcode; // RA
  out.writeUInt16BE(question ? 1 : 0, 4);
  out.writeUInt16BE(answer ? 1 : 0, 6);
  out.writeUInt16BE(edns ? 1 : 0, 10);
  if (nameEnd !== undefined) query.copy(out, HEADER_LEN, HEADER_LEN, nameEnd + 4);
  answer?.copy(out, HEADER_LEN + question);
  if (edns) writeOpt(out, body, edns, opts, extra);
  return out;
}

/** RFC 2181 §9: when an answer does not fit, send the question alone with TC set. */
function truncated(out: Buffer, query: Buffer, q: Query, opts: WireOptions, extra: Extra): Buffer {
  const small = frame(query, q.flags, q.nameEnd, out[3]! & 0x0f, undefined, q.edns, opts, extra);
  small[2] = small[2]! | 0x02;
  return small;
}

function sizeLimit(edns: Edns | undefined, transport: Transport, opts: WireOptions): number {
  if (transport === "tcp") return 65535;
  return edns ? Math.min(edns.udpSize, opts.udpPayload) : CLASSIC_UDP;
}

function optLength(edns: Edns | undefined, opts: WireOptions, extra: Extra): number {
  if (!edns) return 0;
  return 11 + (edns.nsid ? 4 + opts.nsid.length : 0) + (extra.ede === undefined ? 0 : 6);
}

/** RFC 6891 §6.1.2: root owner, TYPE 41, CLASS = our payload size, TTL = ext-RCODE|version|DO. */
function writeOpt(out: Buffer, at: number, edns: Edns, opts: WireOptions, extra: Extra): void {
  out[at] = 0;
  out.writeUInt16BE(TYPE_OPT, at + 1);
  out.writeUInt16BE(opts.udpPayload, at + 3);
  out[at + 5] = extra.extendedRcode ?? 0;
  out[at + 6] = 0;
  out.writeUInt16BE(edns.dnssecOk ? 0x8000 : 0, at + 7);
  let off = at + 11;
  if (edns.nsid) {
    out.writeUInt16BE(OPTION_NSID, off);
    out.writeUInt16BE(opts.nsid.length, off + 2);
    opts.nsid.copy(out, off + 4);
    off += 4 + opts.nsid.length;
  }
  if (extra.ede !== undefined) {
    out.writeUInt16BE(OPTION_EDE, off);
    out.writeUInt16BE(2, off + 2);
    out.writeUInt16BE(extra.ede, off + 4);
    off += 6;
  }
  out.writeUInt16BE(off - at - 11, at + 9);
}
