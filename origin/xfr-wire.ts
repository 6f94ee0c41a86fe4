/**
 * Zone transfer messages on the wire: records packed into as many DNS
 * messages as needed (each at most `limit` octets), owner names compressed
 * against the names already in the same message (RFC 1035 §4.1.4). Rdata is
 * written uncompressed, which every reader accepts (RFC 3597 §4).
 */
import type { Answer } from "dns-packet";
import dnsPacket from "dns-packet";
import type { RRset } from "../core/records.ts";
import { rrsetToAnswers } from "../core/wire.ts";

/** One record ready to pack: its owner, and everything after the owner (type .. rdata). */
export interface WireRecord {
  owner: string;
  rest: Buffer;
}

/** RFC 5936 §2.2: a message is at most 65535 octets; room is left for a TSIG (RFC 8945). */
export const MAX_XFR_MESSAGE = 65_535 - 1024;

const HEADER = 12;
/** Compression pointers address the first 16 KiB only (14 bits). */
const POINTER_LIMIT = 0x3fff;

const encodeAnswer = (dnsPacket as unknown as { answer: { encode(a: Answer): Buffer } }).answer
  .encode;

/** The records of an RRset in wire form. */
export function wireRecords(rrset: RRset): WireRecord[] {
  return rrsetToAnswers(rrset).map((a) => {
    const full = encodeAnswer({ ...a, name: "x" });
    // "x" encodes as 3 octets (\x01 x \x00): the rest starts after them.
    return { owner: rrset.name, rest: Buffer.from(full.subarray(3)) };
  });
}

/** The identity of a record for a difference: type, class and rdata; the TTL is not part of it. */
export function recordIdentity(r: WireRecord): string {
  return `${r.owner}|${r.rest.subarray(0, 4).toString("hex")}${r.rest.subarray(8).toString("hex")}`;
}

export interface MessageHeader {
  id: number;
  /** Flags word as sent (QR, opcode, AA, RD, RCODE). */
  flags: number;
}

/**
 * Packs records into messages. The first message carries `question` (the
 * query's question as sent, RFC 5936 §2.2.1); later ones carry none.
 */
export function packMessages(
  header: MessageHeader,
  question: Buffer | undefined,
  records: readonly WireRecord[],
  limit = MAX_XFR_MESSAGE,
): Buffer[] {
  const messages: Buffer[] = [];
  let parts: Buffer[] = [];
  let size = 0;
  let count = 0;
  let table = new Map<string, number>();
  const start = (withQuestion: boolean) => {
    const h = Buffer.alloc(HEADER);
    h.writeUInt16BE(header.id, 0);
    h.writeUInt16BE(header.flags, 2);
    h.writeUInt16BE(withQuestion && question ? 1 : 0, 4);
    parts = [h];
    size = HEADER;
    if (withQuestion && question) {
      parts.push(question);
      size += question.length;
    }
    count = 0;
    table = new Map();
  };
  const finish = () => {
    parts[0]!.writeUInt16BE(count, 6);
    messages.push(Buffer.concat(parts, size));
  };
  start(true);
  for (const r of records) {
    let owner = encodeName(r.owner, table, size);
    if (size + owner.bytes.length + r.rest.length > limit && count > 0) {
      finish();
      start(false);
      owner = encodeName(r.owner, table, size);
    }
    owner.commit();
    parts.push(owner.bytes, r.rest);
    size += owner.bytes.length + r.rest.length;
    count++;
  }
  finish();
  return messages;
}

/**
 * A name written at `offset`, ending in a pointer to the longest suffix
 * already in the message. `commit` records its own suffixes for later names.
 */
function encodeName(
  name: string,
  table: Map<string, number>,
  offset: number,
): { bytes: Buffer; commit(): void } {
  const labels = name === "" ? [] : name.split(".");
  const out: Buffer[] = [];
  const added: [string, number][] = [];
  let pos = offset;
  let pointer: number | undefined;
  for (let i = 0; i < labels.length; i++) {
    const suffix = labels.slice(i).join(".");
    const at = table.get(suffix);
    if (at !== undefined) {
      pointer = at;
      break;
    }
    if (pos <= POINTER_LIMIT) added.push([suffix, pos]);
    const label = Buffer.from(labels[i]!, "latin1");
    out.push(Buffer.from([label.length]), label);
    pos += 1 + label.length;
  }
  out.push(
    pointer === undefined ? Buffer.from([0]) : Buffer.from([0xc0 | (pointer >> 8), pointer & 0xff]),
  );
  return {
    bytes: Buffer.concat(out),
    commit: () => {
      for (const [suffix, at] of added) table.set(suffix, at);
    },
  };
}
