import { describe, expect, it } from "vitest";
import { VirtualClock } from "../../core/clock.ts";
import {
  ChangesGone,
  type CommittedChange,
  type Durability,
  InvalidInput,
  type JournalRecord,
  RRsetNotFound,
  SerialMismatch,
  Store,
  StoreUnavailable,
  ZoneExists,
  ZoneNotFound,
} from "../../origin/store.ts";

/** Durability that holds records until `flush()`, like a slow disk. */
class HeldDurability implements Durability {
  held: {
    record: JournalRecord;
    onDurable: () => void;
    resolve: () => void;
    reject: (e: Error) => void;
  }[] = [];
  all: JournalRecord[] = [];
  auto = true;
  append(record: JournalRecord, onDurable: () => void): Promise<void> {
    this.all.push(record);
    return new Promise((resolve, reject) => {
      this.held.push({ record, onDurable, resolve, reject });
      if (this.auto) this.flush();
    });
  }
  flush(): void {
    for (const h of this.held.splice(0)) {
      h.onDurable();
      h.resolve();
    }
  }
}

function makeStore(limit = 100) {
  const durability = new HeldDurability();
  const clock = new VirtualClock(1_700_000_000_000);
  const warnings: string[] = [];
  const store = new Store({
    clock,
    durability,
    changeLogLimit: limit,
    warn: (m) => warnings.push(m),
  });
  return { store, durability, clock, warnings };
}

async function withZone(limit = 100) {
  const t = makeStore(limit);
  await t.store.createZone({
    name: "Example.Test.",
    rrsets: [
      { name: "@", type: "NS", data: ["ns1.example.test"] },
      { name: "www", type: "A", ttl: 60, data: ["192.0.2.10"] },
    ],
  });
  return t;
}

const rejects = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected a rejection");
};

