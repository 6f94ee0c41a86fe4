/**
 * TSIG (RFC 8945): HMAC transaction signatures on DNS messages, as bytes in
 * and bytes out. Pure: the caller passes the time (seconds since the epoch);
 * only Node's crypto is used. Keys come from files in the format BIND's
 * `tsig-keygen` writes, so one file configures both ends.
 *
 * A signed message is the unsigned message with one TSIG RR appended last in
 * the additional section (ARCOUNT + 1). The MAC covers (§4.3.3):
 *   request MAC (responses only) | the message without its TSIG, original ID |
 *   TSIG variables (key name, class, TTL, algorithm, time, fudge, error, other)
 * and in a multi-message answer (AXFR/IXFR, §5.3.1) every message after the
 * first covers: prior MAC | the unsigned messages since it | this message |
 * TSIG timers (time signed, fudge).
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export const TSIG_ALGORITHMS = {
  "hmac-sha1": "sha1",
  "hmac-sha224": "sha224",
  "hmac-sha256": "sha256",
  "hmac-sha384": "sha384",
  "hmac-sha512": "sha512",
} as const;
export type TsigAlgorithm = keyof typeof TSIG_ALGORITHMS;

export interface TsigKey {
  /** Lower-case, no trailing dot. */
  readonly name: string;
  readonly algorithm: TsigAlgorithm;
  readonly secret: Buffer;
}

/** RFC 8945 §4.3.3 / RFC 2845: the error field's codes (also extended RCODEs). */
export const TSIG_ERROR = {
  NOERROR: 0,
  BADSIG: 16,
  BADKEY: 17,
  BADTIME: 18,
  BADTRUNC: 22,
} as const;
export type TsigErrorName = Exclude<keyof typeof TSIG_ERROR, "NOERROR">;

/** RFC 8945 §10: 300 seconds is the recommended fudge. */
export const DEFAULT_FUDGE = 300;
/** RFC 8945 §5.3.1: a multi-message answer carries a TSIG at least every 100 messages. */
export const MAX_UNSIGNED_RUN = 99;

const TYPE_TSIG = 250;
const CLASS_ANY = 255;
const HEADER = 12;
/** RCODE 9 (RFC 2845 §4.3): what a TSIG error answers with. */
export const RCODE_NOTAUTH = 9;

// ---------------------------------------------------------------- key files

export class TsigKeyFileError extends Error {}

/**
 * Reads the keys of a `tsig-keygen` file (named.conf syntax):
 *   key "name" { algorithm hmac-sha256; secret "base64"; };
 * Several keys may follow one another; comments (#, //, /* *\/) are ignored.
 */
export function parseTsigKeys(text: string, source = "key file"): TsigKey[] {
  const tokens = tokenize(text, source);
  const keys: TsigKey[] = [];
  let i = 0;
  const next = (what: string): Token => {
    const t = tokens[i++];
    if (!t) throw new TsigKeyFileError(`${source}: expected ${what} at the end of the file`);
    return t;
  };
  const expect = (value: string) => {
    const t = next(`"${value}"`);
    if (t.value !== value || t.quoted)
      throw new TsigKeyFileError(`${source} line ${t.line}: expected "${value}", got "${t.value}"`);
  };
  while (i < tokens.length) {
    const kw = next("key");
    if (kw.value !== "key")
      throw new TsigKeyFileError(
        `${source} line ${kw.line}: expected a key statement (key "name" { algorithm ...; secret "..."; };), got "${kw.value}"`,
      );
    const nameTok = next("a key name");
    const name = keyName(nameTok.value);
    expect("{");
    let algorithm: TsigAlgorithm | undefined;
    let secret: Buffer | undefined;
    for (let t = next('"}"'); t.value !== "}" || t.quoted; t = next('"}"')) {
      const value = next(`a value for ${t.value}`);
      expect(";");
      if (t.value === "algorithm") {
        const alg = value.value.toLowerCase().replace(/\.$/, "");
        if (!(alg in TSIG_ALGORITHMS))
          throw new TsigKeyFileError(
            `${source} line ${value.line}: key "${name}": unsupported algorithm "${value.value}" (supported: ${Object.keys(TSIG_ALGORITHMS).join(", ")})`,
          );
        algorithm = alg as TsigAlgorithm;
      } else if (t.value === "secret") {
        if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value.value))
          throw new TsigKeyFileError(
            `${source} line ${value.line}: key "${name}": the secret is not base64`,
          );
        secret = Buffer.from(value.value, "base64");
      } else {
        throw new TsigKeyFileError(
          `${source} line ${t.line}: key "${name}": unknown clause "${t.value}" (expected algorithm or secret)`,
        );
      }
    }
    expect(";");
    if (!algorithm || !secret)
      throw new TsigKeyFileError(
        `${source} line ${nameTok.line}: key "${name}" needs both an algorithm and a secret`,
      );
    if (keys.some((k) => k.name === name))
      throw new TsigKeyFileError(`${source} line ${nameTok.line}: key "${name}" is defined twice`);
    keys.push({ name, algorithm, secret });
  }
  return keys;
}

