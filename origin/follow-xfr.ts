/**
 * The client side of zone transfers, for following a primary: the SOA query a
 * secondary's refresh makes (RFC 1035 §4.3.5), and AXFR (RFC 5936) and IXFR
 * (RFC 1995) over TCP, with multi-message responses read as they stream in.
 *
 * Whatever the primary sends is bounded: total bytes, messages, an overall
 * deadline and an idle timeout; a malformed, truncated or inconsistent
 * response is an XfrError that says what was wrong, never a hang.
 */
import { randomInt } from "node:crypto";
import dgram from "node:dgram";
import net from "node:net";
import type { Answer, Packet } from "dns-packet";
import dnsPacket from "dns-packet";
import { queryTcp } from "../core/dns-transport.ts";
import type { SoaData } from "../core/records.ts";
import { serialGte } from "../core/serial.ts";
import { signMessage, type TsigKey, TsigStreamVerifier } from "../core/tsig.ts";

export interface Primary {
  host: string;
  port: number;
}

export interface XfrLimits {
  /** The whole exchange, connect to last message. */
  timeoutMs: number;
  /** Longest silence between two reads before giving up. */
  idleMs: number;
  /** Bytes of all messages together (the wire, without length prefixes). */
  maxBytes: number;
  maxMessages: number;
}

export const XFR_LIMITS: XfrLimits = {
  timeoutMs: 60_000,
  idleMs: 10_000,
  maxBytes: 256 * 1024 * 1024,
  maxMessages: 100_000,
};

/** Signs one exchange's request and checks its answers in order (TSIG, RFC 8945). */
export interface MessageAuth {
  sign(query: Buffer): Buffer;
  /** Throws when the next response does not verify. */
  verify(response: Buffer): void;
  /** Throws when the answer's last message was not signed (RFC 8945 §5.3.1). */
  finish(): void;
}

/** A new MessageAuth for each exchange. */
export type AuthSession = () => MessageAuth;

/** TSIG with one key: requests signed, every answer verified and chained (RFC 8945 §5.3.1). */
export function tsigSession(key: TsigKey, nowMs: () => number): AuthSession {
  const now = () => nowMs() / 1000;
  return () => {
    let verifier: TsigStreamVerifier | undefined;
    return {
      sign(query) {
        const { wire, mac } = signMessage(query, key, { now: now() });
        verifier = new TsigStreamVerifier(key, mac, now);
        return wire;
      },
      verify: (response) => verifier!.next(response),
      finish: () => verifier!.finish(),
    };
  };
}

/** Verifies a response; a failure names the RCODE the primary gave with it (NOTAUTH: our key). */
function verified(auth: MessageAuth | undefined, wire: Buffer, zone: string, type: string): void {
  if (!auth) return;
  try {
    auth.verify(wire);
  } catch (err) {
    const rcode = wire.length >= 4 ? (RCODE_NAMES[wire.readUInt16BE(2) & 0xf] ?? "") : "";
    const answered =
      rcode && rcode !== "NOERROR"
        ? `the primary answered ${type} for ${zone} with ${rcode}: `
        : "";
    throw new XfrError(`${answered}${(err as Error).message}`, rcode || undefined);
  }
}

export class XfrError extends Error {
  override readonly name = "XfrError";
  constructor(
    message: string,
    /** The response code, when the primary answered with one. */
    readonly rcode?: string,
  ) {
    super(message);
  }
}

export interface SoaRecord {
  ttl: number;
  data: SoaData;
}

/** One wire record of a transfer; data as dns-packet decodes it. */
export type XfrRecord = Answer & { ttl?: number; data?: unknown };

export type Transfer =
  /** IXFR: the client already has the primary's serial (RFC 1995 §2, a lone SOA). */
  | { kind: "current"; soa: SoaRecord }
  /** AXFR, or an IXFR answered AXFR-style (RFC 1995 §4): every record, SOA not repeated. */
  | { kind: "full"; soa: SoaRecord; records: XfrRecord[]; messages: number }
  /** IXFR differences in order, each from one serial to the next (or condensed). */
  | { kind: "incremental"; soa: SoaRecord; deltas: Delta[]; messages: number };

export interface Delta {
  from: number;
  to: SoaRecord;
  deleted: XfrRecord[];
  added: XfrRecord[];
}

