/**
 * Which header fields travel where (pure): what a fill forwards to the
 * parent, what is stored and replayed, what a 304 may update, and the
 * targeted CDN-Cache-Control field (RFC 9213) this cache obeys first.
 */
import { type CacheControl, H, parseCacheControl } from "../core/http.ts";

/** Hop-by-hop fields (RFC 9110 §7.6.1), besides those the Connection field names. */
const HOP_BY_HOP = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
];

/** RFC 9110 §7.6.1: the hop-by-hop fields of a message, Connection's named options included. */
export function hopByHop(headers: Headers): Set<string> {
  return withConnectionOptions(new Set(HOP_BY_HOP), headers);
}

/**
 * `names` and the options the message's Connection field names (RFC 9110
 * §7.6.1): `names` itself when there are none, else a copy (so a shared
 * set stays as it is).
 */
function withConnectionOptions(names: ReadonlySet<string>, headers: Headers): Set<string> {
  const connection = headers.get("connection");
  if (connection === null) return names as Set<string>;
  const out = new Set(names);
  for (const option of connection.split(",")) {
    const name = option.trim().toLowerCase();
    if (name) out.add(name);
  }
  return out;
}

/**
 * Request fields a fill does not pass on: the conditionals and Range,
 * because the cache asks for the whole current response and answers the
 * client's own conditionals and ranges itself (RFC 9111 §4.3.2, §3.4);
 * Host and framing, which fetch sets; X-Min-Serial, which the engine sets.
 */
const NOT_FORWARDED = [
  "host",
  "content-length",
  "if-none-match",
  "if-modified-since",
  "if-match",
  "if-unmodified-since",
  "if-range",
  "range",
  H.minSerial,
];

/** What a fill leaves out before Connection's options: hop-by-hop and not forwarded (shared, read-only). */
const NOT_FILLED: ReadonlySet<string> = new Set([...HOP_BY_HOP, ...NOT_FORWARDED]);
/** What is not stored before Connection's options: hop-by-hop, Age, Content-Length (shared, read-only). */
const NOT_STORED: ReadonlySet<string> = new Set([...HOP_BY_HOP, "age", "content-length"]);

/**
 * Content codings the Fetch API decodes on the way in (gzip, deflate, br):
 * the body the engine reads is then the decoded one. zstd is decoded by
 * some runtimes and not others, so a fill never offers it.
 */
const DECODED_CODINGS = new Set(["gzip", "x-gzip", "deflate", "br"]);

/**
 * The request a fill sends to the parent: the client's end-to-end fields
 * without the hop-by-hop ones (RFC 9110 §7.6.1), so an origin that reads a
 * request field, and varies on it, works behind the edge. Appended to
 * `out`, an empty field list (the simulator's is lighter, infra/sim/hop.ts).
 */
export function fillRequestHeaders(request: Headers, out: Headers = new Headers()): Headers {
  const skip = withConnectionOptions(NOT_FILLED, request);
  // The fields to keep appended in one pass over the client's list, as a
  // copy of it would take them (its names in order, a name's lines as one
  // combined value): not a copy, a second pass to find the names to leave
  // out and a delete for each (every pass over a Headers sorts its list
  // anew). A delete per name that might be there would cost a validated
  // lookup each. A Connection option that is no field name is simply never
  // met (it made the fill throw before).
  request.forEach((value, name) => {
    if (!skip.has(name)) out.append(name, value);
  });
  const accepted = out.get("accept-encoding");
  if (accepted !== null && /zstd/i.test(accepted)) {
    const rest = accepted.split(",").filter((c) => !/^\s*zstd\b/i.test(c));
    if (rest.length > 0) out.set("accept-encoding", rest.join(",").trim());
    else out.delete("accept-encoding");
  }
  return out;
}

/** The request an unsafe or uncached request forwards: everything end-to-end (RFC 9110 §7.6.1). */
export function passRequestHeaders(request: Headers): Headers {
  const out = new Headers(request);
  // The body is re-sent whole: fetch frames it itself.
  for (const name of [...hopByHop(request), "host", "content-length"]) out.delete(name);
  return out;
}

/** Whether fetch already decoded the body: every coding listed is one it decodes. */
export function decodedByFetch(contentEncoding: string | null): boolean {
  if (contentEncoding === null) return false;
  const codings = contentEncoding
    .split(",")
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c.length > 0);
  return codings.length > 0 && codings.every((c) => DECODED_CODINGS.has(c));
}

/**
 * The fields a response is stored and replayed with (RFC 9111 §3.1): not
 * the hop-by-hop ones (those Connection names included), not Age (the cache
 * computes its own), not Content-Length (the body is re-framed), and
 * Content-Encoding only while the body is still encoded.
 */
export function storedHeaders(headers: Headers): [string, string][] {
  const skip = withConnectionOptions(NOT_STORED, headers);
  const decoded = decodedByFetch(headers.get("content-encoding"));
  const out: [string, string][] = [];
  headers.forEach((value, name) => {
    if (!skip.has(name) && !(decoded && name === "content-encoding")) out.push([name, value]);
  });
  return out;
}

/**
 * Fields a 304 does not update (RFC 9111 §3.2, "to assure integrity of the
 * stored response"): those that describe the stored bytes rather than the
 * representation's metadata.
 */
export const BODY_FIELDS = new Set([
  "content-encoding",
  "content-length",
  "content-md5",
  "content-range",
  "content-digest",
  "digest",
]);

/** RFC 8941 §3.2 dictionary member: a key, optionally `=` an item, optionally parameters. */
const SF_MEMBER =
  /^[a-z*][a-z0-9_\-.*]*(=(-?\d{1,15}(\.\d{1,3})?|"(?:[^"\\]|\\["\\])*"|[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*|\?[01]))?(;\s*[a-z*][a-z0-9_\-.*]*(=[^;,]*)?)*$/;

/**
 * RFC 9213 CDN-Cache-Control: an RFC 8941 Dictionary of Cache-Control
 * response directives aimed at CDNs. Undefined when absent or invalid
 * (§2.1: an invalid field is ignored, as if absent).
 */
export function targetedCacheControl(value: string | null | undefined): CacheControl | undefined {
  if (value === null || value === undefined) return undefined;
  const members = value.split(",").map((m) => m.trim());
  if (members.some((m) => !SF_MEMBER.test(m))) return undefined;
  return parseCacheControl(value);
}
