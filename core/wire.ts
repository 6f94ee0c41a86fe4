/**
 * Conversion between the project's RRsets and dns-packet's answer records.
 * TXT character-strings travel as Buffers on the wire and as strings here.
 */
import type { Answer } from "dns-packet";
import type { RData, RRset, RRType } from "./records.ts";

/** The records of an RRset, as dns-packet answers with the given TTL. */
export function rrsetToAnswers(rrset: RRset, ttl = rrset.ttl): Answer[] {
  return rrset.data.map(
    (data) =>
      ({
        name: rrset.name,
        type: rrset.type,
        class: "IN",
        ttl,
        data: rrset.type === "TXT" ? (data as string[]).map((s) => Buffer.from(s)) : data,
      }) as Answer,
  );
}

/** One decoded dns-packet rdata in the project's shape (TXT as strings, CAA with its flags). */
export function fromWireData(type: RRType, data: unknown): RData {
  if (type === "TXT") {
    const parts = Array.isArray(data) ? data : [data];
    return parts.map((p) => (typeof p === "string" ? p : Buffer.from(p as Uint8Array).toString()));
  }
  if (type === "CAA") {
    const d = data as { flags?: number; tag: string; value: string };
    return { flags: d.flags ?? 0, tag: d.tag, value: d.value };
  }
  return data as RData;
}
