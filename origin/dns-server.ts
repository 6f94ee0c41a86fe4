/**
 * The origin's authoritative DNS on UDP and TCP: a thin adapter that feeds
 * core/dns-transport.ts into answerQuery. UDP answers are bounded (TC when too
 * big); TCP answers are not (RFC 7766 §5).
 */
import { type DnsServer, type QueryInfo, startDnsServer } from "../core/dns-transport.ts";
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
  /** RFC 1996: answers NOTIFY (opcode 4) queries; without it they get NOTIMP. */
  onNotify?: (query: Buffer, info: QueryInfo) => Buffer | undefined;
}

export function startAuthoritativeDns(
  zones: ZoneSource,
  opts: AuthoritativeDnsOptions,
): Promise<DnsServer> {
  const { host, port, nsid, onAnswer, onError, onNotify } = opts;
  return startDnsServer({ host, port, onError }, (query, info) => {
    // A query (QR clear) with opcode NOTIFY.
    if (onNotify && query.length >= 3 && (query[2]! & 0xf8) === 4 << 3)
      return onNotify(query, info);
    const maxUdp = info.transport === "udp" ? MAX_EDNS_UDP : undefined;
    const { wire, resolution } = answerQuery(query, zones, { maxUdp, nsid });
    onAnswer?.(info, resolution, wire);
    return wire.length > 0 ? wire : undefined;
  });
}
