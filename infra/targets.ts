/**
 * DNS servers that propagate does not run, as `measure` and `plan` ask them:
 * a plain DNS server (`dns://HOST:PORT`, UDP with TCP when the answer is
 * truncated, RFC 1035 §4.2.1 and RFC 7766 §5), a DoH endpoint (RFC 8484,
 * `https://HOST/dns-query`; `http://` too, for local servers) or a DNS JSON
 * endpoint (`https://HOST/resolve`, the Google/Cloudflare shape).
 *
 * `ask` never throws: what a target said is an `Observation`, either an
 * answer (rcode, values, remaining TTL, or for a negative answer its RFC 2308
 * TTL) or an error with its reason (timeout, refused connection, SERVFAIL,
 * REFUSED, a bad HTTP status), so one bad target never stops the others.
 */
import { randomInt } from "node:crypto";
import dgram from "node:dgram";
import { readFile } from "node:fs/promises";
import net from "node:net";
import dnsPacket from "dns-packet";
import type { Clock } from "../core/clock.ts";
import { queryTcp } from "../core/dns-transport.ts";
import { UsageError } from "../core/flags.ts";
import { presentation, quoteString } from "../core/presentation.ts";
import { type RData, RR_TYPE_CODES, RR_TYPES, type RRType } from "../core/records.ts";

export type TargetKind = "dns" | "doh" | "json";

export interface Target {
  label: string;
  kind: TargetKind;
  /** As given (`dns://127.0.0.1:5300`, `https://dns.example/dns-query`). */
  url: string;
  host: string;
  port: number;
}

/** A target that could not even be parsed: reported with its reason, never asked. */
export interface BadTarget {
  label: string;
  url: string;
  error: string;
}

export function isBad(t: Target | BadTarget): t is BadTarget {
  return "error" in t;
}

const FORMS = "dns://HOST:PORT, https://HOST/dns-query (DoH) or https://HOST/resolve (DNS JSON)";

/**
 * `URL` or `LABEL=URL`. The label names the target in the report (default:
 * HOST:PORT for DNS, the URL otherwise).
 */
export function parseTarget(spec: string, label?: string): Target | BadTarget {
  let url = spec.trim();
  const eq = /^([A-Za-z0-9_.-]+)=(.*)$/.exec(url);
  if (eq && !label) {
    label = eq[1]!;
    url = eq[2]!;
  }
  const bad = (reason: string): BadTarget => ({
    label: label ?? url,
    url,
    error: `"${url}" is not a target: ${reason}; expected ${FORMS}`,
  });
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return bad("not a URL");
  }
  if (u.protocol === "dns:") {
    const m = /^dns:\/\/(\[[^\]]+\]|[^:/[\]]+)(?::(\d{1,5}))?\/?$/.exec(url);
    const port = m?.[2] === undefined ? 53 : Number(m[2]);
    if (!m || port < 1 || port > 65535) return bad("a DNS target is dns://HOST or dns://HOST:PORT");
    const host = m[1]!.replace(/^\[|\]$/g, "");
    return { label: label ?? `${host}:${port}`, kind: "dns", url, host, port };
  }
  if (u.protocol === "https:" || u.protocol === "http:") {
    if (!u.hostname) return bad("no host");
    const kind = /\/resolve\/?$/.test(u.pathname) ? "json" : "doh";
    const port = Number(u.port || (u.protocol === "https:" ? 443 : 80));
    return { label: label ?? url, kind, url, host: u.hostname, port };
  }
  return bad(`unknown scheme "${u.protocol}"`);
}

/**
 * A targets file: one target per line, `LABEL URL` or `URL`; blank lines and
 * `#` comments are skipped. A line that does not parse is a BadTarget named
 * by its line number, so the others are still measured.
 */