const OPCODE_QUERY = 0;
/** RFC 1035 §4.1.1, RFC 2136 §2.2 (NOTAUTH), the 4-bit header codes. */
const RCODE_NAMES = [
  "NOERROR",
  "FORMERR",
  "SERVFAIL",
  "NXDOMAIN",
  "NOTIMP",
  "REFUSED",
  "YXDOMAIN",
  "YXRRSET",
  "NXRRSET",
  "NOTAUTH",
  "NOTZONE",
];

export function parsePrimary(url: string): Primary {
  const m = /^dns:\/\/(\[[0-9a-fA-F:.]+\]|[^/:[\]]+)(?::(\d{1,5}))?\/?$/.exec(url.trim());
  const host = m?.[1]?.replace(/^\[|\]$/g, "");
  const port = m?.[2] === undefined ? 53 : Number(m[2]);
  if (!host || net.isIP(host) === 0 || port < 1 || port > 65535) {
    throw new Error(
      `"${url}" is not a primary address; use dns://IP:PORT such as dns://192.0.2.1:53 or dns://[2001:db8::1]:5353`,
    );
  }
  return { host, port };
}

function newId(): number {
  return randomInt(0, 65536);
}

/** The primary's SOA for `zone` over UDP (TCP when truncated): the refresh check of RFC 1035 §4.3.5. */
export async function querySoa(
  primary: Primary,
  zone: string,
  opts: { timeoutMs?: number; auth?: AuthSession | undefined } = {},
): Promise<SoaRecord> {
  const timeout = opts.timeoutMs ?? 2000;
  const ask = async (udp: boolean) => {
    const id = newId();
    const auth = opts.auth?.();
    const query = encodeQuery(id, zone, "SOA", [], auth);
    const wire = udp
      ? await queryUdpConnected(primary, query, id, timeout)
      : await queryTcp(primary.host, primary.port, query, timeout);
    verified(auth, wire, zone, "SOA");
    auth?.finish();
    return decodeResponse(wire, id, zone, "SOA");
  };
  let packet = await ask(true);
  // RFC 1035 §4.2.1: a truncated answer is asked again over TCP.
  if (packet.flag_tc) packet = await ask(false);
  // A primary that is not authoritative (a lame delegation, a zone it dropped) cannot be followed.
  if (!packet.flag_aa)
    throw new XfrError(`the primary is not authoritative for ${zone} (AA clear)`);
  const soa = (packet.answers ?? []).find((a) => a.type === "SOA" && sameName(a.name, zone));
  if (!soa) throw new XfrError(`the primary's answer for ${zone} SOA holds no SOA`);
  return soaOf(soa as XfrRecord);
}

/**
 * One UDP exchange on a connected socket: only the primary's address and port
 * can answer (a datagram from elsewhere never arrives), a reply with another ID
 * is ignored (RFC 5452 §9.1), and a primary that is down fails at once
 * (ICMP port unreachable) instead of at the timeout.
 */
