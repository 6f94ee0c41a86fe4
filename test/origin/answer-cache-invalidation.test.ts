/**
 * The answer cache is invalidated per RRset: a commit drops exactly the
 * answers that read something it changed (the RRset, a CNAME hop, a possible
 * delegation, glue, a wildcard, the existence of a name, the SOA of a negative
 * answer) and keeps the rest. Checked on a real Store (its commits carry the
 * new SOA like every update does), first step by step, then against the
 * uncached path after each of a few hundred random commits; last on a real
 * `propagate origin` with dig, through its /metrics.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import dnsPacket from "dns-packet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VirtualClock } from "../../core/clock.ts";
import { AnswerCache } from "../../origin/answer-cache.ts";
import { answerQuery, MAX_EDNS_UDP, type Resolution } from "../../origin/authoritative.ts";
import { type Durability, InvalidInput, type RRsetOp, Store } from "../../origin/store.ts";
import { parseZoneFile } from "../../origin/zonefile.ts";
import { dig } from "../support/dig.ts";
import { type Running, startOriginProcess } from "../support/process.ts";
import { scrape } from "../support/prom.ts";
import { EXAMPLE, OTHER } from "./authoritative-fixture.ts";

/** Durability that is durable at once: the store publishes each commit before it resolves. */
const instant: Durability = {
  append: async (_record, onDurable) => onDurable(),
};

async function storeWithZones(): Promise<Store> {
  const store = new Store({
    clock: new VirtualClock(1_700_000_000_000),
    durability: instant,
    changeLogLimit: 10,
    warn: () => {},
  });
  for (const text of [EXAMPLE, OTHER]) {
    const parsed = parseZoneFile(text);
    const rrsets = parsed.rrsets.map((s) => ({ ...s, name: `${s.name}.` }));
    await store.createZone({ name: parsed.origin, rrsets });
  }
  return store;
}

function query(name: string, type: string): Buffer {
  return dnsPacket.encode({
    type: "query",
    id: 1,
    questions: [{ name, type: type as "A", class: "IN" }],
    additionals: [{ name: ".", type: "OPT", udpPayloadSize: 4096 } as unknown as dnsPacket.Answer],
  });
}

/** Asks through the cache; says whether it was a hit and checks the bytes against the full path. */
function ask(store: Store, cache: AnswerCache<Resolution>, name: string, type: string) {
  const q = query(name, type);
  const before = cache.stats().hits;
  const cached = answerQuery(q, store, { maxUdp: MAX_EDNS_UDP, cache });
  const fresh = answerQuery(q, store, { maxUdp: MAX_EDNS_UDP });
  expect(cached.wire.equals(fresh.wire), `${name} ${type}: cached bytes differ`).toBe(true);
  return { hit: cache.stats().hits > before, packet: dnsPacket.decode(cached.wire) };
}

