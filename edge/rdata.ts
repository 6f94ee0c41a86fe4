/**
 * RData of the supported types in DNS wire form (RFC 1035 §3.3, RFC 3596,
 * RFC 2782, RFC 8659); core/presentation.ts writes the text form. Web-standard
 * only (Uint8Array, DataView, TextEncoder): dns-packet needs Buffer, which a
 * Worker does not have.
 */
import {
  type CaaData,
  type MxData,
  type RData,
  RR_TYPE_CODES,
  type RRType,
  type SoaData,
  type SrvData,
} from "../core/records.ts";

/** The type a TYPE value names, among the supported ones. */
export function typeOfCode(code: number): RRType | undefined {
  return (Object.entries(RR_TYPE_CODES) as [RRType, number][]).find(([, c]) => c === code)?.[0];
}

/** The type a `type=` parameter names: a mnemonic ("aaaa") or a number ("28"). */
export function typeOfParam(value: string): RRType | undefined {
  const up = value.trim().toUpperCase();
  if (/^\d+$/.test(up)) return typeOfCode(Number(up));
  return up in RR_TYPE_CODES ? (up as RRType) : undefined;
}

const utf8 = new TextEncoder();

/** An uncompressed domain name (RFC 1035 §3.1); throws on a label over 63 octets. */
export function encodeName(name: string): Uint8Array {
  const labels = name === "" || name === "." ? [] : name.replace(/\.$/, "").split(".");
  const parts = labels.map((l) => utf8.encode(l));
  const out = new Uint8Array(parts.reduce((n, p) => n + 1 + p.length, 1));
  let i = 0;
  for (const p of parts) {
    if (p.length === 0 || p.length > 63) throw new RangeError(`bad label in "${name}"`);
    out[i++] = p.length;
    out.set(p, i);
    i += p.length;
  }
  return out;
}

/** One RDATA field (without RDLENGTH) in wire form. */
export function encodeRData(type: RRType, data: RData): Uint8Array {
  switch (type) {
    case "A":
      return new Uint8Array((data as string).split(".").map(Number));
    case "AAAA":
      return ipv6Bytes(data as string);
    case "CNAME":
    case "NS":
    case "PTR":
      return encodeName(data as string);
    case "MX": {
      const d = data as MxData;
      return concat([u16(d.preference), encodeName(d.exchange)]);
    }
    case "TXT":
      return concat((data as string[]).map((s) => characterString(utf8.encode(s))));
    case "SOA": {
      const d = data as SoaData;
      const tail = new DataView(new ArrayBuffer(20));
      for (const [i, v] of [d.serial, d.refresh, d.retry, d.expire, d.minimum].entries()) {
        tail.setUint32(i * 4, v);
      }
      return concat([encodeName(d.mname), encodeName(d.rname), new Uint8Array(tail.buffer)]);
    }
    case "SRV": {
      const d = data as SrvData;
      return concat([u16(d.priority), u16(d.weight), u16(d.port), encodeName(d.target)]);
    }
    case "CAA": {
      // RFC 8659 §4.1: flags, tag length, tag, value (the rest of the RDATA).
      const d = data as CaaData;
      return concat([
        new Uint8Array([d.flags]),
        characterString(utf8.encode(d.tag)),
        utf8.encode(d.value),
      ]);
    }
  }
}

/** RFC 4291 §2.2 text (already validated at the origin) to 16 octets. */
function ipv6Bytes(text: string): Uint8Array {
  let s = text;
  const tail: number[] = [];
  const lastColon = s.lastIndexOf(":");
  const v4 = s.slice(lastColon + 1);
  if (v4.includes(".")) {
    const [a = 0, b = 0, c = 0, d = 0] = v4.split(".").map(Number);
    tail.push((a << 8) | b, (c << 8) | d);
    // Keep a "::" that ends the head; drop a single separating colon.
    s = s.slice(0, lastColon + 1);
    if (!s.endsWith("::")) s = s.slice(0, -1);
  }
  const groups = (part: string) => (part === "" ? [] : part.split(":").map((g) => parseInt(g, 16)));
  const [head = "", rest] = s.split("::");
  const left = groups(head);
  const right = [...(rest === undefined ? [] : groups(rest)), ...tail];
  const fill = 8 - left.length - right.length;
  const words =
    rest === undefined ? [...left, ...right] : [...left, ...Array(fill).fill(0), ...right];
  const out = new DataView(new ArrayBuffer(16));
  for (const [i, w] of words.entries()) out.setUint16(i * 2, w);
  return new Uint8Array(out.buffer);
}

function u16(v: number): Uint8Array {
  return new Uint8Array([v >> 8, v & 0xff]);
}

function characterString(bytes: Uint8Array): Uint8Array {
  return concat([new Uint8Array([bytes.length]), bytes]);
}

export function concat(parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let i = 0;
  for (const p of parts) {
    out.set(p, i);
    i += p.length;
  }
  return out;
}
