/**
 * The de-facto DNS JSON API shape (Google Public DNS / Cloudflare
 * `application/dns-json`): numeric types and statuses, rdata in presentation
 * format (RFC 1035 §5.1) with absolute names.
 */
import type { Answer } from "dns-packet";
import { fqdn } from "../core/names.ts";
import type { Resolution } from "./resolve.ts";

/** RFC 1035 §3.2.2 and later assignments, for the types the origin serves (plus ANY). */
export const TYPE_CODES: Readonly<Record<string, number>> = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  ANY: 255,
  CAA: 257,
};

/** RFC 1035 §4.1.1 RCODE values. */
export const RCODE_CODES = { NOERROR: 0, NXDOMAIN: 3, REFUSED: 5 } as const;

/** A type given as a mnemonic ("aaaa") or a number ("28"); undefined if not one we serve. */
export function typeFromParam(value: string): string | undefined {
  const up = value.trim().toUpperCase();
  if (/^\d+$/.test(up)) return Object.keys(TYPE_CODES).find((k) => TYPE_CODES[k] === Number(up));
  return up in TYPE_CODES ? up : undefined;
}

export interface JsonRecord {
  name: string;
  type: number;
  TTL: number;
  data: string;
}

export interface DnsJson {
  Status: number;
  TC: boolean;
  RD: boolean;
  RA: boolean;
  AD: boolean;
  CD: boolean;
  Question: { name: string; type: number }[];
  Answer?: JsonRecord[];
  Authority?: JsonRecord[];
}

export function resolutionToJson(
  qname: string,
  qtype: string,
  res: Resolution,
  cd: boolean,
): DnsJson {
  const out: DnsJson = {
    Status: RCODE_CODES[res.rcode],
    TC: false,
    // An authority answers from its own data: no recursion desired or available.
    RD: false,
    RA: false,
    AD: false,
    CD: cd,
    Question: [{ name: fqdn(qname), type: TYPE_CODES[qtype] ?? 0 }],
  };
  if (res.answers.length > 0) out.Answer = res.answers.map(toRecord);
  if (res.authority.length > 0) out.Authority = res.authority.map(toRecord);
  return out;
}

function toRecord(a: Answer): JsonRecord {
  const ttl = "ttl" in a && typeof a.ttl === "number" ? a.ttl : 0;
  const data = "data" in a ? presentation(a.type, a.data) : "";
  return { name: fqdn(a.name.replace(/\.$/, "")), type: TYPE_CODES[a.type] ?? 0, TTL: ttl, data };
}

const abs = (name: string) => fqdn(name.replace(/\.$/, ""));

/** RFC 1035 §5.1 presentation of one rdata. */
export function presentation(type: string, data: unknown): string {
  switch (type) {
    case "CNAME":
    case "NS":
    case "PTR":
      return abs(data as string);
    case "MX": {
      const d = data as { preference: number; exchange: string };
      return `${d.preference} ${abs(d.exchange)}`;
    }
    case "SRV": {
      const d = data as { priority: number; weight: number; port: number; target: string };
      return `${d.priority} ${d.weight} ${d.port} ${abs(d.target)}`;
    }
    case "SOA": {
      const d = data as Record<"mname" | "rname", string> &
        Record<"serial" | "refresh" | "retry" | "expire" | "minimum", number>;
      return `${abs(d.mname)} ${abs(d.rname)} ${d.serial} ${d.refresh} ${d.retry} ${d.expire} ${d.minimum}`;
    }
    case "CAA": {
      const d = data as { flags?: number; tag: string; value: string };
      return `${d.flags ?? 0} ${d.tag} ${quote(Buffer.from(d.value))}`;
    }
    case "TXT": {
      const parts = Array.isArray(data) ? data : [data];
      return parts
        .map((p) => quote(typeof p === "string" ? Buffer.from(p) : Buffer.from(p as Uint8Array)))
        .join(" ");
    }
    default:
      return typeof data === "string" ? data : JSON.stringify(data);
  }
}

/** RFC 1035 §5.1 character-string: quoted, with \" \\ and \DDD for non-printable octets. */
function quote(bytes: Buffer): string {
  let out = '"';
  for (const b of bytes) {
    if (b === 0x22 || b === 0x5c) out += `\\${String.fromCharCode(b)}`;
    else if (b < 0x20 || b > 0x7e) out += `\\${String(b).padStart(3, "0")}`;
    else out += String.fromCharCode(b);
  }
  return `${out}"`;
}
