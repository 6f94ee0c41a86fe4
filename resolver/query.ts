/**
 * The minimal query parser of the hot path: header, the one question (kept as
 * raw bytes, so its case can be echoed) and EDNS0 OPT (RFC 6891 §6.1). Nothing
 * else of the query is decoded.
 */
import { CLASS_IN, HEADER_LEN, RCODE, readRecords, TYPE_OPT, WireError } from "./message.ts";

export const TYPE_ANY = 255;
/** RFC 6891 §9: BADVERS is extended RCODE 16. */
export const RCODE_BADVERS = 16;
const OPTION_NSID = 3;
/** Zone transfers and the obsolete MAILA/MAILB meta types are not served by a cache. */
const NOT_SERVED = new Set([251, 252, 253, 254]);

export interface Edns {
  /** Requestor's UDP payload size, at least 512 (RFC 6891 §6.2.3). */
  udpSize: number;
  version: number;
  /** RFC 3225 §3: DO is copied into the response. */
  dnssecOk: boolean;
  /** RFC 5001 §2.1: an empty NSID option asks for the server's identifier. */
  nsid: boolean;
}

export interface Query {
  id: number;
  /** The third header octet: opcode and RD are echoed from it. */
  flags: number;
  /** Offset just past the question's name in the query (the name starts at 12). */
  nameEnd: number;
  /** The question name in wire form, ASCII lower-cased. */
  name: Buffer;
  /** Offsets in `name` where each label starts. */
  labelStarts: number[];
  qtype: number;
  qclass: number;
  /** Cache key: lower-cased wire name and type (class is always IN here). */
  key: string;
  edns: Edns | undefined;
}

/** A query that gets an error answer; `nameEnd` is set when the question could be read. */
export interface Refusal {
  rcode: number;
  id: number;
  flags: number;
  nameEnd: number | undefined;
  edns: Edns | undefined;
  reason: string;
}

export type Parsed = { query: Query } | { refusal: Refusal } | undefined;

/**
 * Returns undefined for messages that get no answer at all: too short to
 * carry an ID (no client could match a reply), or responses (two servers
 * would bounce errors at each other forever).
 */
export function parseQuery(msg: Buffer): Parsed {
  if (msg.length < 2 || (msg[2] ?? 0) & 0x80) return undefined;
  // RFC 1035 §4.1.1: FORMERR, echoing the ID, like the origin does.
  if (msg.length < HEADER_LEN)
    return refusal(msg, RCODE.FORMERR, "message is shorter than the 12-octet header");
  const opcode = (msg[2]! >> 3) & 0x0f;
  if (msg.readUInt16BE(4) !== 1) {
    return refusal(
      msg,
      opcode === 0 ? RCODE.FORMERR : RCODE.NOTIMP,
      "a query carries exactly one question",
    );
  }
  let question: ReturnType<typeof readQuestion>;
  let edns: Edns | undefined;
  try {
    question = readQuestion(msg);
    edns = readEdns(msg, question.nameEnd);
  } catch (err) {
    if (err instanceof WireError) return refusal(msg, RCODE.FORMERR, err.message);
    throw err;
  }
  const { nameEnd, qtype, qclass } = question;
  if (opcode !== 0)
    return refusal(msg, RCODE.NOTIMP, `opcode ${opcode} is not served`, nameEnd, edns);
  if (edns && edns.version > 0) {
    return refusal(
      msg,
      RCODE_BADVERS,
      `EDNS version ${edns.version} is not supported`,
      nameEnd,
      edns,
    );
  }
  if (qtype === TYPE_OPT)
    return refusal(msg, RCODE.FORMERR, "OPT is not a query type", nameEnd, edns);
  if (NOT_SERVED.has(qtype))
    return refusal(msg, RCODE.NOTIMP, `type ${qtype} is not served`, nameEnd, edns);
  if (qclass !== CLASS_IN)
    return refusal(msg, RCODE.REFUSED, `class ${qclass} is not served`, nameEnd, edns);
  const key = question.name.toString("latin1") + typeSuffix(qtype);
  const { name, labelStarts } = question;
  return {
    query: {
      id: msg.readUInt16BE(0),
      flags: msg[2]!,
      nameEnd,
      name,
      labelStarts,
      qtype,
      qclass,
      key,
      edns,
    },
  };
}

