/**
 * An in-memory authority for resolver tests: answers (wire name, qtype) with
 * dns-packet-encoded responses, counts calls, and can be slowed or failed on
 * the injected clock.
 */
import * as packet from "dns-packet";
import { type Clock, sleep } from "../../core/clock.ts";
import type { Upstream, UpstreamResponse } from "../../resolver/cache.ts";
import { readName } from "../../resolver/message.ts";
import { buildQuery } from "../../resolver/upstream.ts";

export const ZONE = "example.test";
export const SOA_DATA = {
  mname: "ns1.example.test",
  rname: "hostmaster.example.test",
  serial: 1,
  refresh: 3600,
  retry: 600,
  expire: 86400,
  minimum: 60,
};

export class FakeAuthority {
  readonly records = new Map<string, packet.Answer[]>();
  calls = 0;
  /** When set, every call fails with this message. */
  failWith: string | undefined;
  /** Virtual ms each call takes. */
  delayMs = 0;
  /** Age header value to report (seconds). */
  age = 0;
  /** The response's Cache-Control stale-while-revalidate (seconds). */
  staleWhileRevalidate = 0;
  /** The response's Cache-Status field (RFC 9211), when set. */
  cacheStatus: string | undefined;
  soaTtl = 300;
  /** X-Serial reported with every answer. */
  serial: number | undefined = 7;
  /** The X-Min-Serial of every call, in order. */
  readonly minSerials: (number | undefined)[] = [];
  /** Per call, whether it asked the path to revalidate (a prefetch). */
  readonly revalidations: boolean[] = [];

  constructor(private readonly clock: Clock) {}

  set(name: string, type: packet.RecordType, ttl: number, data: unknown[]): void {
    const answers = data.map((d) => ({ name, type, ttl, class: "IN", data: d }) as packet.Answer);
    this.records.set(`${name}|${type}`, answers);
  }

  delete(name: string, type: packet.RecordType): void {
    this.records.delete(`${name}|${type}`);
  }

  readonly upstream: Upstream = async (wireName, qtype, minSerial, revalidate) => {
    this.calls++;
    this.minSerials.push(minSerial);
    this.revalidations.push(revalidate === true);
    // The answer is the data as the call finds it; the delay is its way back.
    const response = this.respond(wireName, qtype);
    if (this.delayMs > 0) await sleep(this.clock, this.delayMs);
    if (this.failWith) throw new Error(this.failWith);
    return response;
  };

  respond(wireName: Buffer, qtype: number): UpstreamResponse {
    const q = packet.decode(buildQuery(0, wireName, qtype)).questions![0]!;
    const name = readName(wireName, 0);
    // Like an authority, follow an in-zone CNAME (RFC 1034 §4.3.2 step 3a).
    const cname = q.type === "CNAME" ? undefined : this.records.get(`${name}|CNAME`)?.[0];
    const target = cname ? String((cname as { data: string }).data) : name;
    const answers = [...(cname ? [cname] : []), ...(this.records.get(`${target}|${q.type}`) ?? [])];
    const exists = [...this.records.keys()].some((k) => k.startsWith(`${name}|`));
    const soa = {
      name: ZONE,
      type: "SOA",
      ttl: this.soaTtl,
      class: "IN",
      data: SOA_DATA,
    } as packet.Answer;
    const message = packet.encode({
      type: "response",
      id: 0,
      // dns-packet takes the RCODE from the low bits of flags: 3 = NXDOMAIN.
      flags: packet.AUTHORITATIVE_ANSWER | (exists ? 0 : 3),
      questions: [{ name, type: q.type, class: "IN" }],
      answers,
      authorities: answers.length ? [] : [soa],
    } as packet.Packet);
    const { age, staleWhileRevalidate, cacheStatus } = this;
    const response = { message, age, staleWhileRevalidate, cacheStatus };
    return this.serial === undefined ? response : { ...response, serial: this.serial };
  }
}

/** A query as a stub resolver sends it; `edns` adds an OPT with that payload size. */
export function makeQuery(
  name: string,
  type: packet.RecordType,
  opts: { id?: number; edns?: number; nsid?: boolean } = {},
): Buffer {
  const additionals: packet.Answer[] = [];
  if (opts.edns !== undefined) {
    additionals.push({
      type: "OPT",
      name: ".",
      udpPayloadSize: opts.edns,
      flags: 0,
      options: opts.nsid ? [{ code: 3, data: Buffer.alloc(0) }] : [],
    } as unknown as packet.Answer);
  }
  return packet.encode({
    type: "query",
    id: opts.id ?? 0x1234,
    flags: packet.RECURSION_DESIRED,
    questions: [{ name, type, class: "IN" }],
    additionals,
  });
}
