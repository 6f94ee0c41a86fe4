/**
 * Upstream clients, the resolver's only way out: DoH to an edge or the origin
 * (RFC 8484 GET with ID 0, so HTTP caches on the path can share the answer),
 * or plain DNS to the origin (UDP, TCP when the answer is truncated).
 */
import { randomInt } from "node:crypto";
import { queryTcp, queryUdp } from "../core/dns-transport.ts";
import {
  bodyBytes,
  DNS_MESSAGE,
  DOH_PATH,
  H,
  parseCacheControl,
  parseSerialHeader,
} from "../core/http.ts";
import { UpstreamError } from "./answer.ts";
import type { Upstream } from "./cache.ts";
import { CLASS_IN, TYPE_OPT } from "./message.ts";

/** A recursion-desired query for (wire name, qtype); with `udpPayload` it carries an OPT (RFC 6891). */
export function buildQuery(id: number, name: Buffer, qtype: number, udpPayload?: number): Buffer {
  const opt = udpPayload === undefined ? 0 : 11;
  const msg = Buffer.alloc(12 + name.length + 4 + opt);
  msg.writeUInt16BE(id, 0);
  msg[2] = 0x01; // RD
  msg.writeUInt16BE(1, 4);
  msg.writeUInt16BE(opt ? 1 : 0, 10);
  name.copy(msg, 12);
  msg.writeUInt16BE(qtype, 12 + name.length);
  msg.writeUInt16BE(CLASS_IN, 14 + name.length);
  if (udpPayload !== undefined) {
    const at = 16 + name.length;
    msg.writeUInt16BE(TYPE_OPT, at + 1);
    msg.writeUInt16BE(udpPayload, at + 3);
  }
  return msg;
}

export interface DohOptions {
  /** 0: no timeout (the simulator: its clock is virtual, nothing waits in wall time). */
  timeoutMs: number;
  fetch?: typeof fetch;
}

/** A DoH GET's init: the fields of a plain question and of a prefetch, shared (never written). */
const ASK: RequestInit = Object.freeze({ headers: Object.freeze({ accept: DNS_MESSAGE }) });
const REVALIDATE: RequestInit = Object.freeze({
  headers: Object.freeze({ accept: DNS_MESSAGE, "cache-control": "no-cache" }),
});

/** Bound on the memo of DoH URLs (one per endpoint and question). */
const MAX_URLS = 10_000;
const urls = new Map<string, string>();

/**
 * The GET URL for a question (RFC 8484 §4.1), made once per endpoint and
 * question and shared: a request holds its URL for as long as it is out,
 * and a refresh wave of the simulator has tens of thousands out at once
 * (bench/results/simulate.md), each of which held a URL of its own.
 */
function dohUrl(endpoint: string, name: Buffer, qtype: number): string {
  const key = `${qtype} ${name.toString("latin1")} ${endpoint}`;
  let url = urls.get(key);
  if (url === undefined) {
    if (urls.size >= MAX_URLS) urls.clear();
    url = `${endpoint}?dns=${buildQuery(0, name, qtype).toString("base64url")}`;
    urls.set(key, url);
  }
  return url;
}

/**
 * RFC 8484 §4.1: GET <base>/dns-query?dns=<base64url, unpadded>, DNS ID 0.
 * A version floor travels as `X-Min-Serial`: the edge then treats older
 * cached entries as a miss and forwards the floor to its own parent.
 */
export function dohUpstream(base: string, opts: DohOptions): Upstream {
  const doFetch = opts.fetch ?? fetch;
  const endpoint = new URL(DOH_PATH, base).toString();
  return async (name, qtype, minSerial, revalidate) => {
    const url = dohUrl(endpoint, name, qtype);
    // A prefetch: every cache on the path revalidates (RFC 9111 §5.2.1.4), so the copy is fresher.
    // Without a floor or a timeout the fields and the init are constants, read and never written.
    let init: RequestInit;
    if (minSerial !== undefined) {
      const headers: Record<string, string> = revalidate
        ? { accept: DNS_MESSAGE, [H.minSerial]: String(minSerial), "cache-control": "no-cache" }
        : { accept: DNS_MESSAGE, [H.minSerial]: String(minSerial) };
      init = { headers };
    } else init = revalidate ? REVALIDATE : ASK;
    if (opts.timeoutMs > 0)
      init = { headers: init.headers, signal: AbortSignal.timeout(opts.timeoutMs) };
    const res = await doFetch(url, init);
    const bytes = await bodyBytes(res);
    const body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (res.status !== 200) {
      throw new UpstreamError(
        `DoH upstream ${endpoint} answered HTTP ${res.status}: ${body.toString().slice(0, 200)}`,
      );
    }
    // RFC 8484 §5.1: the time spent in HTTP caches is subtracted from the TTLs.
    const age = Number(res.headers.get("age") ?? 0);
    const cc = parseCacheControl(res.headers.get("cache-control"));
    return {
      message: body,
      age: Number.isInteger(age) && age > 0 ? age : 0,
      serial: parseSerialHeader(res.headers.get(H.serial)),
      staleWhileRevalidate: cc.staleWhileRevalidate ?? 0,
      cacheStatus: res.headers.get("cache-status"),
    };
  };
}

/**
 * Plain DNS over UDP, and over TCP when the UDP answer has TC set (RFC 7766 §5).
 * Only the origin is reached this way and it is always current, so a version
 * floor needs nothing here (answers carry no serial and are never refused).
 */
export function dnsUpstream(
  host: string,
  port: number,
  timeoutMs: number,
  udpPayload: number,
): Upstream {
  return async (name, qtype) => {
    const id = randomInt(0, 0x10000);
    const query = buildQuery(id, name, qtype, udpPayload);
    let reply = await queryUdp(host, port, query, timeoutMs);
    if (reply.length >= 4 && reply[2]! & 0x02) reply = await queryTcp(host, port, query, timeoutMs);
    if (reply.length < 12 || reply.readUInt16BE(0) !== id) {
      throw new UpstreamError(`DNS upstream ${host}:${port} answered with the wrong ID`);
    }
    return { message: reply, age: 0 };
  };
}

/** "http(s)://..." is DoH, "dns://host:port" is plain DNS. */
export function upstreamFromUrl(url: string, timeoutMs: number, udpPayload: number): Upstream {
  const u = new URL(url);
  if (u.protocol === "http:" || u.protocol === "https:") return dohUpstream(url, { timeoutMs });
  if (u.protocol === "dns:") {
    const host = u.hostname.replace(/^\[|\]$/g, "");
    return dnsUpstream(host, Number(u.port || 53), timeoutMs, udpPayload);
  }
  throw new Error(
    `upstream "${url}" must be http://host:port (DoH) or dns://host:port (plain DNS)`,
  );
}