interface Token {
  value: string;
  quoted: boolean;
  line: number;
}

function tokenize(text: string, source: string): Token[] {
  const out: Token[] = [];
  let line = 1;
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === "\n") line++;
    if (/\s/.test(c)) {
      i++;
    } else if (c === "#" || (c === "/" && text[i + 1] === "/")) {
      while (i < text.length && text[i] !== "\n") i++;
    } else if (c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      if (end < 0) throw new TsigKeyFileError(`${source} line ${line}: unterminated /* comment`);
      for (const ch of text.slice(i, end)) if (ch === "\n") line++;
      i = end + 2;
    } else if (c === '"') {
      const end = text.indexOf('"', i + 1);
      if (end < 0) throw new TsigKeyFileError(`${source} line ${line}: unterminated string`);
      out.push({ value: text.slice(i + 1, end), quoted: true, line });
      i = end + 1;
    } else if (c === "{" || c === "}" || c === ";") {
      out.push({ value: c, quoted: false, line });
      i++;
    } else {
      let j = i;
      while (j < text.length && !/[\s{};"#]/.test(text[j]!)) j++;
      out.push({ value: text.slice(i, j), quoted: false, line });
      i = j;
    }
  }
  return out;
}

/** A key's name as stored: lower-case, no trailing dot, valid labels. */
export function keyName(input: string): string {
  const name = input.toLowerCase().replace(/\.$/, "");
  const labels = name.split(".");
  if (name === "" || labels.some((l) => l.length === 0 || l.length > 63) || name.length > 253)
    throw new TsigKeyFileError(`"${input}" is not a valid key name`);
  return name;
}

// ---------------------------------------------------------------- wire

export class TsigFormatError extends Error {}

/** A decoded TSIG RR (RFC 8945 §4.2). */
export interface TsigRecord {
  keyName: string;
  algorithm: string;
  /** Seconds since the epoch (48 bits). */
  timeSigned: number;
  fudge: number;
  mac: Buffer;
  originalId: number;
  error: number;
  otherData: Buffer;
}

export interface FoundTsig {
  record: TsigRecord;
  /** The message without its TSIG: ARCOUNT - 1 and the original ID restored (§4.3.3). */
  unsigned: Buffer;
}

/**
 * The TSIG of a message, or undefined when it carries none. Throws
 * TsigFormatError when the message cannot be walked, or when a TSIG is not
 * the last record of the additional section (§5.1: FORMERR).
 */