describe("Store", () => {
  it("creates a zone at serial 1 with a default SOA and stamps every RRset", async () => {
    const { store } = await withZone();
    const zone = store.findZone("deep.www.example.test")!;
    expect(zone.name).toBe("example.test");
    expect(zone.serial).toBe(1);
    expect(zone.soa.data[0]).toMatchObject({ mname: "ns1.example.test", minimum: 300 });
    expect(zone.get("www.example.test", "A")).toMatchObject({ ttl: 60, version: 1 });
    expect(store.findZone("example.org")).toBeUndefined();
  });

  it("increments the serial per change and stamps only touched RRsets", async () => {
    const { store } = await withZone();
    const r = await store.update("example.test", [
      { name: "api", type: "AAAA", changetype: "REPLACE", data: ["2001:db8::1", "2001:DB8::1"] },
    ]);
    expect(r.serial).toBe(2);
    expect(r.changeId).toMatch(/^chg_/);
    const zone = store.getZone("example.test").zone;
    expect(zone.get("api.example.test", "AAAA")).toMatchObject({ version: 2, ttl: 3600 });
    expect(zone.get("api.example.test", "AAAA")!.data).toHaveLength(1);
    expect(zone.get("www.example.test", "A")!.version).toBe(1);
    expect(zone.soa.version).toBe(2);
  });

  it("takes a client SOA serial only when it is ahead (RFC 1982)", async () => {
    const { store } = await withZone();
    const soa = {
      mname: "ns1.example.test",
      rname: "h.example.test",
      refresh: 1,
      retry: 1,
      expire: 1,
      minimum: 5,
    };
    const ahead = await store.update("example.test", [
      { name: "@", type: "SOA", changetype: "REPLACE", data: [{ ...soa, serial: 2024010100 }] },
    ]);
    expect(ahead.serial).toBe(2024010100);
    const behind = await store.update("example.test", [
      { name: "@", type: "SOA", changetype: "REPLACE", data: [{ ...soa, serial: 7 }] },
    ]);
    expect(behind.serial).toBe(2024010101);
    expect(store.getZone("example.test").zone.soaData.minimum).toBe(5);
  });

  it("applies a batch atomically: one bad entry leaves the zone untouched", async () => {
    const { store } = await withZone();
    const err = await rejects(
      store.update("example.test", [
        { name: "a", type: "A", changetype: "REPLACE", data: ["192.0.2.1"] },
        { name: "b", type: "A", changetype: "REPLACE", data: ["999.0.2.1"] },
      ]),
    );
    expect(err).toBeInstanceOf(InvalidInput);
    expect((err as InvalidInput).field).toBe("rrsets[1].data[0]");
    const zone = store.getZone("example.test").zone;
    expect(zone.serial).toBe(1);
    expect(zone.get("a.example.test", "A")).toBeUndefined();
  });

  it.each([
    [
      [{ name: "www", type: "CNAME", changetype: "REPLACE", data: ["x.example.test"] }],
      "rrsets[0].type",
      /CNAME cannot coexist/,
    ],
    [
      [{ name: "x", type: "SOA", changetype: "REPLACE", data: [{}] }],
      "rrsets[0].data[0]",
      /expected|Invalid/,
    ],
    [[{ name: "@", type: "SOA", changetype: "DELETE" }], "rrsets[0].type", /cannot be deleted/],
    [
      [{ name: "www.other.test.", type: "A", changetype: "REPLACE", data: ["192.0.2.1"] }],
      "rrsets[0].name",
      /outside zone/,
    ],
    [[{ name: "w", type: "A", changetype: "REPLACE", data: [] }], "rrsets[0].data", /at least one/],
    [
      [{ name: "w", type: "A", changetype: "REPLACE", ttl: -1, data: ["192.0.2.1"] }],
      "rrsets[0].ttl",
      /integer/,
    ],
    [
      [{ name: "w", type: "WKS", changetype: "REPLACE", data: ["x"] }],
      "rrsets[0].type",
      /unsupported type/,
    ],
    [
      [{ name: "c", type: "CNAME", changetype: "REPLACE", data: ["a.test", "b.test"] }],
      "rrsets[0].data",
      /exactly one/,
    ],
    [
      [
        { name: "w", type: "A", changetype: "REPLACE", data: ["192.0.2.1"] },
        { name: "w.example.test.", type: "A", changetype: "DELETE" },
      ],
      "rrsets[1]",
      /twice/,
    ],
  ] as const)("rejects %j naming %s", async (ops, field, reason) => {
    const { store } = await withZone();
    const err = (await rejects(store.update("example.test", ops))) as InvalidInput;
    expect(err).toBeInstanceOf(InvalidInput);
    expect(err.field).toBe(field);
    expect(err.reason).toMatch(reason);
  });

  it("accepts a CNAME replacing other data in the same batch", async () => {
    const { store } = await withZone();
    await store.update("example.test", [
      { name: "www", type: "A", changetype: "DELETE" },
      { name: "www", type: "CNAME", changetype: "REPLACE", data: ["web.example.test."] },
    ]);
    expect(
      store
        .getZone("example.test")
        .zone.at("www.example.test")
        .map((s) => s.type),
    ).toEqual(["CNAME"]);
  });

  it("checks If-Match against the latest serial, and knows unknown zones and RRsets", async () => {
    const { store } = await withZone();
    const op = { name: "www", type: "A", changetype: "DELETE", mustExist: true } as const;
    expect(await rejects(store.update("example.test", [op], 5))).toBeInstanceOf(SerialMismatch);
    expect(await rejects(store.update("nope.test", [op]))).toBeInstanceOf(ZoneNotFound);
    await store.update("example.test", [op], 1);
    expect(await rejects(store.update("example.test", [op]))).toBeInstanceOf(RRsetNotFound);
    expect(await rejects(store.createZone({ name: "example.test", rrsets: [] }))).toBeInstanceOf(
      ZoneExists,
    );
  });

  it("hides a change from readers until it is durable, yet plans the next write after it", async () => {
    const { store, durability } = await withZone();
    durability.auto = false;
    const first = store.update("example.test", [
      { name: "a", type: "A", changetype: "REPLACE", data: ["192.0.2.1"] },
    ]);
    const second = store.update(
      "example.test",
      [{ name: "b", type: "A", changetype: "REPLACE", data: ["192.0.2.2"] }],
      2,
    );
    expect(store.getZone("example.test").zone.serial).toBe(1);
    expect(store.findZone("a.example.test")!.get("a.example.test", "A")).toBeUndefined();
    durability.flush();
    expect((await first).serial).toBe(2);
    expect((await second).serial).toBe(3);
    expect(store.getZone("example.test").zone.serial).toBe(3);
  });

  it("refuses writes after a journal failure", async () => {
    const { store, durability } = await withZone();
    durability.auto = false;
    const w = store.update("example.test", [
      { name: "a", type: "A", changetype: "REPLACE", data: ["192.0.2.1"] },
    ]);
    durability.held[0]!.reject(new Error("EIO"));
    expect(await rejects(w)).toBeInstanceOf(StoreUnavailable);
    const again = await rejects(store.update("example.test", []));
    expect(again.message).toMatch(/restarts/);
  });

  it("serves changes since a serial and answers Gone once compacted or ahead", async () => {
    const { store } = await withZone(2);
    for (const ip of ["192.0.2.1", "192.0.2.2", "192.0.2.3"]) {
      await store.update("example.test", [
        { name: "www", type: "A", changetype: "REPLACE", data: [ip] },
      ]);
    }
    const feed = store.changesSince("example.test", 2);
    expect(feed.serial).toBe(4);
    expect(feed.changes.map((c) => c.serial)).toEqual([3, 4]);
    expect(feed.changes[1]!.changes).toContainEqual(
      expect.objectContaining({
        name: "www.example.test",
        type: "A",
        rrset: expect.objectContaining({ data: ["192.0.2.3"] }),
      }),
    );
    expect(store.changesSince("example.test", 4).changes).toEqual([]);
    expect(() => store.changesSince("example.test", 1)).toThrow(ChangesGone);
    expect(() => store.changesSince("example.test", 9)).toThrow(/ahead/);
  });

  it("answers a new zone's feed from before its creation with the creation, not Gone", async () => {
    const { store } = await withZone(5);
    const created = await store.createZone({
      name: "new.test",
      rrsets: [{ name: "@", type: "NS", data: ["ns1.new.test"] }],
    });
    await store.update("new.test", [
      { name: "www", type: "A", changetype: "REPLACE", data: ["192.0.2.9"] },
    ]);
    const feed = store.changesSince("new.test", 0);
    expect(feed.changes.map((c) => [c.op, c.serial])).toEqual([
      ["create", created.serial],
      ["update", created.serial + 1],
    ]);
  });

  it("notifies onCommit listeners with each durable change, and survives a failing listener", async () => {
    const { store, warnings, clock } = makeStore();
    const seen: CommittedChange[] = [];
    store.onCommit(() => {
      throw new Error("boom");
    });
    store.onCommit((c) => seen.push(c));
    await store.createZone({ name: "a.test", rrsets: [] });
    await clock.advance(1000);
    const upd = await store.update("a.test", [
      { name: "x", type: "TXT", changetype: "REPLACE", data: [["hi"]] },
    ]);
    await store.deleteZone("a.test");
    expect(seen.map((c) => [c.op, c.serial])).toEqual([
      ["create", 1],
      ["update", 2],
      ["delete", 2],
    ]);
    expect(seen[1]).toMatchObject({
      changeId: upd.changeId,
      zone: "a.test",
      ts: 1_700_000_001_000,
    });
    expect(warnings).toHaveLength(3);
    expect(store.findZone("x.a.test")).toBeUndefined();
  });

  it("rebuilds the same state from its journal records and from a snapshot", async () => {
    const { store, durability, clock } = await withZone();
    await store.update("example.test", [
      {
        name: "mx",
        type: "MX",
        changetype: "REPLACE",
        data: [{ preference: 10, exchange: "mail.example.test" }],
      },
    ]);
    const opts = { clock, durability: new HeldDurability(), changeLogLimit: 100, warn: () => {} };
    const replayed = new Store(opts, { records: durability.all });
    expect(replayed.snapshot()).toEqual(store.snapshot());
    const fromSnap = new Store(opts, { snapshot: store.snapshot() });
    expect(fromSnap.snapshot()).toEqual(store.snapshot());
    expect(fromSnap.changesSince("example.test", 1).changes).toHaveLength(1);
  });
});

