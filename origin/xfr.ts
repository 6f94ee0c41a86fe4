/**
 * Zone transfers out: AXFR (RFC 5936) and IXFR (RFC 1995) answered from the
 * store, as unsigned messages (the DNS layer signs them when the request was
 * signed, see primary.ts). Pure: bytes and state in, messages out.
 */
import dnsPacket from "dns-packet";
import type { RRset } from "../core/records.ts";
import { serialGte } from "../core/serial.ts";
import type { ZoneState } from "./store.ts";
import type { IxfrHistory } from "./xfr-history.ts";
import { MAX_XFR_MESSAGE, packMessages, type WireRecord, wireRecords } from "./xfr-wire.ts";

export const QTYPE_IXFR = 251;
export const QTYPE_AXFR = 252;
const HEADER = 12;
const QR = 0x8000;
const AA = 0x0400;

export interface TransferRequest {
  id: number;
  /** The flags word of the query. */
  flags: number;
  /** The question as sent (echoed byte for byte). */
  question: Buffer;
  zone: string;
  kind: "AXFR" | "IXFR";
  /** IXFR: the serial of the client's copy (the SOA in the authority section, RFC 1995 §3). */
  clientSerial?: number;
}

/** Reads the qtype of a query's single question; undefined when it has none readable. */
export function questionType(query: Buffer): number | undefined {
  if (query.length < HEADER || query.readUInt16BE(4) !== 1) return undefined;
  const end = questionEnd(query);
  return end === undefined ? undefined : query.readUInt16BE(end - 4);
}

/** End offset of the single (uncompressed) question; undefined when malformed. */
export function questionEnd(buf: Buffer): number | undefined {
  let i = HEADER;
  for (;;) {
    const len = buf[i];
    if (len === undefined || len > 63) return undefined;
    i += 1 + len;
    if (len === 0) break;
  }
  return i + 4 <= buf.length ? i + 4 : undefined;
}

/** Parses an AXFR or IXFR query (without its TSIG); a string says why it is a FORMERR. */
export function parseTransferRequest(query: Buffer): TransferRequest | string {
  const end = questionEnd(query);
  if (query.length < HEADER || query.readUInt16BE(4) !== 1 || end === undefined)
    return "a transfer request needs exactly one well-formed question";
  if (query.readUInt16BE(2) & QR) return "a response, not a request";
  let packet: dnsPacket.Packet;
  try {
    packet = dnsPacket.decode(query);
  } catch (err) {
    return `undecodable request (${(err as Error).message})`;
  }
  const q = packet.questions?.[0];
  if (!q) return "no question";
  if (query.readUInt16BE(end - 2) !== 1) return "class is not IN";
  const zone = q.name.toLowerCase().replace(/\.$/, "");
  const base = {
    id: packet.id ?? 0,
    flags: query.readUInt16BE(2),
    question: query.subarray(HEADER, end),
    zone,
  };
  if (q.type === "AXFR") return { ...base, kind: "AXFR" };
  // RFC 1995 §3: the authority section holds the SOA of the client's version.
  const soa = packet.authorities?.find((a) => a.type === "SOA");
  if (!soa || !("data" in soa))
    return "an IXFR request needs the client's SOA in the authority section";
  const serial = (soa.data as { serial: number }).serial;
  return { ...base, kind: "IXFR", clientSerial: serial };
}

export type TransferStyle = "axfr" | "ixfr" | "ixfr-full" | "ixfr-current" | "ixfr-udp";

export interface TransferAnswer {
  style: TransferStyle;
  messages: Buffer[];
  serial: number;
  records: number;
}

/**
 * The answer to an allowed transfer of `state`'s zone. `udp`: only an IXFR
 * gets here, and it is answered with the current SOA alone, so the client
 * retries over TCP (RFC 1995 §2).
 */
export function answerTransfer(
  req: TransferRequest,
  state: ZoneState,
  history: IxfrHistory,
  udp: boolean,
  limit = MAX_XFR_MESSAGE,
): TransferAnswer {
  const zone = state.zone;
  const soa = wireRecords(zone.soa);
  const serial = zone.serial;
  const pack = (style: TransferStyle, records: WireRecord[]): TransferAnswer => ({
    style,
    serial,
    records: records.length,
    messages: packMessages(
      { id: req.id, flags: QR | AA | (req.flags & 0x0100) },
      req.question,
      records,
      limit,
    ),
  });
  if (req.kind === "IXFR") {
    // RFC 1995 §2, §4: a current client, or UDP, gets the SOA alone.
    if (udp) return pack("ixfr-udp", soa);
    if (req.clientSerial !== undefined && serialGte(req.clientSerial, serial))
      return pack("ixfr-current", soa);
    const diffs =
      req.clientSerial === undefined ? undefined : history.diffsSince(zone.name, req.clientSerial);
    if (diffs) {
      const records: WireRecord[] = [...soa];
      for (const d of diffs) {
        records.push(...wireRecords(d.from), ...d.deleted, ...wireRecords(d.to), ...d.added);
      }
      records.push(...soa);
      return pack("ixfr", records);
    }
    return pack("ixfr-full", fullZone(zone.all(), soa));
  }
  return pack("axfr", fullZone(zone.all(), soa));
}

/** RFC 5936 §2.2: the SOA, every other record, the SOA again. */
function fullZone(rrsets: readonly RRset[], soa: WireRecord[]): WireRecord[] {
  const records: WireRecord[] = [...soa];
  for (const set of rrsets) if (set.type !== "SOA") records.push(...wireRecords(set));
  records.push(...soa);
  return records;
}

/** An answer with no records: the query's ID, opcode, RD and question, and `rcode`. */
export function errorReply(query: Buffer, rcode: number): Buffer {
  const id = query.length >= 2 ? query.readUInt16BE(0) : 0;
  const flags = query.length >= 4 ? query.readUInt16BE(2) : 0;
  const end =
    query.length >= HEADER && query.readUInt16BE(4) === 1 ? questionEnd(query) : undefined;
  const h = Buffer.alloc(HEADER);
  h.writeUInt16BE(id, 0);
  h.writeUInt16BE(QR | (flags & 0x7900) | (rcode & 0xf), 2);
  h.writeUInt16BE(end === undefined ? 0 : 1, 4);
  return end === undefined ? h : Buffer.concat([h, query.subarray(HEADER, end)]);
}
