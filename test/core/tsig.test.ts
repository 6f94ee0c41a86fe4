import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import dnsPacket from "dns-packet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DnsServer, startDnsServer } from "../../core/dns-transport.ts";
import {
  parseTsigKeys,
  RCODE_NOTAUTH,
  readTsig,
  signMessage,
  TSIG_ERROR,
  type TsigKey,
  TsigStreamSigner,
  TsigStreamVerifier,
  timeOtherData,
  unsignedTsigError,
  verifyMessage,
} from "../../core/tsig.ts";
import { type Daemon, kdigText, startDaemon, transferTcp } from "../support/dns-daemons.ts";

const run = promisify(execFile);
const now = () => Math.floor(Date.now() / 1000);

async function keygen(alg: string, name: string): Promise<string> {
  return (await run("tsig-keygen", ["-a", alg, name])).stdout;
}

let keyFile = "";
let keys: TsigKey[] = [];
const lookup = (name: string) => keys.find((k) => k.name === name);

beforeAll(async () => {
  keyFile = (await keygen("hmac-sha256", "xfr-key")) + (await keygen("hmac-sha512", "Big.Key."));
  keys = parseTsigKeys(keyFile);
});

function query(name: string, type: string, id = 4242): Buffer {
  return dnsPacket.encode({ type: "query", id, questions: [{ name, type: type as "A" }] });
}

describe("tsig-keygen key files", () => {
  it("reads several keys, names lower-cased without the dot", () => {
    expect(keys.map((k) => [k.name, k.algorithm, k.secret.length])).toEqual([
      ["xfr-key", "hmac-sha256", 32],
      ["big.key", "hmac-sha512", 64],
    ]);
  });

  it("ignores comments and reads hand-written files", () => {
    const text = `# ours\nkey "a" { // one\n algorithm HMAC-SHA1; /* two\n */ secret "AAAA"; };`;
    expect(parseTsigKeys(text)).toEqual([
      { name: "a", algorithm: "hmac-sha1", secret: Buffer.from("AAAA", "base64") },
    ]);
  });

  it("says what is wrong, with the line", () => {
    expect(() => parseTsigKeys('key "a" {\n algorithm hmac-md5; secret "AA=="; };')).toThrow(
      /line 2: key "a": unsupported algorithm "hmac-md5"/,
    );
    expect(() => parseTsigKeys('key "a" { secret "AA=="; };')).toThrow(/needs both/);
    expect(() => parseTsigKeys('key "a" { algorithm hmac-sha256; secret "no!"; };')).toThrow(
      /not base64/,
    );
    expect(() => parseTsigKeys("options { };")).toThrow(/expected a key statement/);
    expect(() => parseTsigKeys('key "a" { algorithm hmac-sha256;')).toThrow(/end of the file/);
  });
});

describe("sign and verify", () => {
  it("round-trips a request and a response chained to the request MAC", () => {
    const key = keys[0]!;
    const req = signMessage(query("example.test", "SOA"), key, { now: now() });
    const found = readTsig(req.wire)!;
    expect(found.record.keyName).toBe("xfr-key");
    const ok = verifyMessage(found, lookup, { now: now() });
    expect(ok.ok).toBe(true);
    const resp = signMessage(query("example.test", "SOA"), key, {
      now: now(),
      requestMac: req.mac,
    });
    expect(
      verifyMessage(readTsig(resp.wire)!, lookup, { now: now(), requestMac: req.mac }).ok,
    ).toBe(true);
    // Without the request MAC (or with another) the response does not verify.
    const other = verifyMessage(readTsig(resp.wire)!, lookup, { now: now() });
    expect(other.ok === false && other.error).toBe("BADSIG");
  });

  it("BADKEY for an unknown key or another algorithm; BADSIG for a changed byte; BADTIME off the fudge", () => {
    const stranger: TsigKey = { ...keys[0]!, name: "stranger" };
    const r1 = verifyMessage(
      readTsig(signMessage(query("a.test", "A"), stranger, { now: now() }).wire)!,
      lookup,
      { now: now() },
    );
    expect(r1.ok === false && r1.error).toBe("BADKEY");
    const wrongAlg: TsigKey = { ...keys[1]!, algorithm: "hmac-sha256" };
    const r2 = verifyMessage(
      readTsig(signMessage(query("a.test", "A"), wrongAlg, { now: now() }).wire)!,
      lookup,
      { now: now() },
    );
    expect(r2.ok === false && r2.error).toBe("BADKEY");
    const signed = signMessage(query("a.test", "A"), keys[1]!, { now: now() }).wire;
    const forged = Buffer.from(signed);
    forged[13] = (forged[13] ?? 0) ^ 1; // the letter of the question name
    const r3 = verifyMessage(readTsig(forged)!, lookup, { now: now() });
    expect(r3.ok === false && r3.error).toBe("BADSIG");
    const stale = signMessage(query("a.test", "A"), keys[1]!, { now: now() - 301 }).wire;
    const r4 = verifyMessage(readTsig(stale)!, lookup, { now: now() });
    expect(r4.ok === false && r4.error).toBe("BADTIME");
    expect(verifyMessage(readTsig(stale)!, lookup, { now: now() - 2 }).ok).toBe(true);
  });

  it("refuses a TSIG that is not last, or a MAC cut below half the hash (RFC 8945 §5.1, §5.2.2.1)", () => {
    const signed = signMessage(query("a.test", "A"), keys[0]!, { now: now() }).wire;
    const p = dnsPacket.decode(signed);
    expect(p.additionals?.[0]?.type).toBe("TSIG" as never);
    const notLast = Buffer.concat([signed, Buffer.from([0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0])]);
    notLast.writeUInt16BE(2, 10);
    expect(() => readTsig(notLast)).toThrow(/not the last/);
    expect(() => readTsig(signed.subarray(0, signed.length - 3))).toThrow();
    expect(readTsig(query("a.test", "A"))).toBeUndefined();
  });

  it("chains a stream: signed every 3rd and the last, verified; tampering or an unsigned end fails", () => {
    const key = keys[1]!;
    const reqMac = Buffer.alloc(64, 7);
    const signer = new TsigStreamSigner(key, reqMac, now, 3);
    const msgs = Array.from({ length: 8 }, (_, i) =>
      signer.next(query(`m${i}.test`, "A", 1), i === 7),
    );
    expect(msgs.map((m) => readTsig(m) !== undefined)).toEqual([
      true,
      false,
      false,
      true,
      false,
      false,
      true,
      true,
    ]);
    const v = new TsigStreamVerifier(key, reqMac, now);
    for (const m of msgs) v.next(m);
    v.finish();
    const bad = new TsigStreamVerifier(key, reqMac, now);
    bad.next(msgs[0]!);
    bad.next(query("m1.test", "MX", 1)); // not the message that was signed over
    bad.next(msgs[2]!);
    expect(() => bad.next(msgs[3]!)).toThrow(/BADSIG/);
    const cut = new TsigStreamVerifier(key, reqMac, now);
    for (const m of msgs.slice(0, 5)) cut.next(m);
    expect(() => cut.finish()).toThrow(/not signed/);
  });
});

