/**
 * RFC 1035 §5 master files ("zone files"): import into RRsets and export.
 * Supported: $ORIGIN, $TTL (RFC 2308 §4), `@`, relative and absolute names, a
 * blank owner (the previous one), TTL and class in either order, BIND TTL units
 * (1h30m, 1d, 1w), parentheses across lines, `;` comments, quoted strings with
 * `\"`, `\\` and `\DDD` escapes, and the types of core/records.ts.
 * Not supported: $INCLUDE (an import is one self-contained text), classes other
 * than IN, escaped characters inside names.
 *
 * Records of one name and type form one RRset. When their TTLs differ the RRset
 * takes the minimum and a warning names the line (RFC 2181 §5.2 forbids mixed
 * TTLs; the minimum never lets a cache keep a record longer than its author asked).
 */
import { fqdn, isInZone, NameError, normaliseName } from "../core/names.ts";
import { presentation } from "../core/presentation.ts";
import type { RData, RDataByType, RRset, RRType } from "../core/records.ts";
import { MAX_TTL, parseRData, RR_TYPES, rrsetKey, toRRType } from "../core/records.ts";
import {
  type Entry,
  lexZoneFile,
  type Token,
  tokenString,
  ZoneFileError,
} from "./zonefile-lexer.ts";

export { ZoneFileError } from "./zonefile-lexer.ts";

export interface ZoneFileOptions {
  /** The zone's apex; relative names before any $ORIGIN are relative to it. */
  origin?: string;
  /** TTL for records that give none, until a $TTL directive. */
  defaultTtl?: number;
}

export interface ParsedZone {
  /** The zone apex: `opts.origin`, else the owner of the SOA. */
  origin: string;
  rrsets: RRset[];
  /** Accepted oddities (e.g. mixed TTLs in an RRset), each naming its line. */
  warnings: string[];
}

interface State {
  origin: string | undefined;
  ttl: number | undefined;
  lastTtl: number | undefined;
  owner: string | undefined;
}

interface ParsedRecord {
  name: string;
  type: RRType;
  ttl: number;
  data: RData;
  line: number;
}

export function parseZoneFile(text: string, opts: ZoneFileOptions = {}): ParsedZone {
  const apex = opts.origin === undefined ? undefined : normaliseName(opts.origin);
  const state: State = { origin: apex, ttl: opts.defaultTtl, lastTtl: undefined, owner: undefined };
  const records: ParsedRecord[] = [];
  for (const entry of lexZoneFile(text)) {
    const first = entry.tokens[0]!;
    if (!entry.blankOwner && !first.quoted && first.text.startsWith("$")) directive(entry, state);
    else records.push(parseRecord(entry, state));
  }
  return assemble(records, apex);
}

function directive(entry: Entry, state: State): void {
  const [head, arg, extra] = entry.tokens as [Token, Token | undefined, Token | undefined];
  const name = head.text.toUpperCase();
  if (name === "$INCLUDE") {
    fail(entry.line, "$INCLUDE is not supported; paste the included file's records in its place");
  }
  if (name !== "$ORIGIN" && name !== "$TTL") {
    fail(entry.line, `unknown directive "${head.text}"; supported are $ORIGIN and $TTL`);
  }
  if (!arg)
    fail(
      entry.line,
      `${name} needs a value, e.g. "${name} ${name === "$TTL" ? "3600" : "example.test."}"`,
    );
  if (extra) fail(extra.line, `unexpected "${extra.text}" after ${name} ${arg.text}`);
  if (name === "$TTL") state.ttl = parseTtl(arg, "$TTL");
  else state.origin = resolveName(arg, state);
}

