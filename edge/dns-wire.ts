/**
 * Just enough DNS wire format (RFC 1035 §4.1) for the edge to read the
 * question of a cached DoH exchange and rewrite a positive answer with a
 * pushed RRset. Web-standard only (no Buffer), so it runs in a Worker.
 */
import { RR_TYPE_CODES, type RRset, type RRType } from "../core/records.ts";
import { concat, encodeName, encodeRData, typeOfCode } from "./rdata.ts";

const HEADER = 12;
const CLASS_IN = 1;
const TYPE_OPT = 41;
const TC = 0x0200;
const MAX_MESSAGE = 65_535;

/**
 * Types whose answers the origin completes with additional-section
 * addresses (RFC 1035 §3.3.9, §3.3.11, RFC 2782): a rewrite could not know
 * the new additional section, so they are not rewritten.
 */
const WITH_ADDITIONALS = new Set<RRType>(["MX", "SRV", "NS"]);

export interface Question {
  name: string;
  type: RRType;
}

interface Record_ {
  name: string;
  type: number;
  cls: number;
  /** The whole record, as it was on the wire. */
  bytes: Uint8Array;
}

interface Message {
  id: number;
  flags: number;
  qdcount: number;
  /** The question section exactly as received (keeps the client's 0x20 case). */
  question: Uint8Array;
  qname: string;
  qtype: number;
  qclass: number;
  answers: Record_[];
  authority: Record_[];
  additional: Record_[];
}

/** Decodes the question of a DoH GET `dns` parameter (RFC 8484 §4.1, base64url). */
export function dohQuestion(dns: string | null): Question | undefined {
  if (!dns || !/^[A-Za-z0-9_-]+=*$/.test(dns)) return undefined;
  const b64 = dns.replace(/=+$/, "").replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  const msg = parse(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
  if (msg?.qclass !== CLASS_IN) return undefined;
  const type = typeOfCode(msg.qtype);
  return type && { name: msg.qname, type };
}

/**
 * The DoH answer `old` rewritten to carry `rrset`, or undefined when the
 * rewrite cannot be exact: not a plain NOERROR answer of the question's own
 * RRset (CNAME chains, negative answers, referrals), an authority or a
 * non-OPT additional section, or a type with additional-section processing.
 * The header, the question and the OPT record are kept byte for byte.
 */
export function rewriteWire(old: Uint8Array, rrset: RRset): Uint8Array<ArrayBuffer> | undefined {
  const msg = parse(old);
  if (!msg || WITH_ADDITIONALS.has(rrset.type)) return undefined;
  const code = RR_TYPE_CODES[rrset.type];
  const plain =
    msg.qdcount === 1 &&
    (msg.flags & 0x0f) === 0 &&
    (msg.flags & TC) === 0 &&
    msg.qname === rrset.name &&
    msg.qtype === code &&
    msg.answers.length > 0 &&
    msg.answers.every((a) => a.name === rrset.name && a.type === code && a.cls === CLASS_IN) &&
    msg.authority.length === 0 &&
    msg.additional.every((a) => a.type === TYPE_OPT);
  if (!plain || rrset.data.length === 0) return undefined;
  const head = new DataView(new ArrayBuffer(HEADER));
  head.setUint16(0, msg.id);
  head.setUint16(2, msg.flags);
  head.setUint16(4, 1);
  head.setUint16(6, rrset.data.length);
  head.setUint16(10, msg.additional.length);
  const owner = encodeName(rrset.name);
  const answers = rrset.data.map((d) => {
    const rdata = encodeRData(rrset.type, d);
    const fixed = new DataView(new ArrayBuffer(10));
    fixed.setUint16(0, code);
    fixed.setUint16(2, CLASS_IN);
    fixed.setUint32(4, rrset.ttl);
    fixed.setUint16(8, rdata.length);
    return concat([owner, new Uint8Array(fixed.buffer), rdata]);
  });
  const out = concat([
    new Uint8Array(head.buffer),
    msg.question,
    ...answers,
    ...msg.additional.map((a) => a.bytes),
  ]);
  return out.length <= MAX_MESSAGE ? out : undefined;
}

/** Parses an uncompressed message (the origin's encoder never compresses); undefined otherwise. */
function parse(buf: Uint8Array): Message | undefined {
  if (buf.length < HEADER) return undefined;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const counts = [4, 6, 8, 10].map((o) => view.getUint16(o));
  const [qdcount = 0, ancount = 0, nscount = 0, arcount = 0] = counts;
  if (qdcount !== 1) return undefined;
  const q = readName(buf, HEADER);
  if (!q || q.end + 4 > buf.length) return undefined;
  const qend = q.end + 4;
  let offset = qend;
  const section = (n: number): Record_[] | undefined => {
    const out: Record_[] = [];
    for (let i = 0; i < n; i++) {
      const name = readName(buf, offset);
      if (!name || name.end + 10 > buf.length) return undefined;
      const end = name.end + 10 + view.getUint16(name.end + 8);
      if (end > buf.length) return undefined;
      out.push({
        name: name.name,
        type: view.getUint16(name.end),
        cls: view.getUint16(name.end + 2),
        bytes: buf.subarray(offset, end),
      });
      offset = end;
    }
    return out;
  };
  const answers = section(ancount);
  const authority = answers && section(nscount);
  const additional = authority && section(arcount);
  if (!answers || !authority || !additional || offset !== buf.length) return undefined;
  return {
    id: view.getUint16(0),
    flags: view.getUint16(2),
    qdcount,
    question: buf.subarray(HEADER, qend),
    qname: q.name,
    qtype: view.getUint16(q.end),
    qclass: view.getUint16(q.end + 2),
    answers,
    authority,
    additional,
  };
}

const ascii = new TextDecoder();

/** A name made of plain labels, lower-cased without the trailing dot; a pointer gives up. */
function readName(buf: Uint8Array, start: number): { name: string; end: number } | undefined {
  const labels: string[] = [];
  let i = start;
  for (;;) {
    const len = buf[i];
    if (len === undefined || len > 63 || i + 1 + len > buf.length) return undefined;
    if (len === 0) return { name: labels.join(".").toLowerCase(), end: i + 1 };
    labels.push(ascii.decode(buf.subarray(i + 1, i + 1 + len)));
    i += 1 + len;
  }
}