function queryUdpConnected(
  primary: Primary,
  query: Buffer,
  id: number,
  timeoutMs: number,
): Promise<Buffer> {
  const where = `${primary.host}:${primary.port}`;
  const sock = dgram.createSocket(net.isIPv6(primary.host) ? "udp6" : "udp4");
  return new Promise((resolve, reject) => {
    let settled = false;
    const done = (err: Error | undefined, reply?: Buffer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.close();
      if (err) reject(err);
      else resolve(reply!);
    };
    const timer = setTimeout(
      () => done(new XfrError(`no answer from ${where} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    sock.on("message", (reply) => {
      if (reply.length >= 2 && reply.readUInt16BE(0) === id) done(undefined, reply);
    });
    sock.on("error", (err) => done(new XfrError(`SOA query to ${where}: ${err.message}`)));
    sock.connect(primary.port, primary.host, () => sock.send(query));
  });
}

/**
 * AXFR (no `current`) or IXFR from the SOA we hold. The answer is read message
 * by message until the transfer is complete (RFC 5936 §2.2: the closing SOA).
 */
export function transfer(
  primary: Primary,
  zone: string,
  current: SoaRecord | undefined,
  opts: { limits?: Partial<XfrLimits>; auth?: AuthSession | undefined } = {},
): Promise<Transfer> {
  const auth = opts.auth?.();
  const limits = { ...XFR_LIMITS, ...opts.limits };
  const id = newId();
  const type = current ? "IXFR" : "AXFR";
  // RFC 1995 §3: the IXFR query carries the client's SOA in the authority section.
  const authority: Answer[] = current
    ? [{ name: zone, type: "SOA", class: "IN", ttl: current.ttl, data: current.data }]
    : [];
  const query = encodeQuery(id, zone, type, authority, auth);
  const reader = new TransferReader(zone, current?.data.serial);
  let n = 0;
  return exchangeTcp(primary, query, limits, (msg) => {
    verified(auth, msg, zone, type);
    const packet = decodeResponse(msg, id, zone, type, n++ > 0);
    if (!reader.push(packet.answers ?? [], n)) return undefined;
    auth?.finish();
    return reader.result;
  });
}

function encodeQuery(
  id: number,
  zone: string,
  type: "SOA" | "AXFR" | "IXFR",
  authorities: Answer[],
  auth: MessageAuth | undefined,
): Buffer {
  const packet: Packet = {
    type: "query",
    id,
    flags: OPCODE_QUERY,
    questions: [{ name: zone, type, class: "IN" }],
    authorities,
  };
  const wire = dnsPacket.encode(packet);
  return auth ? auth.sign(wire) : wire;
}

/** Checks a response's header and question against the query; throws XfrError naming the fault. */
function decodeResponse(
  wire: Buffer,
  id: number,
  zone: string,
  type: string,
  questionOptional = false,
): ReturnType<typeof dnsPacket.decode> {
  let packet: ReturnType<typeof dnsPacket.decode>;
  try {
    packet = dnsPacket.decode(wire);
  } catch (err) {
    throw new XfrError(`malformed response (${wire.length} bytes): ${(err as Error).message}`);
  }
  if (packet.id !== id) throw new XfrError(`response ID ${packet.id} does not match query ${id}`);
  if (packet.type !== "response") throw new XfrError("got a query, not a response");
  const flags = wire.readUInt16BE(2);
  const opcode = (flags >> 11) & 0xf;
  if (opcode !== OPCODE_QUERY) throw new XfrError(`response opcode is ${opcode}, not QUERY`);
  const rcode = RCODE_NAMES[flags & 0xf] ?? `RCODE${flags & 0xf}`;
  if (rcode !== "NOERROR") {
    throw new XfrError(`the primary answered ${type} for ${zone} with ${rcode}`, rcode);
  }
  const q = packet.questions ?? [];
  // RFC 5936 §2.2.1: later messages of a transfer may leave the question out.
  if (q.length === 0 && questionOptional) return packet;
  if (q.length !== 1 || !sameName(q[0]!.name, zone) || q[0]!.type !== type) {
    throw new XfrError(`the response's question does not match ${zone} ${type}`);
  }
  return packet;
}

function sameName(a: string, b: string): boolean {
  return a.toLowerCase().replace(/\.$/, "") === b.toLowerCase().replace(/\.$/, "");
}

function soaOf(record: XfrRecord): SoaRecord {
  const data = record.data as SoaData;
  return { ttl: record.ttl ?? 0, data };
}

/**
 * Reads the records of an AXFR or IXFR answer as they arrive and says when the
 * transfer is complete (RFC 5936 §2.2, RFC 1995 §4). Pure: the TCP side feeds it.
 */
export class TransferReader {
  private readonly records: XfrRecord[] = [];
  /** IXFR: index of each SOA that starts a deleted or added part. */
  private readonly soaAt: number[] = [];
  private done: Transfer | undefined;

  constructor(
    private readonly zone: string,
    /** The serial we hold (IXFR); undefined for AXFR. */
    private readonly serial: number | undefined,
  ) {}

  get result(): Transfer | undefined {
    return this.done;
  }

  /** Adds one message's answers (the n-th, from 1); true once the transfer is complete. */
  push(answers: readonly Answer[], n: number): boolean {
    if (this.done) throw new XfrError("records after the closing SOA");
    for (const a of answers) {
      if (this.done) throw new XfrError("records after the closing SOA");
      this.take(a as XfrRecord);
    }
    // RFC 1995 §2: a single SOA no newer than ours means we are current.
    if (!this.done && n === 1 && this.records.length === 1 && this.serial !== undefined) {
      const soa = soaOf(this.records[0]!);
      if (serialGte(this.serial, soa.data.serial)) this.done = { kind: "current", soa };
    }
    if (this.done && "messages" in this.done) this.done.messages = n;
    return this.done !== undefined;
  }

  private take(r: XfrRecord): void {
    const isSoa = r.type === "SOA" && sameName(r.name, this.zone);
    const i = this.records.length;
    if (i === 0) {
      if (!isSoa) throw new XfrError(`the transfer of ${this.zone} does not start with its SOA`);
      this.records.push(r);
      return;
    }
    const final = soaOf(this.records[0]!);
    if (i === 1 && isSoa && this.serial !== undefined) {
      const serial = (r.data as SoaData).serial;
      // RFC 1995 §4: a second SOA means differences, unless it repeats the first (a zone of only an SOA).
      if (serial !== final.data.serial) {
        this.records.push(r);
        this.soaAt.push(i);
        return;
      }
    }
    if (this.soaAt.length === 0) {
      // AXFR, or IXFR answered AXFR-style: complete at the SOA that repeats the first.
      if (isSoa) {
        this.done = { kind: "full", soa: final, records: this.records.slice(1), messages: 0 };
        return;
      }
      this.records.push(r);
      return;
    }
    if (isSoa) {
      const adding = this.soaAt.length % 2 === 0;
      // In an added part, the primary's own serial closes the transfer.
      if (adding && (r.data as SoaData).serial === final.data.serial) {
        this.done = { kind: "incremental", soa: final, deltas: this.deltas(), messages: 0 };
        return;
      }
      this.soaAt.push(i);
    }
    this.records.push(r);
  }

  private deltas(): Delta[] {
    const out: Delta[] = [];
    const bounds = [...this.soaAt, this.records.length];
    for (let k = 0; k + 2 < bounds.length; k += 2) {
      const [a, b, c] = [bounds[k]!, bounds[k + 1]!, bounds[k + 2]!];
      const fromSoa = soaOf(this.records[a]!);
      out.push({
        from: fromSoa.data.serial,
        to: soaOf(this.records[b]!),
        deleted: this.records.slice(a + 1, b),
        added: this.records.slice(b + 1, c),
      });
    }
    for (let k = 1; k < out.length; k++) {
      if (out[k]!.from !== out[k - 1]!.to.data.serial) {
        throw new XfrError(
          `IXFR differences do not chain: one ends at ${out[k - 1]!.to.data.serial}, the next starts at ${out[k]!.from}`,
        );
      }
    }
    if (out.length === 0 || out[0]!.from !== this.serial) {
      throw new XfrError(`IXFR differences do not start at our serial ${this.serial}`);
    }
    return out;
  }
}

/**
 * Sends one length-prefixed query over TCP (RFC 1035 §4.2.2) and feeds each
 * response message to `onMessage` until it says the exchange is complete.
 */
function exchangeTcp<T>(
  primary: Primary,
  query: Buffer,
  limits: XfrLimits,
  onMessage: (msg: Buffer) => T | undefined,
): Promise<T> {
  const where = `${primary.host}:${primary.port}`;
  return new Promise((resolve, reject) => {
    const sock = net.connect(primary.port, primary.host);
    let buf = Buffer.alloc(0);
    let bytes = 0;
    let messages = 0;
    let settled = false;
    const finish = (err: Error | undefined, value?: T) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      sock.destroy();
      if (err) reject(err);
      else resolve(value!);
    };
    const deadline = setTimeout(
      () => finish(new XfrError(`transfer from ${where} took longer than ${limits.timeoutMs} ms`)),
      limits.timeoutMs,
    );
    sock.setTimeout(limits.idleMs, () =>
      finish(new XfrError(`${where} sent nothing for ${limits.idleMs} ms mid-transfer`)),
    );
    sock.on("connect", () => {
      const frame = Buffer.alloc(2 + query.length);
      frame.writeUInt16BE(query.length, 0);
      query.copy(frame, 2);
      sock.write(frame);
    });
    sock.on("data", (chunk) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      try {
        while (!settled && buf.length >= 2) {
          const len = buf.readUInt16BE(0);
          if (buf.length < 2 + len) break;
          const msg = buf.subarray(2, 2 + len);
          buf = buf.subarray(2 + len);
          bytes += len;
          messages++;
          if (bytes > limits.maxBytes) {
            throw new XfrError(`transfer from ${where} is over ${limits.maxBytes} bytes`);
          }
          if (messages > limits.maxMessages) {
            throw new XfrError(`transfer from ${where} is over ${limits.maxMessages} messages`);
          }
          const value = onMessage(msg);
          if (value !== undefined) finish(undefined, value);
        }
      } catch (err) {
        finish(err as Error);
      }
    });
    sock.on("error", (err) => finish(new XfrError(`transfer from ${where}: ${err.message}`)));
    sock.on("close", () =>
      finish(
        new XfrError(
          `${where} closed the connection before the transfer was complete (${messages} messages)`,
        ),
      ),
    );
  });
}