export async function readTargetsFile(path: string): Promise<(Target | BadTarget)[]> {
  const text = await readFile(path, "utf8");
  const out: (Target | BadTarget)[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/#.*/, "").trim();
    if (!line) return;
    const parts = line.split(/\s+/);
    if (parts.length > 2) {
      out.push({
        label: `${path}:${i + 1}`,
        url: line,
        error: `${path} line ${i + 1}: expected "LABEL URL" or "URL", got "${line}"`,
      });
      return;
    }
    out.push(parts.length === 2 ? parseTarget(parts[1]!, parts[0]) : parseTarget(parts[0]!));
  });
  return out;
}

/** The targets of --target and --targets; bad ones stay in the list, to be reported. */
export async function targetsFrom(
  given: string[] | undefined,
  file: string | undefined,
): Promise<(Target | BadTarget)[]> {
  const list = (given ?? []).map((spec) => parseTarget(spec));
  if (file) {
    try {
      list.push(...(await readTargetsFile(file)));
    } catch (err) {
      throw new UsageError(`--targets: cannot read ${file}: ${(err as Error).message}`);
    }
  }
  return list;
}

export type Rcode = "NOERROR" | "NXDOMAIN";

/** What a target answered, or why it did not. `at` is the clock time the reply came. */
export type Observation =
  | {
      ok: true;
      at: number;
      rcode: Rcode;
      /** The values of the asked type, in presentation form (normalised). */
      values: string[];
      /** Remaining TTL of the answer (s): the smallest over its records of the asked type. */
      ttl?: number;
      /**
       * A negative answer (NXDOMAIN, or NOERROR without the asked type): how
       * long it may be cached, RFC 2308 §5 min(SOA TTL, SOA MINIMUM) of the
       * SOA in its authority section (a cache counts that SOA's TTL down).
       */
      negativeTtl?: number;
      /** The authority SOA of a negative answer: its owner (the zone), TTL and MINIMUM. */
      soa?: { zone: string; ttl: number; minimum: number };
    }
  | { ok: false; at: number; error: string };

/** A value as it is compared: presentation form, names lower-cased and absolute, TXT quoted. */
export function normaliseValue(type: RRType, value: string): string {
  const v = value.trim();
  if (type === "TXT") return v.startsWith('"') ? v : quoteString(v);
  if (type === "CNAME" || type === "NS" || type === "PTR") {
    const n = v.toLowerCase();
    return n.endsWith(".") ? n : `${n}.`;
  }
  return type === "CAA" ? v : v.toLowerCase();
}

export function parseType(value: string): RRType | undefined {
  const t = value.toUpperCase();
  return (RR_TYPES as readonly string[]).includes(t) ? (t as RRType) : undefined;
}

const RCODE_NAMES: Record<number, string> = {
  1: "FORMERR",
  2: "SERVFAIL",
  4: "NOTIMP",
  5: "REFUSED",
};

/** A reply's values of `type`, in the same form as normaliseValue. */
function packetValues(
  type: RRType,
  answers: dnsPacket.Answer[],
): { values: string[]; ttl?: number } {
  const mine = answers.filter((a) => a.type === type);
  const values = mine.map((a) => {
    const d = (a as { data: unknown }).data;
    if (type === "TXT") {
      const parts = (Array.isArray(d) ? d : [d]) as (Buffer | string)[];
      return parts.map((p) => quoteString(Buffer.from(p).toString())).join(" ");
    }
    if (typeof d === "string") return normaliseValue(type, d);
    return normaliseValue(type, presentation(type, d as RData));
  });
  const ttls = mine.map((a) => (a as { ttl?: number }).ttl ?? 0);
  return { values, ...(ttls.length > 0 && { ttl: Math.min(...ttls) }) };
}

