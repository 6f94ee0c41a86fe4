/**
 * Answering a client's Range from a stored complete response (RFC 9110
 * §14), pure. One byte range is served as 206; several, or a Range this
 * cache does not understand, get the whole response (§14.2: a server MAY
 * ignore Range); a range past the end gets 416.
 */
import { parseHttpDate } from "./http-date.ts";

export type RangeAnswer =
  /** Serve bytes start..end inclusive as 206. */
  | { start: number; end: number }
  /** 416 Range Not Satisfiable. */
  | "unsatisfiable"
  /** Ignore the Range: serve the whole response. */
  | undefined;

/** RFC 9110 §14.1.2: one byte-range-spec or suffix-range against a body of `size` bytes. */
export function byteRange(range: string | null, size: number): RangeAnswer {
  if (range === null) return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(range);
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  if (m[1] === "") {
    // suffix-range: the last N bytes.
    const n = Number(m[2]);
    if (n === 0) return "unsatisfiable";
    return size === 0 ? "unsatisfiable" : { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== "" && Number(m[2]) < start) return undefined;
  if (start >= size) return "unsatisfiable";
  return { start, end };
}

/**
 * RFC 9110 §13.1.5 If-Range: the range applies only when the validator
 * still names the stored representation: a strong entity-tag equal to its
 * ETag, or an HTTP-date equal to its Last-Modified.
 */
export function ifRangeHolds(
  ifRange: string | null,
  etag: string | undefined,
  lastModified: string | undefined,
): boolean {
  if (ifRange === null) return true;
  const v = ifRange.trim();
  if (v.startsWith('"') || v.startsWith("W/")) {
    return !v.startsWith("W/") && etag !== undefined && !etag.startsWith("W/") && v === etag;
  }
  const date = parseHttpDate(v);
  return date !== undefined && date === parseHttpDate(lastModified);
}
