/**
 * RFC 1035 §5.1 presentation format of rdata, as the DNS JSON API (origin and
 * edge) and zone files write it. Web-standard only (TextEncoder): the edge runs
 * in workerd, which has no Buffer.
 */
import { fqdn } from "./names.ts";
import type { CaaData, MxData, RData, RRType, SoaData, SrvData } from "./records.ts";

const utf8 = new TextEncoder();

/** RFC 1035 §5.1 character-string: quoted, with \" \\ and \DDD for octets outside printable ASCII. */
export function quoteString(text: string): string {
  let out = '"';
  for (const b of utf8.encode(text)) {
    if (b === 0x22 || b === 0x5c) out += `\\${String.fromCharCode(b)}`;
    else if (b < 0x20 || b > 0x7e) out += `\\${String(b).padStart(3, "0")}`;
    else out += String.fromCharCode(b);
  }
  return `${out}"`;
}

/**
 * One rdata in presentation form, on one line. Names are absolute unless
 * `name` writes them otherwise (a zone file writes them relative to $ORIGIN).
 */
export function presentation(
  type: RRType,
  data: RData,
  name: (n: string) => string = fqdn,
): string {
  switch (type) {
    case "A":
    case "AAAA":
      return data as string;
    case "CNAME":
    case "NS":
    case "PTR":
      return name(data as string);
    case "MX": {
      const d = data as MxData;
      return `${d.preference} ${name(d.exchange)}`;
    }
    case "SRV": {
      const d = data as SrvData;
      return `${d.priority} ${d.weight} ${d.port} ${name(d.target)}`;
    }
    case "SOA": {
      const d = data as SoaData;
      return `${name(d.mname)} ${name(d.rname)} ${d.serial} ${d.refresh} ${d.retry} ${d.expire} ${d.minimum}`;
    }
    case "CAA": {
      const d = data as CaaData;
      return `${d.flags} ${d.tag} ${quoteString(d.value)}`;
    }
    case "TXT":
      return (data as string[]).map(quoteString).join(" ");
  }
}
