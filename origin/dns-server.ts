/**
 * The origin's authoritative DNS on UDP and TCP: a thin adapter that feeds
 * core/dns-transport.ts into answerQuery. UDP answers are bounded (TC when too
 * big); TCP answers are not (RFC 7766 §5). With a `primary`, it is also the
 * primary of its zones: TSIG (RFC 8945) on any request, zone transfers
 * (RFC 5936, RFC 1995) to the allowed, and NOTIFY (RFC 1996) handling.
 */
import {
  type DnsReply,
  type DnsServer,
  type QueryInfo,
  startDnsServer,
} from "../core/dns-transport.ts";
import { type ResponseRateLimiter, truncatedResponse } from "../core/rate-limit.ts";
import {
  type FoundTsig,
  type KeyLookup,
  readTsig,
  signMessage,
  TSIG_ERROR,
  TsigStreamSigner,
  timeOtherData,
  unsignedTsigError,
  type VerifyResult,
  verifyMessage,
} from "../core/tsig.ts";
import type { AnswerCache } from "./answer-cache.ts";
import {
  type AnswerOptions,
  answerQuery,
  cachedAnswer,
  MAX_EDNS_UDP,
  type Resolution,
} from "./authoritative.ts";
import type { Store } from "./store.ts";
import {
  answerTransfer,
  errorReply,
  parseTransferRequest,
  QTYPE_AXFR,
  QTYPE_IXFR,
  questionType,
} from "./xfr.ts";
import type { IxfrHistory } from "./xfr-history.ts";
import type { ZoneSource } from "./zone.ts";

export interface AuthoritativeDnsOptions {
  host: string;
  /** 0 picks a free port, the same for UDP and TCP. */
  port: number;
  /** RFC 5001: returned to queries that ask for NSID. */
  nsid?: string;
  /**
   * Called after each answer (query logs, counters); resolution is absent for errors like
   * FORMERR; response is what is sent (empty when nothing is).
   */
  onAnswer?: (info: QueryInfo, resolution: Resolution | undefined, response: Buffer) => void;
  onError?: (err: unknown) => void;
  /** Zones past their SOA EXPIRE (a followed zone): answered SERVFAIL (RFC 1035 §4.3.5). */
  expired?: (zone: string) => boolean;
  /** Serve as the primary of the store's zones (transfers, TSIG, NOTIFY). */
  primary?: PrimaryOptions;
  /** Response rate limiting on UDP (core/rate-limit.ts); none: every answer is sent. */
  rrl?: ResponseRateLimiter;
  /**
   * Answers as wire bytes for unsigned queries (origin/answer-cache.ts); the
   * caller invalidates it on commit. Signed queries, transfers and NOTIFY never use it.
   */
  answerCache?: AnswerCache<Resolution>;
}

/** What an incoming NOTIFY (opcode 4) is told, by its RCODE. */
export type NotifyHandler = (
  zone: string,
  info: QueryInfo,
  key: string | undefined,
  query: Buffer,
) => number;

export interface PrimaryOptions {
  store: Store;
  history: IxfrHistory;
  /** Whether a transfer of `zone` from `address`, signed with `key`, is allowed (xfr-acl.ts). */
  acl: { allows(zone: string, address: string, key: string | undefined): boolean };
  keys: KeyLookup;
  /** Seconds since the epoch, for TSIG times. */
  now: () => number;
  log: (message: string) => void;
  /** A labelled counter (origin/metrics.ts `count`). */
  count: (name: string, help: string, labels: string) => void;
  /** NOTIFY to us (a followed zone's primary); absent: every NOTIFY is REFUSED. */
  onNotify?: NotifyHandler;
  /** After a transfer went out: the zone and the serial the client now holds. */
  onTransfer?: (zone: string, serial: number, info: QueryInfo, key: string | undefined) => void;
}

const RCODE = { NOERROR: 0, FORMERR: 1, NOTAUTH: 9, NOTIMP: 4, REFUSED: 5 } as const;
const OPCODE_NOTIFY = 4;