export function readTsig(msg: Buffer): FoundTsig | undefined {
  if (msg.length < HEADER) throw new TsigFormatError("message shorter than a DNS header");
  const counts = [4, 6, 8, 10].map((o) => msg.readUInt16BE(o));
  let off = HEADER;
  for (let q = 0; q < counts[0]!; q++) off = skipName(msg, off) + 4;
  const records = counts[1]! + counts[2]! + counts[3]!;
  for (let r = 0; r < records; r++) {
    const start = off;
    const nameEnd = skipName(msg, off);
    if (nameEnd + 10 > msg.length) throw new TsigFormatError("truncated resource record");
    const type = msg.readUInt16BE(nameEnd);
    const rdlength = msg.readUInt16BE(nameEnd + 8);
    off = nameEnd + 10 + rdlength;
    if (off > msg.length) throw new TsigFormatError("truncated resource record data");
    if (type !== TYPE_TSIG) continue;
    if (r !== records - 1 || r < counts[1]! + counts[2]!)
      throw new TsigFormatError("a TSIG record that is not the last additional record");
    if (off !== msg.length) throw new TsigFormatError("bytes after the TSIG record");
    const record = decodeTsigRdata(msg, start, nameEnd + 10, off);
    const unsigned = Buffer.from(msg.subarray(0, start));
    unsigned.writeUInt16BE(record.originalId, 0);
    unsigned.writeUInt16BE(counts[3]! - 1, 10);
    return { record, unsigned };
  }
  if (off !== msg.length) throw new TsigFormatError("bytes after the last record");
  return undefined;
}

function decodeTsigRdata(msg: Buffer, owner: number, rdata: number, end: number): TsigRecord {
  const fail = () => {
    throw new TsigFormatError("malformed TSIG record data");
  };
  const keyNameStr = readName(msg, owner).name;
  const { name: algorithm, end: algEnd } = readName(msg, rdata);
  let o = algEnd;
  if (o + 10 > end) fail();
  const timeSigned = msg.readUIntBE(o, 6);
  const fudge = msg.readUInt16BE(o + 6);
  const macLen = msg.readUInt16BE(o + 8);
  o += 10;
  if (o + macLen + 6 > end) fail();
  const mac = Buffer.from(msg.subarray(o, o + macLen));
  o += macLen;
  const originalId = msg.readUInt16BE(o);
  const error = msg.readUInt16BE(o + 2);
  const otherLen = msg.readUInt16BE(o + 4);
  o += 6;
  if (o + otherLen !== end) fail();
  const otherData = Buffer.from(msg.subarray(o, o + otherLen));
  return { keyName: keyNameStr, algorithm, timeSigned, fudge, mac, originalId, error, otherData };
}

/** Offset after a (possibly compressed) name. */
function skipName(msg: Buffer, off: number): number {
  for (let i = off; ; ) {
    const len = msg[i];
    if (len === undefined) throw new TsigFormatError("truncated name");
    if (len === 0) return i + 1;
    if ((len & 0xc0) === 0xc0) {
      if (i + 2 > msg.length) throw new TsigFormatError("truncated name");
      return i + 2;
    }
    if (len > 63) throw new TsigFormatError("bad label length");
    i += 1 + len;
  }
}

/** A name (lower-cased, no trailing dot), following compression pointers. */
function readName(msg: Buffer, off: number): { name: string; end: number } {
  const labels: string[] = [];
  let end: number | undefined;
  let i = off;
  for (let hops = 0; hops < 128; hops++) {
    const len = msg[i];
    if (len === undefined) throw new TsigFormatError("truncated name");
    if (len === 0) {
      return { name: labels.join(".").toLowerCase(), end: end ?? i + 1 };
    }
    if ((len & 0xc0) === 0xc0) {
      if (i + 2 > msg.length) throw new TsigFormatError("truncated name");
      end ??= i + 2;
      i = msg.readUInt16BE(i) & 0x3fff;
      continue;
    }
    if (len > 63 || i + 1 + len > msg.length) throw new TsigFormatError("bad label");
    labels.push(msg.toString("latin1", i + 1, i + 1 + len));
    i += 1 + len;
  }
  throw new TsigFormatError("compression loop in a name");
}

/** RFC 8945 §4.3.3: names in the MAC are in canonical wire form (lower case, uncompressed). */
function nameWire(name: string): Buffer {
  const parts: Buffer[] = [];
  for (const label of name.toLowerCase().split(".")) {
    if (label === "") continue;
    const b = Buffer.from(label, "latin1");
    parts.push(Buffer.from([b.length]), b);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n, 0);
  return b;
}

