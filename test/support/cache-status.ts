/**
 * Reads RFC 9211 Cache-Status in tests. The list runs from the cache closest
 * to the origin to the one closest to the client (§2), so a cache's own
 * member for a response is the last one naming it.
 */

/** The list members in order, split at commas outside sf-strings (RFC 8941 §3.1, §3.3.3). */
export function cacheStatusMembers(field: string | null | undefined): string[] {
  const members: string[] = [];
  let current = "";
  let quoted = false;
  for (let i = 0; i < (field ?? "").length; i++) {
    const ch = field![i]!;
    if (quoted && ch === "\\") {
      current += ch + (field![++i] ?? "");
      continue;
    }
    if (ch === '"') quoted = !quoted;
    if (ch === "," && !quoted) {
      members.push(current.trim());
      current = "";
    } else {
      current += ch;
    }
  }
  if (current.trim() !== "") members.push(current.trim());
  return members;
}

/** The cache a member names: its sf-token, or its sf-string unquoted. */
export function cacheOf(member: string): string {
  const m = /^"((?:[^"\\]|\\.)*)"/.exec(member);
  if (m) return m[1]!.replace(/\\(.)/g, "$1");
  return member.split(";")[0]!.trim();
}

/** A fetch or Miniflare response: anything with headers. */
interface WithHeaders {
  headers: { get(name: string): string | null };
}

/** The member of cache `id` (the last one naming it), or undefined when it added none. */
export function cacheStatusOf(from: WithHeaders | string | null, id: string): string | undefined {
  const field = typeof from === "object" && from !== null ? from.headers.get("cache-status") : from;
  return cacheStatusMembers(field).findLast((m) => cacheOf(m) === id);
}
