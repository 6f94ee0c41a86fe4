/**
 * Conversion between the project's RRsets and dns-packet's answer records.
 * TXT character-strings travel as Buffers on the wire and as strings here.
 */
import type { Answer } from "dns-packet";
import type { RData, RRset, RRType } from "./records.ts";
import { toRRType } from "./records.ts";

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

/** Groups decoded answers of the supported types into RRsets (one TTL each: the minimum, RFC 2181 §5.2). */
export function answersToRRsets(answers: readonly Answer[]): RRset[] {
  const sets = new Map<string, RRset>();
  for (const a of answers) {
    const type = toRRType(a.type);
    if (!type || !("data" in a)) continue;
    const name = a.name.toLowerCase().replace(/\.$/, "");
    const key = `${name}|${type}`;
    const data = fromWireData(type, a.data);
    const ttl = "ttl" in a && typeof a.ttl === "number" ? a.ttl : 0;
    const set = sets.get(key);
    if (set) {
      set.data.push(data);
      set.ttl = Math.min(set.ttl, ttl);
    } else {
      sets.set(key, { name, type, ttl, data: [data] });
    }
  }
  return [...sets.values()];
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