function timers(timeSigned: number, fudge: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUIntBE(timeSigned, 0, 6);
  b.writeUInt16BE(fudge, 6);
  return b;
}

/** §4.3.3: the TSIG variables. */
function variables(key: TsigKey, timeSigned: number, fudge: number, error: number, other: Buffer) {
  return Buffer.concat([
    nameWire(key.name),
    u16(CLASS_ANY),
    Buffer.alloc(4), // TTL 0
    nameWire(key.algorithm),
    timers(timeSigned, fudge),
    u16(error),
    u16(other.length),
    other,
  ]);
}

/** A MAC as the next digest sees it (§4.3.1, §5.3.1): its length, then its bytes. */
function macField(mac: Buffer): Buffer {
  return Buffer.concat([u16(mac.length), mac]);
}

function hmac(key: TsigKey, parts: Buffer[]): Buffer {
  const h = createHmac(TSIG_ALGORITHMS[key.algorithm], key.secret);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** Appends a TSIG RR to an unsigned message (ARCOUNT + 1). */
function appendTsig(
  msg: Buffer,
  key: TsigKey,
  fields: { timeSigned: number; fudge: number; mac: Buffer; error: number; other: Buffer },
): Buffer {
  const rdata = Buffer.concat([
    nameWire(key.algorithm),
    timers(fields.timeSigned, fields.fudge),
    macField(fields.mac),
    u16(msg.readUInt16BE(0)),
    u16(fields.error),
    u16(fields.other.length),
    fields.other,
  ]);
  const rr = Buffer.concat([
    nameWire(key.name),
    u16(TYPE_TSIG),
    u16(CLASS_ANY),
    Buffer.alloc(4),
    u16(rdata.length),
    rdata,
  ]);
  const out = Buffer.concat([msg, rr]);
  out.writeUInt16BE(msg.readUInt16BE(10) + 1, 10);
  return out;
}

export interface SignOptions {
  /** Seconds since the epoch. */
  now: number;
  fudge?: number;
  /** For a response: the MAC of the request it answers (§4.3.1). */
  requestMac?: Buffer;
  /** A TSIG error to report (BADTIME carries the server's time in other data). */
  error?: number;
  otherData?: Buffer;
  /** Overrides the time signed (a BADTIME answer echoes the request's, §5.2.3). */
  timeSigned?: number;
}

/** Signs one message (a request, or a single response with `requestMac`). */
export function signMessage(
  msg: Buffer,
  key: TsigKey,
  opts: SignOptions,
): { wire: Buffer; mac: Buffer } {
  const fudge = opts.fudge ?? DEFAULT_FUDGE;
  const timeSigned = opts.timeSigned ?? Math.floor(opts.now);
  const error = opts.error ?? 0;
  const other = opts.otherData ?? Buffer.alloc(0);
  const mac = hmac(key, [
    ...(opts.requestMac ? [macField(opts.requestMac)] : []),
    msg,
    variables(key, timeSigned, fudge, error, other),
  ]);
  return { wire: appendTsig(msg, key, { timeSigned, fudge, mac, error, other }), mac };
}

/**
 * An unsigned error answer for BADKEY/BADSIG (§5.2.1, §5.2.2): NOTAUTH with a
 * TSIG RR naming the key, an empty MAC and the error code. `response` is the
 * answer without TSIG (its RCODE is set to NOTAUTH here).
 */
export function unsignedTsigError(response: Buffer, record: TsigRecord, error: number): Buffer {
  const msg = withRcode(response, RCODE_NOTAUTH);
  const key: TsigKey = {
    name: record.keyName,
    algorithm: record.algorithm as TsigAlgorithm,
    secret: Buffer.alloc(0),
  };
  return appendTsig(msg, key, {
    timeSigned: record.timeSigned,
    fudge: record.fudge,
    mac: Buffer.alloc(0),
    error,
    other: Buffer.alloc(0),
  });
}

/** A copy of a message with its RCODE replaced. */
export function withRcode(msg: Buffer, rcode: number): Buffer {
  const out = Buffer.from(msg);
  out.writeUInt16BE((out.readUInt16BE(2) & 0xfff0) | (rcode & 0xf), 2);
  return out;
}

export type KeyLookup = (name: string) => TsigKey | undefined;

export type VerifyResult =
  | { ok: true; key: TsigKey; mac: Buffer; record: TsigRecord; unsigned: Buffer }
  | {
      ok: false;
      error: TsigErrorName;
      /** The key when it was known (then a BADTIME answer can be signed with it). */
      key?: TsigKey;
      record: TsigRecord;
      unsigned: Buffer;
      reason: string;
    };

export interface VerifyOptions {
  /** Seconds since the epoch: the verifier's own clock. */
  now: number;
  /** Verifying a response: the MAC of our request. */
  requestMac?: Buffer;
}

/** §5.2.2.1: a MAC shorter than this is refused (half the hash, at least 10 octets). */
function minMacLength(key: TsigKey): number {
  return Math.max(10, hashLength(key) / 2);
}

function hashLength(key: TsigKey): number {
  return createHmac(TSIG_ALGORITHMS[key.algorithm], "").digest().length;
}

/**
 * Verifies a signed single message (§5.2): BADKEY for an unknown key or a
 * key used with another algorithm, BADSIG for a wrong MAC, BADTIME outside
 * the fudge. The MAC is checked before the time (§5.2.3), in constant time.
 */
export function verifyMessage(
  found: FoundTsig,
  keys: KeyLookup,
  opts: VerifyOptions,
): VerifyResult {
  const { record, unsigned } = found;
  const key = keys(record.keyName);
  if (!key || key.algorithm !== record.algorithm)
    return {
      ok: false,
      error: "BADKEY",
      record,
      unsigned,
      reason: key
        ? `key ${record.keyName} is ${key.algorithm}, not ${record.algorithm}`
        : `unknown key ${record.keyName}`,
    };
  const expected = hmac(key, [
    ...(opts.requestMac ? [macField(opts.requestMac)] : []),
    unsigned,
    variables(key, record.timeSigned, record.fudge, record.error, record.otherData),
  ]);
  const bad = macMismatch(key, record.mac, expected);
  if (bad) return { ok: false, error: "BADSIG", key, record, unsigned, reason: bad };
  const skew = Math.abs(Math.floor(opts.now) - record.timeSigned);
  if (skew > record.fudge)
    return {
      ok: false,
      error: "BADTIME",
      key,
      record,
      unsigned,
      reason: `signed ${skew} s away from our time (fudge ${record.fudge} s)`,
    };
  return { ok: true, key, mac: record.mac, record, unsigned };
}

/** Why a MAC does not match, or undefined when it does (truncated MACs per §5.2.2.1). */
function macMismatch(key: TsigKey, got: Buffer, expected: Buffer): string | undefined {
  if (got.length > expected.length || got.length < minMacLength(key))
    return `MAC of ${got.length} octets (expected ${expected.length})`;
  if (!timingSafeEqual(got, expected.subarray(0, got.length))) return "the MAC does not match";
  return undefined;
}

/** The server's time as BADTIME's other data (§5.2.3): 48 bits. */
export function timeOtherData(now: number): Buffer {
  const b = Buffer.alloc(6);
  b.writeUIntBE(Math.floor(now), 0, 6);
  return b;
}

/**
 * Signs the messages of one multi-message answer (§5.3.1): the first with
 * the request MAC and the full variables, then at least every `every`-th and
 * always the last, each chained to the prior MAC over the unsigned messages
 * in between.
 */
export class TsigStreamSigner {
  private prior: Buffer;
  private first = true;
  private unsignedRun: Buffer[] = [];

  constructor(
    private readonly key: TsigKey,
    requestMac: Buffer,
    private readonly now: () => number,
    private readonly every = 1,
    private readonly fudge = DEFAULT_FUDGE,
  ) {
    if (every < 1 || every > MAX_UNSIGNED_RUN + 1)
      throw new RangeError(`sign every 1..${MAX_UNSIGNED_RUN + 1} messages, not ${every}`);
    this.prior = requestMac;
  }

  /** The message as it goes out: signed when due or when `last`, else unchanged. */
  next(msg: Buffer, last: boolean): Buffer {
    if (this.first) {
      this.first = false;
      const { wire, mac } = signMessage(msg, this.key, {
        now: this.now(),
        fudge: this.fudge,
        requestMac: this.prior,
      });
      this.prior = mac;
      return wire;
    }
    if (!last && this.unsignedRun.length + 1 < this.every) {
      this.unsignedRun.push(msg);
      return msg;
    }
    const timeSigned = Math.floor(this.now());
    const mac = hmac(this.key, [
      macField(this.prior),
      ...this.unsignedRun,
      msg,
      timers(timeSigned, this.fudge),
    ]);
    this.unsignedRun = [];
    this.prior = mac;
    return appendTsig(msg, this.key, {
      timeSigned,
      fudge: this.fudge,
      mac,
      error: 0,
      other: Buffer.alloc(0),
    });
  }
}

/**
 * Verifies the messages of one multi-message answer (§5.3.1), in order. The
 * first must be signed; after it, up to 99 unsigned messages may come between
 * two signed ones; `finish()` checks that the last one was signed.
 */
export class TsigStreamVerifier {
  private prior: Buffer;
  private first = true;
  private unsignedRun: Buffer[] = [];

  constructor(
    private readonly key: TsigKey,
    requestMac: Buffer,
    private readonly now: () => number,
  ) {
    this.prior = requestMac;
  }

  /** Throws TsigVerifyError (or TsigFormatError) when the message fails. */
  next(msg: Buffer): void {
    const found = readTsig(msg);
    if (!found) {
      if (this.first) throw new TsigVerifyError("BADSIG", "the first message is not signed");
      if (this.unsignedRun.length >= MAX_UNSIGNED_RUN)
        throw new TsigVerifyError("BADSIG", "more than 99 unsigned messages in a row (§5.3.1)");
      this.unsignedRun.push(msg);
      return;
    }
    const { record, unsigned } = found;
    if (record.keyName !== this.key.name || record.algorithm !== this.key.algorithm)
      throw new TsigVerifyError("BADKEY", `signed with ${record.keyName} (${record.algorithm})`);
    if (record.error !== 0)
      throw new TsigVerifyError(
        errorName(record.error),
        `the server reports TSIG error ${record.error}`,
      );
    const expected = this.first
      ? hmac(this.key, [
          macField(this.prior),
          unsigned,
          variables(this.key, record.timeSigned, record.fudge, record.error, record.otherData),
        ])
      : hmac(this.key, [
          macField(this.prior),
          ...this.unsignedRun,
          unsigned,
          timers(record.timeSigned, record.fudge),
        ]);
    const bad = macMismatch(this.key, record.mac, expected);
    if (bad) throw new TsigVerifyError("BADSIG", bad);
    const skew = Math.abs(Math.floor(this.now()) - record.timeSigned);
    if (skew > record.fudge)
      throw new TsigVerifyError("BADTIME", `signed ${skew} s away from our time`);
    this.first = false;
    this.unsignedRun = [];
    this.prior = record.mac;
  }

  /** §5.3.1: the last message of the answer must be signed. */
  finish(): void {
    if (this.first || this.unsignedRun.length > 0)
      throw new TsigVerifyError("BADSIG", "the last message of the answer is not signed");
  }
}

export class TsigVerifyError extends Error {
  constructor(
    readonly error: TsigErrorName,
    reason: string,
  ) {
    super(`TSIG ${error}: ${reason}`);
  }
}

function errorName(code: number): TsigErrorName {
  const hit = (Object.entries(TSIG_ERROR) as [keyof typeof TSIG_ERROR, number][]).find(
    ([, v]) => v === code,
  );
  return hit && hit[0] !== "NOERROR" ? hit[0] : "BADSIG";
}
