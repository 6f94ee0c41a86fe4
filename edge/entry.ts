/**
 * Building and refreshing cache entries from parent responses (pure).
 */
import { BODY_FIELDS, storedHeaders } from "./fields.ts";
import { parseHttpDate } from "./http-date.ts";
import {
  type CacheEntry,
  correctedInitialAge,
  describe,
  freshnessLifetime,
  parseAge,
  varyValues,
} from "./policy.ts";

export interface Exchange {
  /** RFC 9111 §4.2.3 request_time: when the request left (ms). */
  requestTime: number;
  /** RFC 9111 §4.2.3 response_time: when the response arrived (ms). */
  responseTime: number;
  response: Response;
  body: Uint8Array<ArrayBuffer>;
}

/** A new entry from a full parent response to a request. */
export function entryFromResponse(key: string, request: Headers, x: Exchange): CacheEntry {
  const headers = storedHeaders(x.response.headers);
  const dateValue = parseHttpDate(x.response.headers.get("date"));
  // RFC 9110 §6.6.1: a cache adds Date when the response lacks one.
  if (dateValue === undefined) headers.push(["date", new Date(x.responseTime).toUTCString()]);
  return withTiming(
    {
      key,
      status: x.response.status,
      headers,
      body: x.body,
      vary: varyValues(x.response.headers.get("vary") ?? undefined, request),
      invalidated: false,
    },
    x,
    dateValue,
  );
}

/**
 * RFC 9111 §4.3.4: whether a 304 selects the stored response: not when it
 * carries an entity-tag other than the stored one.
 */
export function selectedBy304(prior: CacheEntry, notModified: Response): boolean {
  const etag = notModified.headers.get("etag");
  if (etag === null || prior.etag === undefined) return true;
  return etag.replace(/^W\//, "") === prior.etag.replace(/^W\//, "");
}

/**
 * RFC 9111 §4.3.4: a 304 freshens the stored response: its header fields
 * replace the stored ones, and the entry's age restarts from the 304's own
 * Date and Age, so it carries the parent's Age forward.
 */
export function freshen(prior: CacheEntry, x: Exchange): CacheEntry {
  // Merged as a Map of the fields would merge them (each name once, where it
  // first came, with its last value), without building one per 304: every
  // revalidation of every edge comes here, and the fields are a dozen.
  const merged: [string, string][] = [];
  for (const field of prior.headers) put(merged, field);
  for (const field of storedHeaders(x.response.headers)) {
    if (!BODY_FIELDS.has(field[0])) put(merged, field);
  }
  const dateValue = parseHttpDate(x.response.headers.get("date"));
  if (dateValue === undefined) put(merged, ["date", new Date(x.responseTime).toUTCString()]);
  return withTiming(
    {
      key: prior.key,
      status: prior.status,
      headers: merged,
      body: prior.body,
      vary: prior.vary,
      invalidated: false,
    },
    x,
    dateValue,
  );
}

/** Sets `field` in `fields`: in place of the one of its name, else at the end. */
function put(fields: [string, string][], field: [string, string]): void {
  for (let i = 0; i < fields.length; i++) {
    if (fields[i]![0] === field[0]) {
      fields[i] = field;
      return;
    }
  }
  fields.push(field);
}

function withTiming(
  base: Pick<CacheEntry, "key" | "status" | "headers" | "body" | "vary" | "invalidated">,
  x: Exchange,
  dateValue: number | undefined,
): CacheEntry {
  const d = describe(base.headers);
  const ageField = x.response.headers.get("age");
  const ageValue = parseAge(ageField);
  // Written out field by field, in the order spreading base and d gave:
  // every fill and revalidation makes an entry, and a spread of two objects
  // of other shapes is a slow copy.
  return {
    key: base.key,
    status: base.status,
    headers: base.headers,
    body: base.body,
    vary: base.vary,
    invalidated: base.invalidated,
    cc: d.cc,
    etag: d.etag,
    serial: d.serial,
    surrogateKeys: d.surrogateKeys,
    requestTime: x.requestTime,
    responseTime: x.responseTime,
    correctedInitialAge: correctedInitialAge({
      requestTime: x.requestTime,
      responseTime: x.responseTime,
      dateValue,
      ageValue,
    }),
    // RFC 9111 §5.1 says to ignore an invalid Age; not knowing how old the
    // response is, this cache does not reuse it unvalidated (the
    // conservative side, as for an invalid Expires, §5.3).
    freshnessLifetime:
      ageField !== null && ageValue === undefined ? 0 : freshnessLifetime(d.cc, base),
  };
}
