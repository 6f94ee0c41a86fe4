/**
 * NOTIFY retries and SOA receipts under the virtual clock, against a real UDP
 * peer that plays a secondary: it refuses NOTIFYs until told otherwise, and
 * serves whatever SOA serial the test sets.
 */
import dnsPacket from "dns-packet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VirtualClock } from "../../core/clock.ts";
import { type DnsServer, startDnsServer } from "../../core/dns-transport.ts";
import { readTsig, signMessage, type TsigKey, verifyMessage } from "../../core/tsig.ts";
import { Receipts } from "../../origin/receipts.ts";
import { Secondaries, udpTransport } from "../../origin/secondaries.ts";
import { type Durability, type JournalRecord, Store } from "../../origin/store.ts";
import { waitFor } from "../support/dns-daemons.ts";

class Immediate implements Durability {
  async append(_r: JournalRecord, onDurable: () => void): Promise<void> {
    onDurable();
  }
}

const key: TsigKey = { name: "k", algorithm: "hmac-sha256", secret: Buffer.alloc(32, 3) };
const peer = { notifies: 0, answer: false, serial: 1, signedOk: 0 };
let server: DnsServer;

beforeAll(async () => {
  server = await startDnsServer({ host: "127.0.0.1", port: 0 }, (q) => {
    const opcode = (q.readUInt16BE(2) >> 11) & 0xf;
    const found = readTsig(q);
    const p = dnsPacket.decode(found?.unsigned ?? q);
    if (opcode === 4) {
      peer.notifies++;
      // Signed on the virtual clock: the MAC is what is checked here, at the signer's time.
      const now = found?.record.timeSigned ?? 0;
      if (found && verifyMessage(found, () => key, { now }).ok) peer.signedOk++;
      const r = Buffer.from((found?.unsigned ?? q).subarray(0, 12));
      r.writeUInt16BE((4 << 11) | 0x8000 | 0x0400 | (peer.answer ? 0 : 5), 2);
      r.writeUInt16BE(0, 4);
      r.writeUInt16BE(0, 6);
      r.writeUInt16BE(0, 10);
      return found ? signMessage(r, key, { now, requestMac: found.record.mac }).wire : r;
    }
    return dnsPacket.encode({
      type: "response",
      id: p.id,
      flags: dnsPacket.AUTHORITATIVE_ANSWER,
      questions: p.questions,
      answers: [
        {
          name: "z.test",
          type: "SOA",
          ttl: 60,
          data: {
            mname: "ns",
            rname: "h",
            serial: peer.serial,
            refresh: 60,
            retry: 60,
            expire: 600,
            minimum: 60,
          },
        },
      ],
    });
  });
});
afterAll(() => server.close());

const transport = udpTransport;

async function world() {
  const clock = new VirtualClock(1_700_000_000_000);
  const store = new Store({
    clock,
    durability: new Immediate(),
    changeLogLimit: 10,
    warn: () => {},
  });
  await store.createZone({
    name: "z.test",
    rrsets: [{ name: "@", type: "NS", data: ["ns.z.test."] }],
  });
  const receipts = new Receipts(clock);
  const logs: string[] = [];
  const counts = new Map<string, number>();
  const secondaries = new Secondaries({
    store,
    receipts,
    keys: (n) => (n === "k" ? key : undefined),
    clock,
    transport,
    log: (m) => logs.push(m),
    count: (_n, _h, labels) => counts.set(labels, (counts.get(labels) ?? 0) + 1),
    notifyAttempts: 3,
    retryMs: 1000,
  });
  secondaries.add({ id: "sec", dns: `127.0.0.1:${server.port}`, zones: ["z.test"], key: "k" });
  store.onCommit((c) => receipts.track(c));
  store.onCommit(secondaries.onCommit);
  return { clock, store, receipts, logs, counts, secondaries };
}

describe("NOTIFY out (RFC 1996) and SOA receipts", () => {
  it("retries an unanswered NOTIFY after 1 s, 2 s, and gives up after 3 attempts, signed each time", async () => {
    Object.assign(peer, { notifies: 0, answer: false, serial: 1, signedOk: 0 });
    const w = await world();
    await w.store.update("z.test", [
      { name: "www", type: "A", changetype: "REPLACE", data: ["192.0.2.1"] },
    ]);
    await w.clock.advance(0);
    await waitFor("the first NOTIFY", () => peer.notifies === 1);
    await waitFor("its refusal handled", () => w.counts.get('result="bad-answer"') === 1);
    await w.clock.advance(999);
    expect(peer.notifies).toBe(1);
    await w.clock.advance(1);
    await waitFor("the second NOTIFY", () => peer.notifies === 2);
    await waitFor("its refusal handled", () => w.counts.get('result="bad-answer"') === 2);
    await w.clock.advance(1999);
    expect(peer.notifies).toBe(2);
    await w.clock.advance(1);
    await waitFor("the third NOTIFY", () => peer.notifies === 3);
    await waitFor("its refusal handled", () => w.counts.get('result="bad-answer"') === 3);
    await w.clock.advance(4000);
    expect(w.counts.get('result="gave-up"')).toBe(1);
    await w.clock.advance(60_000);
    expect(peer.notifies).toBe(3);
    expect(peer.signedOk).toBe(3);
    expect(
      w.logs.some((l) => /never answered the NOTIFY for z\.test serial 2 after 3 attempts/.test(l)),
    ).toBe(true);
    w.secondaries.close();
  });

  it("asks the SOA after the NOTIFY answer and backs off while it lags; INSYNC once it serves the serial", async () => {
    Object.assign(peer, { notifies: 0, answer: true, serial: 1, signedOk: 0 });
    const w = await world();
    const r = await w.store.update("z.test", [
      { name: "www", type: "A", changetype: "REPLACE", data: ["192.0.2.2"] },
    ]);
    await w.clock.advance(0);
    await waitFor("the NOTIFY answered", () => w.counts.get('result="answered"') === 1);
    const seen = () => w.secondaries.list()[0]!.serials["z.test"];
    await w.clock.advance(10);
    await waitFor("the first SOA check", () => seen() === 1);
    expect(w.receipts.status(r.changeId)!.nodes[0]).toMatchObject({
      id: "sec",
      tier: "secondary",
      status: "PENDING",
    });
    peer.serial = 2;
    // The next checks come 20, 40, 80 ms later; the change's serial is seen at the first.
    await w.clock.advance(19);
    expect(seen()).toBe(1);
    await w.clock.advance(1);
    await waitFor("the receipt", () => w.receipts.status(r.changeId)!.status === "INSYNC");
    expect(w.receipts.status(r.changeId)!.nodes[0]).toMatchObject({
      status: "INSYNC",
      latencyMs: 30,
    });
    expect(peer.notifies).toBe(1);
    w.secondaries.close();
  });
});
