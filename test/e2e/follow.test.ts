/**
 * A topology whose origin follows a real Knot primary: a change committed at
 * Knot (knotc zone-commit) reaches the edges and the resolvers through the
 * fabric like an API write, with receipts; the time from Knot's commit to a
 * resolver answering the new value is measured.
 */
import dnsPacket from "dns-packet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryUdp } from "../../core/dns-transport.ts";
import { type Knot, startKnot } from "../origin/follow-knot.ts";
import { waitFor } from "../support/wait.ts";
import { digShort, node, smallTopology, startTopology, waitConverged } from "./support.ts";

const ZONE = `$ORIGIN f.test.
$TTL 60
@    SOA ns1.f.test. hostmaster.f.test. 1 3600 600 86400 30
@    NS ns1
ns1  A 192.0.2.53
www  A 192.0.2.1
`;
const SAMPLES = 10;

let knot: Knot;
let t: Awaited<ReturnType<typeof startTopology>>;

const until = <T>(what: string, fn: () => Promise<T | undefined>, ms = 10_000) =>
  waitFor(what, fn, ms, 5);

/** The A record a resolver answers for `name` (one UDP query, as dig would send). */
async function resolverA(addr: string, name: string): Promise<string | undefined> {
  const i = addr.lastIndexOf(":");
  const query = dnsPacket.encode({
    type: "query",
    id: Math.floor(Math.random() * 65536),
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type: "A", class: "IN" }],
  });
  const reply = await queryUdp(addr.slice(0, i), Number(addr.slice(i + 1)), query, 1000).catch(
    () => undefined,
  );
  const a = reply && dnsPacket.decode(reply).answers?.find((x) => x.type === "A");
  return a ? String((a as { data: unknown }).data) : undefined;
}

async function edgeA(url: string, name: string): Promise<string | undefined> {
  const res = await fetch(`${url}/resolve?name=${name}&type=A`);
  const body = (await res.json()) as { Answer?: { data: string }[] };
  return body.Answer?.[0]?.data;
}

beforeAll(async () => {
  knot = await startKnot([{ name: "f.test", file: ZONE }]);
  t = await startTopology(
    smallTopology({
      origin: { follow: [{ primary: `dns://127.0.0.1:${knot.port}`, zones: ["f.test"] }] },
    }),
  );
  await until("f.test loaded", async () => {
    const res = await fetch(`${t.originUrl}/v1/zones/f.test`);
    return res.ok ? true : undefined;
  });
  // Knot learns where to send NOTIFYs only now: the origin's DNS port was picked at start.
  const dns = node(t, "origin").extra.dns!;
  await knot.notifyTo(["f.test"], Number(dns.slice(dns.lastIndexOf(":") + 1)));
}, 30_000);

afterAll(async () => {
  await t?.close();
  await knot?.close();
});

describe("a topology behind a Knot primary", () => {
  it("a change at Knot reaches every edge and resolver, with receipts; Knot commit -> resolver answer is measured", async () => {
    const res1 = node(t, "res-1").address;
    const res2 = node(t, "res-2").address;
    const edges = ["regional-1", "edge-1", "edge-2"].map((id) => node(t, id).address);
    // Warm every cache with the old answer first, so that the new one must be pushed through them.
    expect(await digShort(res1, "www.f.test")).toBe("192.0.2.1");
    expect(await digShort(res2, "www.f.test")).toBe("192.0.2.1");
    for (const e of edges) expect(await edgeA(e, "www.f.test")).toBe("192.0.2.1");

    const times: number[] = [];
    const taken: number[] = [];
    let serial = await knot.serial("f.test");
    for (let i = 2; i < 2 + SAMPLES; i++) {
      const value = `192.0.2.${i}`;
      await knot.knotc("zone-begin", "f.test");
      await knot.knotc("zone-unset", "f.test", "www", "A");
      await knot.knotc("zone-set", "f.test", "www", "60", "A", value);
      // t0 before the commit command starts: an upper bound (it includes running knotc, ~10 ms).
      const t0 = Date.now();
      await knot.knotc("zone-commit", "f.test");
      await until(`res-1 answers ${value}`, async () =>
        (await resolverA(res1, "www.f.test")) === value ? true : undefined,
      );
      times.push(Date.now() - t0);
      await until(`res-2 answers ${value}`, async () =>
        (await resolverA(res2, "www.f.test")) === value ? true : undefined,
      );
      for (const e of edges) {
        await until(`${e} serves ${value}`, async () =>
          (await edgeA(e, "www.f.test")) === value ? true : undefined,
        );
      }
      // The change went through the fabric like an API write: committed at Knot's serial, with receipts.
      const feed = (await (
        await fetch(`${t.originUrl}/v1/zones/f.test/changes?since=${serial}`)
      ).json()) as { serial: number; changes: { changeId: string; serial: number }[] };
      serial = await knot.serial("f.test");
      expect(feed.serial).toBe(serial);
      expect(feed.changes.map((c) => c.serial)).toEqual([serial]);
      const receipt = await waitConverged(t, feed.changes[0]!.changeId, 10_000);
      expect(receipt.status).toBe("INSYNC");
      taken.push(receipt.committedAt - t0);
      expect(receipt.nodes.map((n) => n.id).sort()).toEqual([
        "edge-1",
        "edge-2",
        "regional-1",
        "res-1",
        "res-2",
      ]);
    }
    const summary = (xs: number[]) => {
      const sorted = [...xs].sort((a, b) => a - b);
      return `median ${sorted[Math.floor(xs.length / 2)]} ms, max ${sorted[xs.length - 1]} ms (${xs.join(", ")})`;
    };
    console.log(
      `follow e2e, ${SAMPLES} changes: Knot zone-commit -> origin commit ${summary(taken)}; ` +
        `Knot zone-commit -> res-1 answers the new value ${summary(times)}`,
    );
  });

  it("refuses API writes to the followed zone with 409 naming the primary", async () => {
    const res = await fetch(`${t.originUrl}/v1/zones/f.test/rrsets/www/A`, {
      method: "PUT",
      headers: { authorization: `Bearer ${t.token}`, "content-type": "application/json" },
      body: JSON.stringify({ data: ["192.0.2.200"] }),
    });
    expect(res.status).toBe(409);
    expect(((await res.json()) as { primary: string }).primary).toBe(
      `dns://127.0.0.1:${knot.port}`,
    );
  });
});
