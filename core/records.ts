/**
 * Resource records in dns-packet's data shapes, with validation.
 * An RRset is (name, type, ttl, rdata[]); every record of an RRset shares one
 * TTL (RFC 2181 §5.2), and carries the serial of the change that last wrote it
 * as its `version`.
 */
import { z } from "zod";
import { canonicalIPv6, isIPv4, isIPv6 } from "./addresses.ts";
import { NameError, normaliseName } from "./names.ts";

export { canonicalIPv6, isIPv4, isIPv6 } from "./addresses.ts";

export const RR_TYPES = [
  "A",
  "AAAA",
  "CNAME",
  "MX",
  "TXT",
  "NS",
  "SOA",
  "SRV",
  "CAA",
  "PTR",
] as const;
export type RRType = (typeof RR_TYPES)[number];

/** TYPE values on the wire (RFC 1035 §3.2.2, RFC 3596, RFC 2782, RFC 8659). */
export const RR_TYPE_CODES: Readonly<Record<RRType, number>> = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  CAA: 257,
};

/** RFC 2181 §8: a TTL is an unsigned 31-bit value. */
export const MAX_TTL = 2 ** 31 - 1;

export interface SoaData {
  mname: string;
  rname: string;
  serial: number;
  refresh: number;
  retry: number;
  expire: number;
  minimum: number;
}
export interface MxData {
  preference: number;
  exchange: string;
}
export interface SrvData {
  priority: number;
  weight: number;
  port: number;
  target: string;
}
export interface CaaData {
  flags: number;
  tag: string;
  value: string;
}

/** RData by type, in dns-packet's shapes; TXT is a list of character-strings. */
export interface RDataByType {
  A: string;
  AAAA: string;
  CNAME: string;
  NS: string;
  PTR: string;
  MX: MxData;
  TXT: string[];
  SOA: SoaData;
  SRV: SrvData;
  CAA: CaaData;
}
export type RData = RDataByType[RRType];

export interface RRset<T extends RRType = RRType> {
  name: string;
  type: T;
  ttl: number;
  data: RDataByType[T][];
  /** Serial of the change that last wrote this RRset. */
  version?: number;
}

const u8 = z.number().int().min(0).max(255);
const u16 = z.number().int().min(0).max(65535);
const u32 = z
  .number()
  .int()
  .min(0)
  .max(2 ** 32 - 1);
export const ttlSchema = z.number().int().min(0).max(MAX_TTL);

/** A domain name, normalised; the issue names what is wrong with it. */
export const dnsName = z.string().transform((s, ctx) => {
  try {
    return normaliseName(s);
  } catch (e) {
    ctx.addIssue({ code: "custom", message: e instanceof NameError ? e.message : String(e) });
    return z.NEVER;
  }
});

const characterString = z.string().refine((s) => new TextEncoder().encode(s).length <= 255, {
  message:
    "a TXT character-string is at most 255 octets (RFC 1035 §3.3); split it into several strings",
});

export const rdataSchemas = {
  A: z.string().refine(isIPv4, { message: "expected an IPv4 address such as 192.0.2.1" }),
  AAAA: z
    .string()
    .refine(isIPv6, { message: "expected an IPv6 address such as 2001:db8::1" })
    .transform(canonicalIPv6),
  CNAME: dnsName,
  NS: dnsName,
  PTR: dnsName,
  MX: z.object({ preference: u16, exchange: dnsName }),
  // One string or a list of them. Not a z.union: a union's error is a bare "Invalid
  // input", and the one a writer needs is the 255-octet limit by name.
  TXT: z
    .union([z.string(), z.array(z.string())])
    .transform((v) => (typeof v === "string" ? [v] : v))
    .pipe(z.array(characterString).min(1)),
  SOA: z.object({
    mname: dnsName,
    rname: dnsName,
    serial: u32,
    refresh: u32,
    retry: u32,
    expire: u32,
    minimum: u32,
  }),
  SRV: z.object({ priority: u16, weight: u16, port: u16, target: dnsName }),
  CAA: z.object({
    flags: u8.default(0),
    tag: z
      .string()
      .regex(/^[a-zA-Z0-9]{1,15}$/, "a CAA tag is 1-15 letters or digits (RFC 8659 §4.1)"),
    value: z.string(),
  }),
} satisfies { [T in RRType]: z.ZodType<RDataByType[T], unknown> };

export const rrTypeSchema = z.enum(RR_TYPES, {
  error: () => `type must be one of ${RR_TYPES.join(", ")}`,
});

/** Validates one rdata value of the given type; returns the normalised form. */
export function parseRData<T extends RRType>(type: T, value: unknown): RDataByType[T] {
  return rdataSchemas[type].parse(value) as RDataByType[T];
}

/** Key of an RRset inside a zone. */
export function rrsetKey(name: string, type: RRType): string {
  return `${name}|${type}`;
}

/** Case-insensitive lookup of a type mnemonic ("aaaa" -> "AAAA"). */
export function toRRType(s: string): RRType | undefined {
  const up = s.toUpperCase();
  return (RR_TYPES as readonly string[]).includes(up) ? (up as RRType) : undefined;
}