function parseRecord(entry: Entry, state: State): ParsedRecord {
  const tokens = entry.tokens;
  let i = 0;
  if (!entry.blankOwner) state.owner = resolveName(tokens[i++]!, state);
  const owner = state.owner;
  if (owner === undefined) {
    fail(
      entry.line,
      "this line starts with blank space, so it reuses the previous owner name, but there is none",
    );
  }
  let ttl: number | undefined;
  let classSeen = false;
  let type: RRType | undefined;
  while (type === undefined) {
    const token = tokens[i++];
    if (!token)
      fail(
        entry.line,
        "expected a type after the owner name (e.g. A, TXT), found the end of the record",
      );
    const word = token.quoted ? "" : token.text;
    if (ttl === undefined && isTtlToken(word)) ttl = parseTtl(token, "TTL");
    else if (!classSeen && isClassToken(word)) {
      if (word.toUpperCase() !== "IN")
        fail(token.line, `class ${word} is not supported; only IN is served`);
      classSeen = true;
    } else {
      type = toRRType(word);
      if (!type) {
        fail(
          token.line,
          `expected a TTL or a class or a type after the owner name, got "${token.text}" (supported types: ${RR_TYPES.join(", ")})`,
        );
      }
    }
  }
  if (ttl !== undefined) state.lastTtl = ttl;
  // RFC 2308 §4: $TTL applies to records without one; RFC 1035 §5.1: else the last one given.
  const effectiveTtl = ttl ?? state.ttl ?? state.lastTtl;
  if (effectiveTtl === undefined) {
    fail(entry.line, 'no TTL for this record; give one on the record or put "$TTL 3600" above it');
  }
  const data = parseData(type, tokens.slice(i), entry.line, state);
  return { name: owner, type, ttl: effectiveTtl, data, line: entry.line };
}

/** Number of rdata fields per type (TXT takes one or more). */
const FIELDS: Record<RRType, string[]> = {
  A: ["address"],
  AAAA: ["address"],
  CNAME: ["target name"],
  NS: ["name server"],
  PTR: ["target name"],
  MX: ["preference", "exchange"],
  TXT: ["string"],
  SRV: ["priority", "weight", "port", "target"],
  SOA: ["mname", "rname", "serial", "refresh", "retry", "expire", "minimum"],
  CAA: ["flags", "tag", "value"],
};

function parseData(type: RRType, tokens: Token[], line: number, state: State): RData {
  const fields = FIELDS[type];
  const tooMany = type !== "TXT" && tokens.length > fields.length;
  if (tokens.length < fields.length || tooMany) {
    fail(
      line,
      `${type} takes ${type === "TXT" ? "one or more strings" : `${fields.length} field(s): ${fields.join(", ")}`}, got ${tokens.length}`,
    );
  }
  const t = (k: number) => tokens[k]!;
  const name = (k: number) => resolveName(t(k), state);
  const num = (k: number) => parseNumber(t(k), `${type} ${fields[k]}`);
  const timer = (k: number) => parseTtl(t(k), `SOA ${fields[k]}`);
  const raw: { [T in RRType]: () => unknown } = {
    A: () => plain(t(0), "an address"),
    AAAA: () => plain(t(0), "an address"),
    CNAME: () => name(0),
    NS: () => name(0),
    PTR: () => name(0),
    MX: () => ({ preference: num(0), exchange: name(1) }),
    TXT: () => tokens.map(tokenString),
    SRV: () => ({ priority: num(0), weight: num(1), port: num(2), target: name(3) }),
    SOA: () => ({
      mname: name(0),
      rname: name(1),
      serial: num(2),
      refresh: timer(3),
      retry: timer(4),
      expire: timer(5),
      minimum: timer(6),
    }),
    CAA: () => ({ flags: num(0), tag: plain(t(1), "a tag"), value: tokenString(t(2)) }),
  };
  const result = parseRDataSafe(type, raw[type]());
  if (!result.ok) fail(line, `invalid ${type} data: ${result.reason}`);
  return result.data;
}

function parseRDataSafe(
  type: RRType,
  value: unknown,
): { ok: true; data: RData } | { ok: false; reason: string } {
  try {
    return { ok: true, data: parseRData(type, value) };
  } catch (e) {
    const issues = (e as { issues?: { path: PropertyKey[]; message: string }[] }).issues;
    if (!issues) throw e;
    return {
      ok: false,
      reason: issues
        .map((i) => (i.path.length ? `${i.path.map(String).join(".")}: ${i.message}` : i.message))
        .join("; "),
    };
  }
}

