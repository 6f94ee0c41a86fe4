/**
 * The served zones replaced at runtime (`setZones`), over real UDP against an
 * in-process resolver: a zone created later is answered without a restart,
 * a removed one is REFUSED and its cached entries are dropped.
 */
import * as packet from "dns-packet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RealClock } from "../../core/clock.ts";
import { queryUdp } from "../../core/dns-transport.ts";
import { type RunningResolver, startResolver } from "../../resolver/server.ts";
import { FakeAuthority, makeQuery } from "./fake-authority.ts";

const auth = new FakeAuthority(new RealClock());
auth.set("www.example.test", "A", 300, ["192.0.2.10"]);
auth.set("www.later.test", "A", 300, ["192.0.2.20"]);
let r: RunningResolver;

beforeAll(async () => {
  r = await startResolver(
    { upstream: "dns://127.0.0.1:9", zones: ["example.test"] },
    { upstream: auth.upstream },
  );
});
afterAll(() => r?.close());

async function ask(name: string): Promise<{ rcode: string; answers: unknown[] }> {
  const [host, port] = r.dnsAddr.split(":") as [string, string];
  const out = packet.decode(await queryUdp(host, Number(port), makeQuery(name, "A")));
  return { rcode: (out as { rcode?: string }).rcode ?? "", answers: out.answers ?? [] };
}

describe("setZones", () => {
  it("answers a zone added at runtime and refuses a removed one, dropping its entries", async () => {
    expect(await ask("www.example.test")).toMatchObject({ rcode: "NOERROR", answers: [{}] });
    expect(await ask("www.later.test")).toMatchObject({ rcode: "REFUSED", answers: [] });

    r.setZones(["example.test", "Later.Test."]);
    expect(r.zones()).toEqual(["example.test", "later.test"]);
    expect(await ask("www.later.test")).toMatchObject({
      rcode: "NOERROR",
      answers: [{ data: "192.0.2.20" }],
    });
    expect(r.resolver.entries).toBe(2);

    r.setZones(["later.test"]);
    expect(r.resolver.entries).toBe(1);
    expect(await ask("www.example.test")).toMatchObject({ rcode: "REFUSED" });
    expect(await ask("www.later.test")).toMatchObject({ rcode: "NOERROR" });
    expect(auth.calls).toBe(2);
  });

  it("rejects an invalid name and keeps the zones it had", () => {
    const before = r.zones();
    expect(() => r.setZones(["ok.test", "bad..test"])).toThrow(/empty label/);
    expect(r.zones()).toEqual(before);
  });
});
