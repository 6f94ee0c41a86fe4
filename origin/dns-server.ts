/**
 * The origin's authoritative DNS on UDP and TCP: a thin adapter that feeds
 * core/dns-transport.ts into answerQuery. UDP answers are bounded (TC when too
 * big); TCP answers are not (RFC 7766 §5).
 */
import { type DnsServer, type QueryInfo, startDnsServer } from "../core/dns-transport.ts";
import { type ResponseRateLimiter, truncatedResponse } from "../core/rate-limit.ts";
import { answerQuery, MAX_EDNS_UDP, type Resolution } from "./authoritative.ts";
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
  /** Response rate limiting on UDP (core/rate-limit.ts); none: every answer is sent. */
  rrl?: ResponseRateLimiter;
}

export function startAuthoritativeDns(
  zones: ZoneSource,
  opts: AuthoritativeDnsOptions,
): Promise<DnsServer> {
  const { host, port, nsid, onAnswer, onError, rrl } = opts;
  return startDnsServer({ host, port, onError }, (query, info) => {
    const maxUdp = info.transport === "udp" ? MAX_EDNS_UDP : undefined;
    const { wire, resolution } = answerQuery(query, zones, { maxUdp, nsid });
    onAnswer?.(info, resolution, wire);
    if (wire.length === 0) return undefined;
    if (!rrl || info.transport !== "udp") return wire;
    const verdict = rrl.judge(info.address, wire);
    return verdict === "send" ? wire : verdict === "slip" ? truncatedResponse(wire) : undefined;
  });
}