/** Names: `@` is the origin, a trailing dot makes a name absolute, else the origin is appended. */
function resolveName(token: Token, state: State): string {
  const text = plain(token, "a name");
  if (token.escaped) {
    fail(
      token.line,
      `"${text}": escapes in names are not supported; labels hold only letters, digits, "-" and "_"`,
    );
  }
  const absolute = text === "@" || text.endsWith(".");
  if (!absolute && state.origin === undefined) {
    fail(
      token.line,
      `relative name "${text}" but no origin is known; add "$ORIGIN example.test." above it`,
    );
  }
  if (text === "@" && state.origin === undefined) {
    fail(
      token.line,
      '"@" stands for the origin, but none is known; add "$ORIGIN example.test." above it',
    );
  }
  const full =
    text === "@"
      ? state.origin!
      : absolute
        ? text
        : state.origin
          ? `${text}.${state.origin}`
          : text;
  try {
    return normaliseName(full);
  } catch (e) {
    if (e instanceof NameError) fail(token.line, e.message);
    throw e;
  }
}

function plain(token: Token, what: string): string {
  if (token.quoted) fail(token.line, `expected ${what}, got the quoted string "${token.text}"`);
  return token.text;
}

const TTL_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

function isTtlToken(word: string): boolean {
  return /^\d+$/.test(word) || /^(\d+[smhdw])+$/i.test(word);
}

function isClassToken(word: string): boolean {
  return /^(IN|CH|CS|HS|ANY|NONE|CLASS\d+)$/i.test(word);
}

/** A TTL in seconds or with BIND units ("1h30m"); at most 2^31-1 (RFC 2181 §8). */
function parseTtl(token: Token, what: string): number {
  const word = token.quoted ? "" : token.text;
  if (!isTtlToken(word)) {
    fail(
      token.line,
      `${what} must be seconds or a duration like 1h30m, 1d, 1w; got "${token.text}"`,
    );
  }
  let seconds = 0;
  if (/^\d+$/.test(word)) seconds = Number(word);
  else
    for (const [, n, unit] of word.matchAll(/(\d+)([smhdw])/gi))
      seconds += Number(n) * TTL_UNITS[unit!.toLowerCase()]!;
  if (seconds > MAX_TTL)
    fail(token.line, `${what} ${token.text} is over ${MAX_TTL} seconds (RFC 2181 §8)`);
  return seconds;
}

function parseNumber(token: Token, what: string): number {
  const word = plain(token, what);
  if (!/^\d+$/.test(word)) fail(token.line, `${what} must be a number, got "${token.text}"`);
  return Number(word);
}

/** Groups records into RRsets and checks the zone's shape: one SOA at the apex, all names inside. */
function assemble(records: ParsedRecord[], apex: string | undefined): ParsedZone {
  const soas = records.filter((r) => r.type === "SOA");
  const soa = soas[0];
  if (!soa) {
    fail(
      records[0]?.line ?? 1,
      'the zone has no SOA record; add one at the apex, e.g. "@ 3600 IN SOA ns1 hostmaster 1 7200 3600 1209600 300"',
    );
  }
  if (soas[1])
    fail(
      soas[1].line,
      `a second SOA record (the first is on line ${soa.line}); a zone has exactly one`,
    );
  const origin = apex ?? soa.name;
  if (soa.name !== origin)
    fail(
      soa.line,
      `the SOA belongs at the zone apex "${fqdn(origin)}", not at "${fqdn(soa.name)}"`,
    );

  const warnings: string[] = [];
  const sets = new Map<string, { set: RRset; line: number; keys: Set<string> }>();
  for (const r of records) {
    if (!isInZone(r.name, origin)) {
      fail(
        r.line,
        `"${fqdn(r.name)}" is outside the zone "${fqdn(origin)}"; records must lie at or below the apex`,
      );
    }
    const key = rrsetKey(r.name, r.type);
    const entry = sets.get(key);
    if (!entry) {
      sets.set(key, {
        set: { name: r.name, type: r.type, ttl: r.ttl, data: [r.data] },
        line: r.line,
        keys: new Set([JSON.stringify(r.data)]),
      });
      continue;
    }
    if (r.ttl !== entry.set.ttl) {
      const min = Math.min(r.ttl, entry.set.ttl);
      warnings.push(
        `line ${r.line}: TTL ${r.ttl} differs from ${entry.set.ttl} of the ${fqdn(r.name)} ${r.type} record on line ${entry.line}; the RRset uses the minimum, ${min} (RFC 2181 §5.2)`,
      );
      entry.set.ttl = min;
    }
    // RFC 2181 §5: duplicate records in an RRset are suppressed.
    const dataKey = JSON.stringify(r.data);
    if (entry.keys.has(dataKey)) continue;
    entry.keys.add(dataKey);
    (entry.set.data as RData[]).push(r.data);
  }
  checkCnames(sets);
  return { origin, rrsets: [...sets.values()].map((e) => e.set), warnings };
}

