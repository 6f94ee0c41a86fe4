/**
 * `push` mode (pure): rewriting a cached DNS answer in place from an RRset
 * carried by a purge event, without asking the parent. Only answers that a
 * pushed RRset answers by itself are rewritten: the question's own name and
 * type, a NOERROR answer holding nothing but that RRset. Everything else
 * (CNAME chains, negative answers, referrals, other names) is left to the
 * caller, which soft-purges it.
 */
import { DOH_PATH, formatCacheControl, H, JSON_PATH } from "../core/http.ts";
import { fqdn } from "../core/names.ts";
import { presentation } from "../core/presentation.ts";
import { RR_TYPE_CODES, type RRset, rdataSchemas } from "../core/records.ts";
import { dohQuestion, type Question, rewriteWire } from "./dns-wire.ts";
import { type CacheEntry, describe, freshnessLifetime } from "./policy.ts";
import { typeOfParam } from "./rdata.ts";

/** The question a cached answer answers, and the form of the answer. */
export interface KeyQuestion extends Question {
  form: "json" | "wire";
}

/** The question a cache key asks: `/resolve?name=&type=` or DoH GET `/dns-query?dns=`. */
export function questionOf(key: string): KeyQuestion | undefined {
  const url = new URL(key, "http://edge.invalid");
  if (url.pathname === DOH_PATH) {
    const q = dohQuestion(url.searchParams.get("dns"));
    return q && { ...q, form: "wire" };
  }
  if (url.pathname !== JSON_PATH) return undefined;
  const name = url.searchParams.get("name");
  // The origin reads a missing type as A.
  const type = typeOfParam(url.searchParams.get("type") ?? "A");
  // cacheKey() has lower-cased the name and removed its trailing dot.
  return name && type ? { name, type, form: "json" } : undefined;
}

/**
 * The entry as the origin would now serve it: the body rewritten with the
 * RRset, fresh for the RRset's TTL from `now` (Age 0), the entry's own
 * stale windows kept, `ETag` and `X-Serial` set to the change's serial
 * (the RRset's new version). Undefined when the body cannot be rewritten exactly.
 */
export function pushedEntry(
  entry: CacheEntry,
  q: KeyQuestion,
  rrset: RRset,
  serial: number,
  now: number,
): CacheEntry | undefined {
  if (entry.status !== 200 || q.name !== rrset.name || q.type !== rrset.type) return undefined;
  const body = q.form === "json" ? rewriteJson(entry.body, rrset) : rewriteWire(entry.body, rrset);
  if (!body) return undefined;
  const cc = {
    ...entry.cc,
    maxAge: rrset.ttl,
    ...(entry.cc.sMaxAge !== undefined && { sMaxAge: rrset.ttl }),
  };
  const replaced: Record<string, string> = {
    date: new Date(now).toUTCString(),
    "cache-control": formatCacheControl(cc),
    etag: `"${serial}"`,
    [H.serial]: String(serial),
  };
  const headers: [string, string][] = [
    // The parent's Cache-Status described the old fill, not this answer.
    ...entry.headers.filter(([k]) => !(k in replaced) && k !== "cache-status" && k !== "expires"),
    ...Object.entries(replaced),
  ];
  const d = describe(headers);
  return {
    ...entry,
    ...d,
    headers,
    body,
    requestTime: now,
    responseTime: now,
    correctedInitialAge: 0,
    freshnessLifetime: freshnessLifetime(d.cc, { headers }),
    invalidated: false,
  };
}

interface JsonRecord {
  name: string;
  type: number;
  TTL: number;
  data: string;
}

/** The DNS JSON body with its Answer replaced; undefined unless it answered exactly this RRset. */
function rewriteJson(body: Uint8Array, rrset: RRset): Uint8Array<ArrayBuffer> | undefined {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(body));
  } catch {
    return undefined; // not ours to rewrite: the caller revalidates it instead
  }
  if (typeof json !== "object" || json === null) return undefined;
  const o = json as { Status?: unknown; TC?: unknown; Answer?: unknown; Authority?: unknown };
  const code = RR_TYPE_CODES[rrset.type];
  const owner = fqdn(rrset.name);
  const answers = Array.isArray(o.Answer) ? (o.Answer as Partial<JsonRecord>[]) : [];
  const plain =
    o.Status === 0 &&
    o.TC !== true &&
    o.Authority === undefined &&
    answers.length > 0 &&
    answers.every((a) => a.type === code && a.name?.toLowerCase() === owner);
  if (!plain || rrset.data.length === 0) return undefined;
  const Answer: JsonRecord[] = rrset.data.map((d) => ({
    name: owner,
    type: code,
    TTL: rrset.ttl,
    data: presentation(rrset.type, d),
  }));
  return new TextEncoder().encode(JSON.stringify({ ...o, Answer }));
}

/**
 * Whether every record of a pushed RRset is valid rdata of its type (the
 * origin's own schemas). Events arrive from the bus or by authenticated POST;
 * one that is not well formed is never served, only treated as a soft purge.
 */
export function wellFormed(rrset: RRset): boolean {
  const schema = rdataSchemas[rrset.type];
  return schema !== undefined && rrset.data.every((d) => schema.safeParse(d).success);
}