export function startAuthoritativeDns(
  zones: ZoneSource,
  opts: AuthoritativeDnsOptions,
): Promise<DnsServer> {
  const { host, port, nsid, onAnswer, onError, primary, expired, rrl, answerCache } = opts;
  const tcp: AnswerOptions = {
    ...(nsid !== undefined && { nsid }),
    ...(expired !== undefined && { expired }),
  };
  const udp: AnswerOptions = { maxUdp: MAX_EDNS_UDP, ...tcp };
  /** BIND-style RRL on UDP answers, cached or not (core/rate-limit.ts). */
  const send = (wire: Buffer, info: QueryInfo): Buffer | undefined => {
    if (wire.length === 0) return undefined;
    if (!rrl || info.transport !== "udp") return wire;
    const verdict = rrl.judge(info.address, wire);
    return verdict === "send" ? wire : verdict === "slip" ? truncatedResponse(wire) : undefined;
  };
  return startDnsServer({ host, port, onError }, (query, info) => {
    // The hot path: a plain unsigned query answered before. A query the cache
    // keys has no TSIG (at most an OPT record) and asks for no transfer.
    let missed = false;
    if (answerCache) {
      const hit = cachedAnswer(query, answerCache, info.transport === "udp" ? udp : tcp);
      if (hit === "miss") missed = true;
      else if (hit) {
        onAnswer?.(info, hit.resolution, hit.wire);
        return send(hit.wire, info);
      }
    }
    const maxUdp = info.transport === "udp" ? MAX_EDNS_UDP : undefined;
    const plain = (q: Buffer, cache?: AnswerCache<Resolution>): Buffer => {
      const { wire, resolution } = answerQuery(q, zones, {
        maxUdp,
        nsid,
        expired,
        ...(cache && { cache, missed }),
      });
      onAnswer?.(info, resolution, wire);
      return wire;
    };
    // A query the cache keys is plain (no TSIG: at most an OPT record; not a transfer
    // or NOTIFY): the primary would hand it back, so it goes straight to the answer path.
    if (primary && !missed) {
      // A signed query's inner message is answered afresh, never from the cache.
      const out = servePrimary(primary, query, info, (q) => plain(q), onAnswer);
      if (out !== "plain") return out;
    }
    return send(plain(query, answerCache), info);
  });
}

/**
 * The primary's part of a query: TSIG, transfers and NOTIFY. "plain" hands an
 * unsigned ordinary query back to the normal answer path.
 */
function servePrimary(
  p: PrimaryOptions,
  query: Buffer,
  info: QueryInfo,
  plain: (q: Buffer) => Buffer,
  onAnswer: AuthoritativeDnsOptions["onAnswer"],
): DnsReply | "plain" {
  if (query.length < 12 || query.readUInt16BE(2) & 0x8000) return "plain";
  const opcode = (query.readUInt16BE(2) >> 11) & 0xf;
  const qtype = questionType(query);
  const transfer = opcode === 0 && (qtype === QTYPE_AXFR || qtype === QTYPE_IXFR);
  const notify = opcode === OPCODE_NOTIFY;
  let found: FoundTsig | undefined;
  try {
    found = readTsig(query);
  } catch (err) {
    return refuse(
      p,
      query,
      info,
      RCODE.FORMERR,
      `malformed TSIG: ${(err as Error).message}`,
      onAnswer,
    );
  }
  if (!found && !transfer && !notify) return "plain";
  let verified: Extract<VerifyResult, { ok: true }> | undefined;
  if (found) {
    const v = verifyMessage(found, p.keys, { now: p.now() });
    if (!v.ok) return tsigError(p, query, found, v, info, onAnswer);
    verified = v;
  }
  const inner = found?.unsigned ?? query;
  const keyName = verified?.key.name;
  let messages: Buffer[];
  if (notify) messages = [incomingNotify(p, inner, info, keyName)];
  else if (transfer) messages = serveTransfer(p, inner, info, keyName);
  else messages = [plain(inner)];
  if (notify || transfer) onAnswer?.(info, undefined, messages[0] ?? Buffer.alloc(0));
  if (messages.length === 0 || messages[0]!.length === 0) return undefined;
  if (!verified) return messages;
  // RFC 8945 §4.3.1, §5.3.1: answers to a signed request are signed, chained to its MAC.
  if (messages.length === 1)
    return signMessage(messages[0]!, verified.key, { now: p.now(), requestMac: verified.mac }).wire;
  const signer = new TsigStreamSigner(verified.key, verified.mac, p.now);
  return messages.map((m, i) => signer.next(m, i === messages.length - 1));
}

function refuse(
  p: PrimaryOptions,
  query: Buffer,
  info: QueryInfo,
  rcode: number,
  reason: string,
  onAnswer: AuthoritativeDnsOptions["onAnswer"],
): Buffer {
  p.count(
    "origin_dns_refused_total",
    "requests refused by the primary, by reason",
    `rcode="${rcodeName(rcode)}"`,
  );
  p.log(`dns: ${rcodeName(rcode)} to ${info.address} (${info.transport}): ${reason}`);
  const wire = errorReply(query, rcode);
  onAnswer?.(info, undefined, wire);
  return wire;
}

/**
 * RFC 8945 §5.2: NOTAUTH with the TSIG error. BADKEY and BADSIG answers are
 * unsigned (we cannot sign for a key we do not share); BADTIME is signed and
 * carries our time, with the request's time signed so the client can verify it.
 */