function fromPacket(reply: dnsPacket.Packet, type: RRType, at: number): Observation {
  const rcode = ((reply.flags ?? 0) & 0xf) as number;
  if (rcode !== 0 && rcode !== 3) {
    return { ok: false, at, error: `${RCODE_NAMES[rcode] ?? `rcode ${rcode}`} (rcode ${rcode})` };
  }
  const { values, ttl } = packetValues(type, reply.answers ?? []);
  const soaRr = (reply.authorities ?? []).find((a) => a.type === "SOA") as
    | { name: string; ttl?: number; data: { minimum: number } }
    | undefined;
  const soa = soaRr && {
    zone: soaRr.name.toLowerCase(),
    ttl: soaRr.ttl ?? 0,
    minimum: soaRr.data.minimum,
  };
  const negative = rcode === 3 || values.length === 0;
  return {
    ok: true,
    at,
    rcode: rcode === 3 ? "NXDOMAIN" : "NOERROR",
    values,
    ...(ttl !== undefined && { ttl }),
    ...(negative && soa && { negativeTtl: Math.min(soa.ttl, soa.minimum), soa }),
  };
}

function encodeQuery(name: string, type: RRType, id: number): Buffer {
  return dnsPacket.encode({
    type: "query",
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type, name }],
    // RFC 6891: advertise 1232 bytes so most answers fit in one datagram.
    additionals: [{ type: "OPT", name: ".", udpPayloadSize: 1232 } as dnsPacket.Answer],
  });
}

/** Why a socket or fetch failed, in words a user acts on. */
function reason(err: unknown, timeoutMs: number): string {
  const e = err as { code?: string; name?: string; message?: string; cause?: unknown };
  const cause = e.cause as { code?: string; message?: string } | undefined;
  const code = e.code ?? cause?.code;
  if (e.name === "TimeoutError" || code === "ETIMEDOUT" || /within \d+ ms/.test(e.message ?? ""))
    return `timeout: no reply within ${timeoutMs} ms`;
  if (code === "ECONNREFUSED") return "unreachable: connection refused (ECONNREFUSED)";
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return `unreachable: host not found (${code})`;
  if (code) return `unreachable: ${code}`;
  return cause?.message ?? e.message ?? String(err);
}

/**
 * One query over a connected UDP socket: a closed port answers with an ICMP
 * error, which a connected socket reports as ECONNREFUSED at once instead of
 * a timeout. Replies with another ID are ignored (RFC 5452 §4.3).
 */
function queryUdpConnected(host: string, port: number, msg: Buffer, id: number, timeoutMs: number) {
  return new Promise<Buffer>((resolve, reject) => {
    const sock = dgram.createSocket(net.isIPv6(host) ? "udp6" : "udp4");
    let finished = false;
    const done = (err: Error | undefined, reply?: Buffer) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      sock.close();
      if (err) reject(err);
      else resolve(reply!);
    };
    const timer = setTimeout(
      () =>
        done(Object.assign(new Error(`no reply within ${timeoutMs} ms`), { code: "ETIMEDOUT" })),
      timeoutMs,
    );
    sock.on("error", (err) => done(err));
    sock.on("message", (reply) => {
      if (reply.length >= 2 && reply.readUInt16BE(0) === id) done(undefined, reply);
    });
    sock.connect(port, host, () => sock.send(msg));
  });
}

async function askDns(t: Target, name: string, type: RRType, timeoutMs: number, clock: Clock) {
  const id = randomInt(0, 0x10000);
  const query = encodeQuery(name, type, id);
  let reply = dnsPacket.decode(await queryUdpConnected(t.host, t.port, query, id, timeoutMs));
  // RFC 7766 §5: a truncated UDP answer is asked again over TCP.
  if (((reply.flags ?? 0) & dnsPacket.TRUNCATED_RESPONSE) !== 0) {
    reply = dnsPacket.decode(await queryTcp(t.host, t.port, query, timeoutMs));
  }
  return fromPacket(reply, type, clock.now());
}

