/**
 * The de-facto DNS JSON API shape (Google Public DNS / Cloudflare
 * `application/dns-json`): numeric types and statuses, rdata in presentation
 * format (RFC 1035 §5.1) with absolute names.
 */
import type { Answer } from "dns-packet";
import { fqdn } from "../core/names.ts";
import { presentation } from "../core/presentation.ts";
import { RR_TYPE_CODES, toRRType } from "../core/records.ts";
import { fromWireData } from "../core/wire.ts";
import type { Resolution } from "./resolve.ts";

/** The types the origin serves, plus ANY (RFC 1035 §3.2.3 QTYPE 255, answered per RFC 8482). */
const TYPE_CODES: Readonly<Record<string, number>> = { ...RR_TYPE_CODES, ANY: 255 };

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
  const type = toRRType(a.type);
  const data = type && "data" in a ? presentation(type, fromWireData(type, a.data)) : "";
  return { name: fqdn(a.name.replace(/\.$/, "")), type: TYPE_CODES[a.type] ?? 0, TTL: ttl, data };
}