/** RFC 2181 §10.1: a CNAME is alone at its name, and an RRset of one record. */
function checkCnames(sets: Map<string, { set: RRset; line: number }>): void {
  const owners = new Map<string, { type: RRType; line: number }[]>();
  for (const { set, line } of sets.values()) {
    const list = owners.get(set.name) ?? [];
    list.push({ type: set.type, line });
    owners.set(set.name, list);
    if (set.type === "CNAME" && set.data.length > 1) {
      fail(
        line,
        `"${fqdn(set.name)}" has ${set.data.length} CNAME records; a name has at most one (RFC 2181 §10.1)`,
      );
    }
  }
  for (const [name, list] of owners) {
    const cname = list.find((e) => e.type === "CNAME");
    const other = list.find((e) => e.type !== "CNAME");
    if (cname && other) {
      fail(
        Math.max(cname.line, other.line),
        `"${fqdn(name)}" has a CNAME (line ${cname.line}) and ${other.type} records (line ${other.line}); a CNAME must be alone at its name (RFC 2181 §10.1)`,
      );
    }
  }
}

function fail(line: number, reason: string): never {
  throw new ZoneFileError(line, reason);
}

/**
 * Writes a zone file that parseZoneFile reads back into the same RRsets:
 * $ORIGIN and $TTL (the SOA's TTL) first, the SOA, then names in canonical
 * order (RFC 4034 §6.1) with types in core/records.ts order.
 */
export function formatZoneFile(origin: string, rrsets: RRset[]): string {
  const zone = normaliseName(origin);
  const soa = rrsets.find((s) => s.type === "SOA" && s.name === zone);
  const defaultTtl = soa?.ttl ?? rrsets[0]?.ttl ?? 3600;
  const sorted = [...rrsets].sort((a, b) => compareRRsets(a, b, zone));
  const lines = [`$ORIGIN ${fqdn(zone)}`, `$TTL ${defaultTtl}`];
  for (const set of sorted) {
    const owner = relative(set.name, zone);
    const ttl = set.ttl === defaultTtl ? "" : String(set.ttl);
    for (const data of set.data) {
      lines.push(
        [owner, ttl, "IN", set.type, formatData(set.type, data, zone)].filter(Boolean).join("\t"),
      );
    }
  }
  return `${lines.join("\n")}\n`;
}

function compareRRsets(a: RRset, b: RRset, zone: string): number {
  const rank = (s: RRset) => (s.type === "SOA" && s.name === zone ? 0 : 1);
  return (
    rank(a) - rank(b) ||
    compareNames(a.name, b.name) ||
    RR_TYPES.indexOf(a.type) - RR_TYPES.indexOf(b.type)
  );
}

/** RFC 4034 §6.1 canonical order: compare label by label from the right. */
function compareNames(a: string, b: string): number {
  const la = a === "" ? [] : a.split(".").reverse();
  const lb = b === "" ? [] : b.split(".").reverse();
  for (let i = 0; i < Math.min(la.length, lb.length); i++) {
    if (la[i] !== lb[i]) return la[i]! < lb[i]! ? -1 : 1;
  }
  return la.length - lb.length;
}

function relative(name: string, zone: string): string {
  if (name === zone) return "@";
  if (!isInZone(name, zone)) return fqdn(name);
  return zone === "" ? name : name.slice(0, -zone.length - 1);
}

/** One line per record, except the SOA, whose numbers are spread over lines and named. */
function formatData(type: RRType, data: RData, zone: string): string {
  const rel = (n: string) => relative(n, zone);
  if (type !== "SOA") return presentation(type, data, rel);
  const d = data as RDataByType["SOA"];
  const pad = "\t\t\t\t";
  return [
    `${rel(d.mname)} ${rel(d.rname)} (`,
    `${pad}${d.serial}\t; serial`,
    `${pad}${d.refresh}\t; refresh`,
    `${pad}${d.retry}\t; retry`,
    `${pad}${d.expire}\t; expire`,
    `${pad}${d.minimum} )\t; minimum (negative-answer TTL, RFC 2308)`,
  ].join("\n");
}
