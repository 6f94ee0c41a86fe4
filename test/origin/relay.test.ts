import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { MemoryBus } from "../../core/bus.ts";
import { RealClock } from "../../core/clock.ts";
import type { PurgeEvent } from "../../core/purge.ts";
import { EventSigner, eventVerifier } from "../../core/signing.ts";
import { Receipts } from "../../origin/receipts.ts";
import { MAX_EVENT_BYTES, Relay } from "../../origin/relay.ts";

let server: Server | undefined;
afterEach(() => server?.close());

/** A purge endpoint that records what it receives. */
async function endpoint(): Promise<{
  url: string;
  bodies: { event: PurgeEvent }[];
  auth: string[];
}> {
  const bodies: { event: PurgeEvent }[] = [];
  const auth: string[] = [];
  server = createServer((req, res) => {
    let data = "";
    req.on("data", (c) => (data += c));
    req.on("end", () => {
      bodies.push(JSON.parse(data));
      auth.push(req.headers.authorization ?? "");
      res.end("{}");
    });
  });
  await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/purge`, bodies, auth };
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
}

describe("Relay", () => {
  it("posts each signed event with the token, acks it, sends an oversized push as a soft purge, and drops a forged one", async () => {
    const { url, bodies, auth } = await endpoint();
    const signer = new EventSigner(EventSigner.generate());
    const logs: string[] = [];
    const bus = new MemoryBus();
    const receipts = new Receipts(new RealClock());
    receipts.register({ id: "worker-1", tier: "edge", address: url });
    const relay = new Relay(
      bus,
      receipts,
      () => [{ zone: "example.test", serial: 3 }],
      new RealClock(),
      (m) => logs.push(m),
      eventVerifier(signer.publicKey),
    );
    await relay.attach({ id: "worker-1", purgeUrl: url, token: "node-token-1" });
    const small: PurgeEvent = {
      changeId: "c2",
      zone: "example.test",
      serial: 2,
      keys: ["www.example.test"],
      mode: "push",
      ts: 0,
      rrsets: [{ name: "www.example.test", type: "A", ttl: 60, data: ["192.0.2.1"] }],
    };
    receipts.track({ changeId: "c3", zone: "example.test", serial: 3, ts: 0 });
    const txt = Array.from({ length: 400 }, (_, i) => `${"x".repeat(200)}${i}`);
    const big: PurgeEvent = {
      ...small,
      changeId: "c3",
      serial: 3,
      rrsets: [{ name: "big.example.test", type: "TXT", ttl: 60, data: [txt] }],
    };
    expect(JSON.stringify({ event: big }).length).toBeGreaterThan(MAX_EVENT_BYTES);
    // Unsigned, then signed by another key, then altered after signing: none is relayed.
    await bus.publish({ ...small, changeId: "forged-1" });
    await bus.publish(
      new EventSigner(EventSigner.generate()).sign({ ...small, changeId: "forged-2" }),
    );
    await bus.publish({ ...signer.sign(small), changeId: "forged-3" });
    await bus.publish(signer.sign(small));
    await bus.publish(signer.sign(big));
    await until(() => bodies.length === 2);
    expect(relay.forged).toBe(3);
    expect(logs.filter((m) => /bad or missing signature/.test(m))).toHaveLength(3);
    expect(auth).toEqual(["Bearer node-token-1", "Bearer node-token-1"]);
    expect(bodies[0]!.event).toMatchObject({ changeId: "c2", mode: "push", rrsets: small.rrsets });
    expect(bodies[1]!.event).toMatchObject({ changeId: "c3", mode: "soft" });
    expect(bodies[1]!.event.rrsets).toBeUndefined();
    await until(() => receipts.status("c3")?.status === "INSYNC");
    expect(receipts.status("c3")?.status).toBe("INSYNC");
    await relay.close();
    await bus.close();
  });
});