function refusal(
  msg: Buffer,
  rcode: number,
  reason: string,
  nameEnd?: number,
  edns?: Edns,
): Parsed {
  const flags = msg[2] ?? 0;
  return { refusal: { rcode, id: msg.readUInt16BE(0), flags, nameEnd, edns, reason } };
}

function readQuestion(msg: Buffer) {
  const labelStarts: number[] = [];
  let pos = HEADER_LEN;
  for (;;) {
    const len = msg[pos];
    if (len === undefined) throw new WireError("question name is truncated");
    if (len === 0) break;
    // A pointer in the question could only point into the header: malformed.
    if (len > 63) throw new WireError("question name has a label over 63 octets or a pointer");
    labelStarts.push(pos - HEADER_LEN);
    pos += 1 + len;
  }
  const nameEnd = pos + 1;
  if (nameEnd - HEADER_LEN > 255) throw new WireError("question name is longer than 255 octets");
  if (nameEnd + 4 > msg.length) throw new WireError("question type and class are truncated");
  // Copied and lower-cased in one pass (a pooled allocation, no Buffer.from dispatch).
  // Length octets are <= 63, below 'A' (0x41), so only letters change.
  const name = Buffer.allocUnsafe(nameEnd - HEADER_LEN);
  for (let i = 0, j = HEADER_LEN; j < nameEnd; i++, j++) {
    const b = msg[j]!;
    name[i] = b >= 0x41 && b <= 0x5a ? b | 0x20 : b;
  }
  return {
    nameEnd,
    name,
    labelStarts,
    qtype: msg.readUInt16BE(nameEnd),
    qclass: msg.readUInt16BE(nameEnd + 2),
  };
}

/** `/<qtype>` of the cache key, made once per type: the hot path builds no number strings. */
const SUFFIXES: string[] = [];
function typeSuffix(qtype: number): string {
  let s = SUFFIXES[qtype];
  if (s === undefined) {
    s = `/${qtype}`;
    SUFFIXES[qtype] = s;
  }
  return s;
}

function readEdns(msg: Buffer, nameEnd: number): Edns | undefined {
  if (msg[6] === 0 && msg[7] === 0 && msg[8] === 0 && msg[9] === 0) {
    if (msg[10] === 0 && msg[11] === 0) return undefined;
    // The common shape: one OPT right after the question and nothing after it.
    const at = nameEnd + 4;
    if (msg[10] === 0 && msg[11] === 1 && msg.length >= at + 11 && msg[at] === 0) {
      const rdlength = (msg[at + 9]! << 8) | msg[at + 10]!;
      if (((msg[at + 1]! << 8) | msg[at + 2]!) === TYPE_OPT && at + 11 + rdlength === msg.length) {
        return {
          udpSize: Math.max(512, (msg[at + 3]! << 8) | msg[at + 4]!),
          version: msg[at + 6]!,
          dnssecOk: (msg[at + 7]! & 0x80) !== 0,
          nsid: hasOption(msg, at + 11, at + 11 + rdlength, OPTION_NSID),
        };
      }
    }
  }
  let edns: Edns | undefined;
  for (const rr of readRecords(msg)) {
    if (rr.type !== TYPE_OPT) continue;
    // RFC 6891 §6.1.1: one OPT, in the additional section, owned by the root.
    if (edns) throw new WireError("more than one OPT record");
    if (rr.section !== 2 || msg[rr.start] !== 0) throw new WireError("OPT record is misplaced");
    edns = {
      udpSize: Math.max(512, rr.klass),
      version: msg[rr.ttlAt + 1]!,
      dnssecOk: (msg[rr.ttlAt + 2]! & 0x80) !== 0,
      nsid: hasOption(msg, rr.rdataAt, rr.rdataAt + rr.rdlength, OPTION_NSID),
    };
  }
  return edns;
}

function hasOption(msg: Buffer, from: number, to: number, code: number): boolean {
  let found = false;
  for (let off = from; off < to; ) {
    if (off + 4 > to) throw new WireError("EDNS option header is truncated");
    const len = msg.readUInt16BE(off + 2);
    if (off + 4 + len > to) throw new WireError("EDNS option data is truncated");
    if (msg.readUInt16BE(off) === code) found = true;
    off += 4 + len;
  }
  return found;
}
