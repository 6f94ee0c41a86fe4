/**
 * NOTIFY out (RFC 1996): the message that tells a secondary a zone changed,
 * and the check of its answer. Pure: bytes in, bytes out.
 */
import type { RRset } from "../core/records.ts";
import { readTsig, TsigFormatError, type TsigKey, verifyMessage } from "../core/tsig.ts";
import { packMessages, wireRecords } from "./xfr-wire.ts";

const OPCODE_NOTIFY = 4;
const AA = 0x0400;
const QR = 0x8000;

/** RFC 1996 §3.7: question (zone, SOA, IN), the new SOA in the answer section as a hint. */
export function notifyMessage(id: number, zone: string, soa: RRset<"SOA">): Buffer {
  const labels = zone === "" ? [] : zone.split(".");
  const qname = Buffer.concat([
    ...labels.flatMap((l) => [Buffer.from([l.length]), Buffer.from(l, "latin1")]),
    Buffer.from([0, 0, 6, 0, 1]),
  ]);
  return packMessages({ id, flags: (OPCODE_NOTIFY << 11) | AA }, qname, wireRecords(soa))[0]!;
}

/**
 * Why an answer to our NOTIFY does not count as one, or undefined when it
 * does: the same ID, QR and opcode NOTIFY, RCODE NOERROR, and, when we signed
 * it, a TSIG that verifies against our request's MAC (RFC 8945 §5.3).
 */
export function notifyAnswerProblem(
  reply: Buffer,
  id: number,
  signed?: { key: TsigKey; mac: Buffer; now: number },
): string | undefined {
  if (reply.length < 12) return "a runt answer";
  const flags = reply.readUInt16BE(2);
  if (reply.readUInt16BE(0) !== id || !(flags & QR) || ((flags >> 11) & 0xf) !== OPCODE_NOTIFY)
    return "not an answer to our NOTIFY";
  if (signed) {
    let found: ReturnType<typeof readTsig>;
    try {
      found = readTsig(reply);
    } catch (err) {
      if (err instanceof TsigFormatError) return `malformed TSIG in the answer: ${err.message}`;
      throw err;
    }
    if (!found)
      return `an unsigned answer (RCODE ${flags & 0xf}) to a NOTIFY signed with ${signed.key.name}`;
    if (found.record.error !== 0) return `the secondary reports TSIG error ${found.record.error}`;
    const v = verifyMessage(found, (n) => (n === signed.key.name ? signed.key : undefined), {
      now: signed.now,
      requestMac: signed.mac,
    });
    if (!v.ok) return `the answer's TSIG fails: ${v.error} (${v.reason})`;
  }
  const rcode = flags & 0xf;
  return rcode === 0 ? undefined : `RCODE ${rcode}`;
}