function tsigError(
  p: PrimaryOptions,
  query: Buffer,
  found: FoundTsig,
  v: Extract<VerifyResult, { ok: false }>,
  info: QueryInfo,
  onAnswer: AuthoritativeDnsOptions["onAnswer"],
): Buffer {
  p.count(
    "origin_tsig_errors_total",
    "requests whose TSIG failed, by TSIG error",
    `error="${v.error}"`,
  );
  p.log(
    `dns: TSIG ${v.error} from ${info.address} (${info.transport}, key ${found.record.keyName}): ${v.reason}`,
  );
  const base = errorReply(found.unsigned, RCODE.NOTAUTH);
  base.writeUInt16BE(query.readUInt16BE(0), 0);
  const wire =
    v.error === "BADTIME" && v.key
      ? signMessage(base, v.key, {
          now: p.now(),
          requestMac: found.record.mac,
          error: TSIG_ERROR.BADTIME,
          otherData: timeOtherData(p.now()),
          timeSigned: found.record.timeSigned,
        }).wire
      : unsignedTsigError(base, found.record, TSIG_ERROR[v.error]);
  onAnswer?.(info, undefined, wire);
  return wire;
}

function serveTransfer(
  p: PrimaryOptions,
  query: Buffer,
  info: QueryInfo,
  key: string | undefined,
): Buffer[] {
  const req = parseTransferRequest(query);
  const who = `${info.address} (${info.transport}${key ? `, key ${key}` : ", unsigned"})`;
  const fail = (rcode: number, result: string, reason: string): Buffer[] => {
    p.count(
      "origin_xfr_total",
      "zone transfer requests, by type and result",
      `type="${typeof req === "string" ? "bad" : req.kind}",result="${result}"`,
    );
    p.log(`xfr: ${rcodeName(rcode)} to ${who}: ${reason}`);
    return [errorReply(query, rcode)];
  };
  if (typeof req === "string") return fail(RCODE.FORMERR, "formerr", req);
  // RFC 5936 §4.2: AXFR is not defined over UDP.
  if (req.kind === "AXFR" && info.transport === "udp")
    return fail(RCODE.FORMERR, "udp", `AXFR of ${req.zone} over UDP; use TCP`);
  const state = p.store.findState(req.zone);
  if (!state || state.zone.name !== req.zone)
    return fail(
      RCODE.NOTAUTH,
      "notauth",
      `${req.kind} of ${req.zone}, a zone this origin does not serve`,
    );
  if (!p.acl.allows(req.zone, info.address, key))
    return fail(
      RCODE.REFUSED,
      "refused",
      `${req.kind} of ${req.zone}: not on its allow-transfer list`,
    );
  const answer = answerTransfer(req, state, p.history, info.transport === "udp");
  p.count(
    "origin_xfr_total",
    "zone transfer requests, by type and result",
    `type="${req.kind}",result="${answer.style}"`,
  );
  p.log(
    `xfr: ${req.kind} of ${req.zone}${req.clientSerial !== undefined ? ` from serial ${req.clientSerial}` : ""} to ${who}: ${answer.style} at serial ${answer.serial}, ${answer.records} records in ${answer.messages.length} messages`,
  );
  if (info.transport === "tcp") p.onTransfer?.(req.zone, answer.serial, info, key);
  return answer.messages;
}

function incomingNotify(
  p: PrimaryOptions,
  query: Buffer,
  info: QueryInfo,
  key: string | undefined,
): Buffer {
  const zone = notifyZone(query);
  if (zone === undefined) {
    p.count("origin_notify_in_total", "NOTIFY messages received, by result", `result="formerr"`);
    p.log(`notify: FORMERR to ${info.address}: a NOTIFY needs one SOA question`);
    return errorReply(query, RCODE.FORMERR);
  }
  if (!p.onNotify) {
    p.count("origin_notify_in_total", "NOTIFY messages received, by result", `result="refused"`);
    p.log(
      `notify: REFUSED NOTIFY for ${zone} from ${info.address}: this origin is the primary of its zones and follows no one`,
    );
    return errorReply(query, RCODE.REFUSED);
  }
  const rcode = p.onNotify(zone, info, key, query);
  p.count(
    "origin_notify_in_total",
    "NOTIFY messages received, by result",
    `result="${rcodeName(rcode)}"`,
  );
  const reply = errorReply(query, rcode);
  // RFC 1996 §4.7: the answer to a NOTIFY is authoritative.
  if (rcode === RCODE.NOERROR) reply.writeUInt16BE(reply.readUInt16BE(2) | 0x0400, 2);
  return reply;
}

/** RFC 1996 §3.7: a NOTIFY's question is the zone's SOA. */
function notifyZone(query: Buffer): string | undefined {
  if (questionType(query) !== 6) return undefined;
  const labels: string[] = [];
  for (let i = 12; query[i]! > 0; i += 1 + query[i]!) {
    labels.push(query.toString("latin1", i + 1, i + 1 + query[i]!));
  }
  return labels.join(".").toLowerCase();
}

function rcodeName(rcode: number): string {
  return Object.entries(RCODE).find(([, v]) => v === rcode)?.[0] ?? String(rcode);
}