describe("the 100-message rule (RFC 8945 §5.3.1)", () => {
  it("a stream signed every 100th message verifies; 100 unsigned in a row do not", () => {
    const key = keys[0]!;
    const reqMac = Buffer.alloc(32, 1);
    const signer = new TsigStreamSigner(key, reqMac, now, 100);
    const msgs = Array.from({ length: 250 }, (_, i) =>
      signer.next(query(`m${i}.test`, "A", 1), i === 249),
    );
    expect(msgs.filter((m) => readTsig(m)).length).toBe(4); // 1st, 101st, 201st, last
    const v = new TsigStreamVerifier(key, reqMac, now);
    for (const m of msgs) v.next(m);
    v.finish();
    const tooMany = new TsigStreamVerifier(key, reqMac, now);
    tooMany.next(msgs[0]!);
    for (let i = 1; i < 100; i++) tooMany.next(msgs[i]!);
    expect(() => tooMany.next(query("extra.test", "A", 1))).toThrow(/more than 99 unsigned/);
    expect(() => new TsigStreamSigner(key, reqMac, now, 101)).toThrow(RangeError);
  });
});

/**
 * A tiny server on our module: verifies the query's TSIG, answers signed; an AXFR
 * of `example.test` is 5 messages, signed every 2nd and the last.
 */
function tsigServer(port = 0): Promise<DnsServer> {
  return startDnsServer({ host: "127.0.0.1", port }, (q) => {
    const found = readTsig(q);
    const p = dnsPacket.decode(found?.unsigned ?? q);
    const question = p.questions?.[0];
    const reply = (answers: dnsPacket.Answer[]): Buffer =>
      dnsPacket.encode({
        type: "response",
        id: p.id,
        flags: dnsPacket.AUTHORITATIVE_ANSWER,
        questions: p.questions,
        answers,
      });
    if (!found || !question) return reply([]);
    const v = verifyMessage(found, lookup, { now: now() });
    if (!v.ok) {
      if (v.error === "BADTIME" && v.key)
        return signMessage(reply([]), v.key, {
          now: now(),
          requestMac: found.record.mac,
          error: TSIG_ERROR.BADTIME,
          otherData: timeOtherData(now()),
          timeSigned: found.record.timeSigned,
        }).wire;
      return unsignedTsigError(reply([]), found.record, TSIG_ERROR[v.error]);
    }
    const soa: dnsPacket.Answer = {
      name: "example.test",
      type: "SOA",
      ttl: 60,
      data: {
        mname: "ns.example.test",
        rname: "h.example.test",
        serial: 7,
        refresh: 60,
        retry: 60,
        expire: 600,
        minimum: 60,
      },
    };
    if (question.type !== "AXFR")
      return signMessage(
        reply([{ name: question.name, type: "A", ttl: 60, data: "192.0.2.1" }]),
        v.key,
        {
          now: now(),
          requestMac: v.mac,
        },
      ).wire;
    const signer = new TsigStreamSigner(v.key, v.mac, now, 2);
    const parts: dnsPacket.Answer[][] = [
      [soa],
      [{ name: "a.example.test", type: "A", ttl: 60, data: "192.0.2.1" }],
      [{ name: "b.example.test", type: "A", ttl: 60, data: "192.0.2.2" }],
      [{ name: "c.example.test", type: "A", ttl: 60, data: "192.0.2.3" }],
      [soa],
    ];
    return parts.map((answers, i) => signer.next(reply(answers), i === parts.length - 1));
  });
}