/** The SOA with a given serial, for creates and updates. */
const soaAt = (serial: number) => ({
  mname: "ns1.example.test",
  rname: "hostmaster.example.test",
  serial,
  refresh: 3600,
  retry: 600,
  expire: 604_800,
  minimum: 300,
});

/** example.test taken to serial 5000, then deleted. */
async function deletedAt5000() {
  const t = await withZone();
  await t.store.update("example.test", [
    { name: "@", type: "SOA", changetype: "REPLACE", data: [soaAt(5000)] },
  ]);
  await t.store.deleteZone("example.test");
  return t;
}

const recreate = (store: Store, serial: number) =>
  store.createZone({
    name: "example.test",
    rrsets: [
      { name: "@", type: "SOA", data: [soaAt(serial)] },
      { name: "www", type: "A", data: ["192.0.2.99"] },
    ],
  });

describe("Store: a zone created again after a delete (tombstones)", () => {
  it("continues the old serials when the new SOA serial is not above them, and says why", async () => {
    const { store } = await deletedAt5000();
    const r = await recreate(store, 1);
    expect(r.serial).toBe(5001);
    expect(r.note).toBe(
      "zone example.test existed before at serial 5000; its serials continue from 5001 so that caches' version floors keep working",
    );
    const zone = store.getZone("example.test").zone;
    expect(zone.serial).toBe(5001);
    expect(zone.soaData).toMatchObject({ serial: 5001, minimum: 300 });
    expect(zone.get("www.example.test", "A")!.version).toBe(5001);
    expect((await store.update("example.test", [])).serial).toBe(5002);
  });

  it("bumps a serial equal to the old one, and one behind it in RFC 1982 terms", async () => {
    const { store } = await deletedAt5000();
    expect((await recreate(store, 5000)).serial).toBe(5001);
    await store.deleteZone("example.test");
    // 5001 + 2^31 + 1 lies behind 5001 in serial arithmetic, though larger as a number.
    expect((await recreate(store, 5001 + 2 ** 31 + 1)).serial).toBe(5002);
  });

  it("keeps a higher serial, without a note, and bumps the default serial of a JSON create", async () => {
    const { store } = await deletedAt5000();
    const kept = await recreate(store, 2024010100);
    expect(kept).not.toHaveProperty("note");
    expect(kept.serial).toBe(2024010100);
    await store.deleteZone("example.test");
    const json = await store.createZone({ name: "example.test", rrsets: [] });
    expect(json.serial).toBe(2024010101);
    expect(json.note).toMatch(/existed before at serial 2024010100/);
  });

  it("leaves zones that were never deleted alone", async () => {
    const { store } = await deletedAt5000();
    const other = await store.createZone({ name: "other.test", rrsets: [] });
    expect(other).not.toHaveProperty("note");
    expect(other.serial).toBe(1);
  });

  it("forgets the oldest deletions beyond tombstoneLimit", async () => {
    const durability = new HeldDurability();
    const store = new Store({
      clock: new VirtualClock(0),
      durability,
      changeLogLimit: 10,
      tombstoneLimit: 2,
      warn: () => {},
    });
    for (const name of ["a.test", "b.test", "c.test"]) {
      await store.createZone({ name, rrsets: [], soa: { serial: 100 } });
      await store.deleteZone(name);
    }
    expect(store.snapshot().tombstones).toEqual([
      { zone: "b.test", serial: 100 },
      { zone: "c.test", serial: 100 },
    ]);
    expect((await store.createZone({ name: "a.test", rrsets: [] })).serial).toBe(1);
    expect((await store.createZone({ name: "b.test", rrsets: [] })).serial).toBe(101);
  });

  it("remembers tombstones across a restart, from the journal and from a snapshot", async () => {
    const { durability, clock } = await deletedAt5000();
    const opts = { clock, durability: new HeldDurability(), changeLogLimit: 100, warn: () => {} };
    const replayed = new Store(opts, { records: durability.all });
    expect((await recreate(replayed, 1)).serial).toBe(5001);

    const snapshot = new Store(opts, { records: durability.all }).snapshot();
    expect(snapshot.tombstones).toEqual([{ zone: "example.test", serial: 5000 }]);
    const fromSnap = new Store(opts, { snapshot: JSON.parse(JSON.stringify(snapshot)) });
    expect((await recreate(fromSnap, 1)).serial).toBe(5001);
    // Re-created, the zone carries the guarantee itself: no tombstone is kept for it.
    expect(fromSnap.snapshot().tombstones).toEqual([]);
  });

  it("loads a snapshot written before tombstones existed", async () => {
    const { store, clock } = await withZone();
    const { tombstones: _, ...old } = store.snapshot();
    const opts = { clock, durability: new HeldDurability(), changeLogLimit: 100, warn: () => {} };
    const loaded = new Store(opts, { snapshot: old });
    expect(loaded.getZone("example.test").zone.serial).toBe(1);
    expect(loaded.snapshot().tombstones).toEqual([]);
  });
});