describe("answer cache invalidation per RRset", () => {
  it("drops what a commit touched and keeps the rest", async () => {
    const store = await storeWithZones();
    const cache = new AnswerCache<Resolution>(undefined, store);
    store.onCommit(cache.onCommit);
    const put = (zone: string, op: Omit<RRsetOp, "changetype">) =>
      store.update(zone, [{ changetype: "REPLACE", ...op }]);
    const warm: [string, string][] = [
      ["www.example.test", "A"],
      ["www.example.test", "AAAA"],
      ["missing.example.test", "A"], // NXDOMAIN, carries the SOA
      ["www.example.test", "TXT"], // NODATA, carries the SOA
      ["example.test", "SOA"],
      ["example.test", "MX"], // mail.example.test A in the additional section
      ["x.wild.example.test", "TXT"], // synthesised from *.wild
      ["y.wild.example.test", "TXT"],
      ["alias.example.test", "A"], // alias -> alias2 -> www
      ["toother.example.test", "A"], // -> www.other.test
      ["a.b.c.example.test", "A"],
      ["host.sub.example.test", "A"], // a referral with glue
      ["txt.example.test", "TXT"],
    ];
    const hits = () =>
      Object.fromEntries(warm.map(([n, t]) => [`${n} ${t}`, ask(store, cache, n, t).hit]));
    const all = (hit: boolean) => Object.fromEntries(warm.map(([n, t]) => [`${n} ${t}`, hit]));
    expect(hits()).toEqual(all(false));
    expect(hits()).toEqual(all(true));

    // The mail server's address: the MX answer's additional section, and every SOA carrier.
    await put("example.test", { name: "mail", type: "A", data: ["192.0.2.26"] });
    expect(hits()).toEqual({
      ...all(true),
      "missing.example.test A": false,
      "www.example.test TXT": false,
      "example.test SOA": false,
      "example.test MX": false,
    });
    expect(ask(store, cache, "example.test", "MX").packet.additionals).toContainEqual(
      expect.objectContaining({ name: "mail.example.test", data: "192.0.2.26" }),
    );

    // One type at a name: the other type's answer and the chain ending at www A stay.
    await put("example.test", { name: "www", type: "AAAA", data: ["2001:db8::2"] });
    const afterAaaa = hits();
    expect(afterAaaa["www.example.test AAAA"]).toBe(false);
    expect(afterAaaa["www.example.test A"]).toBe(true);
    expect(afterAaaa["alias.example.test A"]).toBe(true);
    expect(afterAaaa["txt.example.test TXT"]).toBe(true);

    // A CNAME hop in the middle of a chain, and a target in another zone.
    await put("example.test", { name: "alias2", type: "CNAME", data: ["mail.example.test."] });
    await put("other.test", { name: "www", type: "A", data: ["198.51.100.2"] });
    const afterChain = hits();
    expect(afterChain["alias.example.test A"]).toBe(false);
    expect(afterChain["toother.example.test A"]).toBe(false);
    expect(afterChain["www.example.test A"]).toBe(true);
    expect(ask(store, cache, "alias.example.test", "A").packet.answers?.at(-1)).toMatchObject({
      name: "mail.example.test",
      data: "192.0.2.26",
    });
    expect(ask(store, cache, "toother.example.test", "A").packet.answers?.at(-1)).toMatchObject({
      data: "198.51.100.2",
    });

    // A name appearing where a wildcard answered (RFC 4592 §2.2.1): the name itself, and
    // a name below another (which makes it an empty non-terminal, RFC 8020).
    await put("example.test", { name: "x.wild", type: "A", data: ["192.0.2.78"] });
    await put("example.test", { name: "deep.y.wild", type: "A", data: ["192.0.2.79"] });
    const afterWild = hits();
    expect(afterWild["x.wild.example.test TXT"]).toBe(false);
    expect(afterWild["y.wild.example.test TXT"]).toBe(false);
    expect(afterWild["www.example.test A"]).toBe(true);
    expect(ask(store, cache, "x.wild.example.test", "TXT").packet.answers).toEqual([]);
    expect(ask(store, cache, "y.wild.example.test", "TXT").packet.answers).toEqual([]);

    // A delegation appearing above a name answered from the zone (RFC 1034 §4.3.2 step 3b),
    // and the glue of an existing one changing.
    await put("example.test", { name: "b.c", type: "NS", data: ["ns.b.c.example.test."] });
    await put("example.test", { name: "ns.sub", type: "A", data: ["192.0.2.201"] });
    const afterCut = hits();
    expect(afterCut["a.b.c.example.test A"]).toBe(false);
    expect(afterCut["host.sub.example.test A"]).toBe(false);
    expect(afterCut["txt.example.test TXT"]).toBe(true);
    const referral = ask(store, cache, "a.b.c.example.test", "A").packet;
    expect(referral.flags! & 0x0400).toBe(0);
    expect(referral.authorities).toContainEqual(expect.objectContaining({ type: "NS" }));
    expect(ask(store, cache, "host.sub.example.test", "A").packet.additionals).toContainEqual(
      expect.objectContaining({ data: "192.0.2.201" }),
    );

    // A delete drops its readers too; creating or deleting a zone drops everything.
    await store.update("example.test", [{ changetype: "DELETE", name: "txt", type: "TXT" }]);
    expect(ask(store, cache, "txt.example.test", "TXT").hit).toBe(false);
    expect(ask(store, cache, "txt.example.test", "TXT").packet.flags! & 0x0f).toBe(3); // NXDOMAIN
    hits();
    await store.createZone({ name: "new.test", rrsets: [] });
    expect(cache.stats().entries).toBe(0);
  });

  it.each([
    { steps: 200, precise: true },
    // Without the zones the cache drops every existence read near a change: coarser, still right.
    { steps: 40, precise: false },
  ])(
    "matches the uncached path after each of $steps random commits (existence asked again: $precise)",
    async ({ steps, precise }) => {
      const store = await storeWithZones();
      const cache = new AnswerCache<Resolution>(undefined, precise ? store : undefined);
      store.onCommit(cache.onCommit);
      // A fixed-seed generator, so a failure is reproducible.
      let seed = 42;
      const rand = (n: number) => {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        return seed % n;
      };
      const names = [
        "@",
        "www",
        "mail",
        "alias",
        "alias2",
        "c",
        "b.c",
        "a.b.c",
        "*.wild",
        "x.wild",
        "y.x.wild",
        "*.x.wild",
        "sub",
        "ns.sub",
        "deep.www",
      ];
      const rdata = (type: string, i: number): unknown[] => {
        switch (type) {
          case "A":
            return [`192.0.2.${i}`];
          case "AAAA":
            return [`2001:db8::${i}`];
          case "TXT":
            return [`v${i}`];
          case "MX":
            return [
              { preference: 10, exchange: ["mail.example.test.", "www.example.test."][i % 2] },
            ];
          case "NS":
            return ["ns.sub.example.test."];
          default:
            return [
              [
                "www.example.test.",
                "www.other.test.",
                "alias2.example.test.",
                "x.wild.example.test.",
              ][i % 4],
            ];
        }
      };
      const types = ["A", "AAAA", "TXT", "MX", "NS", "CNAME"];
      const questions: [string, string][] = [];
      for (const n of [...names.filter((x) => !x.startsWith("*")), "q.wild", "z.y.x.wild", "nope"])
        for (const t of ["A", "TXT", "MX", "CNAME", "ANY", "SOA", "NS"])
          questions.push([n === "@" ? "example.test" : `${n}.example.test`, t]);
      questions.push(["www.other.test", "A"], ["other.test", "SOA"]);

      let commits = 0;
      let kept = 0;
      for (let step = 0; step < steps; step++) {
        for (const [n, t] of questions) if (ask(store, cache, n, t).hit) kept++;
        const zone = rand(10) === 0 ? "other.test" : "example.test";
        const name = zone === "other.test" ? "www" : names[rand(names.length)]!;
        const type = types[rand(types.length)]!;
        if (type === "NS" && name === "@") continue;
        const op: RRsetOp =
          rand(4) === 0
            ? { changetype: "DELETE", name, type }
            : { changetype: "REPLACE", name, type, ttl: 60, data: rdata(type, step) };
        try {
          await store.update(zone, [op]);
          commits++;
        } catch (err) {
          // A CNAME beside other data (RFC 1034 §3.6.2) is refused: no commit, nothing to drop.
          if (!(err instanceof InvalidInput)) throw err;
        }
      }
      expect(commits).toBeGreaterThan(steps / 2);
      // Per RRset, not per zone: most answers survive a commit that does not touch them.
      expect(kept).toBeGreaterThan(questions.length * steps * 0.3);
    },
  );
});