describe("against real peers", () => {
  let server: DnsServer;
  let knot: Daemon;
  beforeAll(async () => {
    server = await tsigServer();
    knot = await startDaemon("knot", async (dir, port) => {
      await writeFile(
        join(dir, "example.test.zone"),
        [
          "$ORIGIN example.test.",
          "@ 60 IN SOA ns h 9 60 60 600 60",
          ...Array.from({ length: 3000 }, (_, i) => `n${i} 60 IN TXT "${"x".repeat(40)} ${i}"`),
          "",
        ].join("\n"),
      );
      const k = keys[1]!;
      return [
        "server:",
        `  rundir: "${dir}"`,
        `  listen: 127.0.0.1@${port}`,
        "log:",
        "  - target: stderr",
        "    any: info",
        "database:",
        `  storage: "${dir}"`,
        "key:",
        `  - id: ${k.name}`,
        `    algorithm: ${k.algorithm}`,
        `    secret: ${k.secret.toString("base64")}`,
        "acl:",
        "  - id: xfr",
        `    key: ${k.name}`,
        "    action: transfer",
        "zone:",
        "  - domain: example.test",
        `    storage: "${dir}"`,
        "    file: example.test.zone",
        "    acl: xfr",
        "",
      ].join("\n");
    });
  });
  afterAll(async () => {
    await server?.close();
    await knot?.stop();
  });

  const y = (k: TsigKey) => `${k.algorithm}:${k.name}:${k.secret.toString("base64")}`;

  it("kdig and dig verify our signed answers to their signed queries (sha256, sha512)", async () => {
    for (const k of keys) {
      const out = await kdigText([
        `@127.0.0.1`,
        "-p",
        String(server.port),
        "-y",
        y(k),
        "www.example.test",
        "A",
      ]);
      expect(out).toMatch(/status: NOERROR/);
      expect(out).toMatch(/192\.0\.2\.1/);
      expect(out).not.toMatch(/WARNING|BADSIG/);
    }
    const { stdout } = await run("dig", [
      `@127.0.0.1`,
      "-p",
      String(server.port),
      "-y",
      y(keys[0]!),
      "www.example.test",
      "A",
    ]);
    expect(stdout).toMatch(/status: NOERROR/);
    expect(stdout).toMatch(/TSIG.*NOERROR/);
    expect(stdout).not.toMatch(/Couldn't verify|failure/);
  });

  it("kdig verifies a multi-message AXFR signed every 2nd message (RFC 8945 §5.3.1)", async () => {
    const out = await kdigText([
      `@127.0.0.1`,
      "-p",
      String(server.port),
      "-y",
      y(keys[0]!),
      "example.test",
      "AXFR",
    ]);
    expect(out).toMatch(/c\.example\.test\./);
    expect(out).not.toMatch(/failed|WARNING|BADSIG/i);
    expect(out).toMatch(/5 messages/);
  });

  it("a wrong secret gets NOTAUTH with BADSIG, an unknown key BADKEY, both unsigned", async () => {
    const wrong = await kdigText([
      `@127.0.0.1`,
      "-p",
      String(server.port),
      "-y",
      `hmac-sha256:xfr-key:${Buffer.alloc(32, 1).toString("base64")}`,
      "www.example.test",
    ]);
    expect(wrong).toMatch(/NOTAUTH|BADSIG/);
    const unknown = await kdigText([
      `@127.0.0.1`,
      "-p",
      String(server.port),
      "-y",
      `hmac-sha256:nobody:${Buffer.alloc(32, 1).toString("base64")}`,
      "www.example.test",
    ]);
    expect(unknown).toMatch(/BADKEY/);
  });

  it("our signed AXFR request to knotd, and its many-message answer verified by the chain", async () => {
    const key = keys[1]!;
    const req = signMessage(query("example.test", "AXFR"), key, { now: now() });
    const msgs = await transferTcp(knot.port, req.wire);
    expect(msgs.length).toBeGreaterThan(2);
    expect(msgs[0]!.readUInt16BE(2) & 0xf).toBe(0);
    const v = new TsigStreamVerifier(key, req.mac, now);
    for (const m of msgs) v.next(m);
    v.finish();
    const records = msgs.reduce((n, m) => n + (dnsPacket.decode(m).answers?.length ?? 0), 0);
    expect(records).toBe(3002);
    // A forged MAC is refused by knotd with NOTAUTH.
    const forged = Buffer.from(req.wire);
    forged[forged.length - 20] = (forged[forged.length - 20] ?? 0) ^ 0xff;
    const bad = await transferTcp(knot.port, forged);
    expect(bad[0]!.readUInt16BE(2) & 0xf).toBe(RCODE_NOTAUTH);
  });
});