async function httpGet(url: URL, accept: string, timeoutMs: number): Promise<Response> {
  const res = await fetch(url, {
    headers: { accept },
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (!res.ok) {
    const body = (await res.text()).slice(0, 200).replace(/\s+/g, " ");
    throw new Error(`HTTP ${res.status}${body ? `: ${body}` : ""}`);
  }
  return res;
}

async function askDoh(t: Target, name: string, type: RRType, timeoutMs: number, clock: Clock) {
  // RFC 8484 §4.1: ID 0, so HTTP caches on the way can share the answer.
  const url = new URL(t.url);
  url.searchParams.set("dns", encodeQuery(name, type, 0).toString("base64url"));
  const res = await httpGet(url, "application/dns-message", timeoutMs);
  const body = Buffer.from(await res.arrayBuffer());
  let reply: dnsPacket.Packet;
  try {
    reply = dnsPacket.decode(body);
  } catch {
    throw new Error(
      `the reply is not a DNS message (content-type ${res.headers.get("content-type") ?? "none"}); is this a DoH endpoint?`,
    );
  }
  return fromPacket(reply, type, clock.now());
}

interface JsonAnswer {
  Status?: number;
  Answer?: { name: string; type: number; TTL: number; data: string }[];
  Authority?: { name: string; type: number; TTL: number; data: string }[];
}

async function askJson(t: Target, name: string, type: RRType, timeoutMs: number, clock: Clock) {
  const url = new URL(t.url);
  url.searchParams.set("name", name);
  url.searchParams.set("type", type);
  const res = await httpGet(url, "application/dns-json", timeoutMs);
  const body = (await res.json().catch(() => undefined)) as JsonAnswer | undefined;
  if (typeof body !== "object" || body === null || typeof body.Status !== "number") {
    throw new Error(
      `the reply is not DNS JSON (content-type ${res.headers.get("content-type") ?? "none"}); is this a /resolve endpoint?`,
    );
  }
  const at = clock.now();
  const status = body.Status;
  if (status !== 0 && status !== 3) {
    return {
      ok: false as const,
      at,
      error: `${RCODE_NAMES[status] ?? `rcode ${status}`} (rcode ${status})`,
    };
  }
  const code = RR_TYPE_CODES[type];
  const mine = (body.Answer ?? []).filter((a) => a.type === code);
  const values = mine.map((a) => normaliseValue(type, a.data));
  const soaRr = (body.Authority ?? []).find((a) => a.type === 6);
  const minimum = soaRr ? Number(soaRr.data.trim().split(/\s+/).at(-1)) : Number.NaN;
  const soa = soaRr &&
    Number.isFinite(minimum) && {
      zone: soaRr.name.toLowerCase().replace(/\.$/, ""),
      ttl: soaRr.TTL,
      minimum,
    };
  const negative = status === 3 || values.length === 0;
  return {
    ok: true as const,
    at,
    rcode: status === 3 ? ("NXDOMAIN" as const) : ("NOERROR" as const),
    values,
    ...(mine.length > 0 && { ttl: Math.min(...mine.map((a) => a.TTL)) }),
    ...(negative && soa && { negativeTtl: Math.min(soa.ttl, soa.minimum), soa }),
  };
}

/** Asks one target for NAME TYPE once; never throws. */
export async function ask(
  t: Target,
  name: string,
  type: RRType,
  opts: { timeoutMs: number; clock: Clock },
): Promise<Observation> {
  const ask = t.kind === "dns" ? askDns : t.kind === "doh" ? askDoh : askJson;
  try {
    return await ask(t, name, type, opts.timeoutMs, opts.clock);
  } catch (err) {
    return { ok: false, at: opts.clock.now(), error: reason(err, opts.timeoutMs) };
  }
}

/** "192.0.2.1 TTL 3 s", "NXDOMAIN, negative TTL 2 s (SOA)", "error: REFUSED (rcode 5)". */
export function describeObservation(o: Observation): string {
  if (!o.ok) return `error: ${o.error}`;
  if (o.values.length > 0) return `${o.values.join(" ")} TTL ${o.ttl} s`;
  const what = o.rcode === "NXDOMAIN" ? "NXDOMAIN" : "NODATA";
  return o.negativeTtl === undefined
    ? `${what} (no SOA)`
    : `${what}, negative TTL ${o.negativeTtl} s (SOA)`;
}