describe("answer cache invalidation in `propagate origin`", () => {
  let dir = "";
  let origin: Running;
  const token = "cache-rrset-token-0123456789";

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "propagate-answer-cache-rrset-"));
    origin = await startOriginProcess(join(dir, "data"), token, ["--sample"]);
  }, 20_000);
  afterAll(async () => {
    await origin?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const digAt = (args: string[]) => {
    const [host, port] = origin.ready.dns!.split(":") as [string, string];
    return dig([`@${host}`, "-p", port, "+tries=1", "+time=5", "+nocookie", ...args]);
  };
  const counts = async () => {
    const { samples } = await scrape(`${origin.ready.http}/metrics`);
    return {
      hits: samples.get("origin_answer_cache_hits_total")!,
      misses: samples.get("origin_answer_cache_misses_total")!,
    };
  };

  it("keeps an answer a write did not touch and drops the negative one (it carries the SOA)", async () => {
    expect(await digAt(["www.example.test", "A", "+short"])).toBe("192.0.2.10\n");
    expect(await digAt(["nothing.example.test", "A"])).toMatch(/status: NXDOMAIN/);
    const before = await counts();
    expect(await digAt(["www.example.test", "A", "+short"])).toBe("192.0.2.10\n");
    expect(await digAt(["nothing.example.test", "A"])).toMatch(/status: NXDOMAIN/);
    const warm = await counts();
    expect(warm.hits - before.hits).toBe(2);

    const res = await fetch(`${origin.ready.http}/v1/zones/example.test/rrsets/unrelated/TXT`, {
      method: "PUT",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ ttl: 60, data: ["v1"] }),
    });
    expect(res.status).toBe(200);
    const { serial } = (await res.json()) as { serial: number };

    expect(await digAt(["www.example.test", "A", "+short"])).toBe("192.0.2.10\n");
    const afterWww = await counts();
    expect(afterWww.hits - warm.hits).toBe(1);
    expect(afterWww.misses).toBe(warm.misses);
    // The NXDOMAIN is built again, with the new serial in its SOA (RFC 2308 §3).
    const nx = await digAt(["nothing.example.test", "A"]);
    expect(nx).toMatch(/status: NXDOMAIN/);
    expect(nx).toMatch(new RegExp(`SOA\\s+\\S+\\s+\\S+\\s+${serial}\\s`));
    const afterNx = await counts();
    expect(afterNx.misses - afterWww.misses).toBe(1);
  });
});
