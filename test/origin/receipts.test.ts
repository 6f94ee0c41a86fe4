import { describe, expect, it } from "vitest";
import { VirtualClock } from "../../core/clock.ts";
import { Receipts } from "../../origin/receipts.ts";

function setup() {
  const clock = new VirtualClock(1_000);
  const r = new Receipts(clock, 3);
  r.register({ id: "edge-1", tier: "edge", address: "http://127.0.0.1:1" });
  r.register({ id: "res-1", tier: "resolver", address: "127.0.0.1:2", parent: "edge-1" });
  return { clock, r };
}

describe("Receipts", () => {
  it("turns each node in sync as it acks, and converges at the last ack", () => {
    const { clock, r } = setup();
    r.track({ changeId: "c1", zone: "example.test", serial: 5, ts: 1_000 });
    expect(r.status("c1")?.status).toBe("PENDING");
    clock.advanceSync(40);
    expect(r.ack("edge-1", "example.test", 5)).toBe(true);
    const mid = r.status("c1")!;
    expect(mid.nodes.find((n) => n.id === "edge-1")).toMatchObject({
      status: "INSYNC",
      latencyMs: 40,
    });
    expect(mid.nodes.find((n) => n.id === "res-1")?.status).toBe("PENDING");
    clock.advanceSync(60);
    r.ack("res-1", "example.test", 5);
    expect(r.status("c1")).toMatchObject({ status: "INSYNC", convergedAt: 1_100 });
  });

  it("acks are cumulative per zone and do not cross zones", () => {
    const { r } = setup();
    r.track({ changeId: "c1", zone: "a.test", serial: 1, ts: 1_000 });
    r.track({ changeId: "c2", zone: "a.test", serial: 2, ts: 1_000 });
    r.track({ changeId: "c3", zone: "b.test", serial: 2, ts: 1_000 });
    r.ack("edge-1", "a.test", 2);
    r.ack("res-1", "a.test", 2);
    expect(r.status("c1")?.status).toBe("INSYNC");
    expect(r.status("c2")?.status).toBe("INSYNC");
    expect(r.status("c3")?.status).toBe("PENDING");
  });

  it("an ack that arrives before the change is tracked still counts", () => {
    const { r } = setup();
    r.ack("edge-1", "a.test", 7);
    r.ack("res-1", "a.test", 7);
    r.track({ changeId: "c7", zone: "a.test", serial: 7, ts: 1_000 });
    expect(r.status("c7")).toMatchObject({ status: "INSYNC", convergedAt: 1_000 });
  });

  it("refuses acks from unregistered nodes", () => {
    const { r } = setup();
    r.track({ changeId: "c1", zone: "a.test", serial: 1, ts: 1_000 });
    expect(r.ack("ghost", "a.test", 1)).toBe(false);
    expect(r.status("c1")?.nodes.map((n) => n.id)).toEqual(["edge-1", "res-1"]);
  });

  it("deregistering the last pending node converges the change", () => {
    const { r } = setup();
    r.track({ changeId: "c1", zone: "a.test", serial: 1, ts: 1_000 });
    r.ack("edge-1", "a.test", 1);
    r.deregister("res-1");
    expect(r.status("c1")?.status).toBe("INSYNC");
  });

  it("keeps a bounded number of changes", () => {
    const { r } = setup();
    for (let i = 1; i <= 5; i++)
      r.track({ changeId: `c${i}`, zone: "a.test", serial: i, ts: 1_000 });
    expect(r.status("c1")).toBeUndefined();
    expect(r.status("c2")).toBeUndefined();
    expect(r.status("c5")).toBeDefined();
  });

  it("a cumulative ack reaches every change still pending, past evicted and converged ones", () => {
    const { r } = setup();
    for (let i = 1; i <= 5; i++)
      r.track({ changeId: `c${i}`, zone: "a.test", serial: i, ts: 1_000 });
    // c1 and c2 were evicted while pending; c3..c5 are the ones kept.
    r.ack("edge-1", "a.test", 4);
    r.ack("res-1", "a.test", 3);
    expect(["c3", "c4", "c5"].map((id) => r.status(id)?.status)).toEqual([
      "INSYNC",
      "PENDING",
      "PENDING",
    ]);
    r.ack("edge-1", "a.test", 5);
    r.ack("res-1", "a.test", 5);
    expect(["c3", "c4", "c5"].map((id) => r.status(id)?.status)).toEqual([
      "INSYNC",
      "INSYNC",
      "INSYNC",
    ]);
    r.track({ changeId: "c6", zone: "a.test", serial: 6, ts: 1_000 });
    r.ack("edge-1", "a.test", 6);
    expect(r.status("c6")?.nodes.map((n) => n.status)).toEqual(["INSYNC", "PENDING"]);
  });

  it("an explicit purge is in sync only when acked by its id, not by a serial", () => {
    const { r } = setup();
    r.ack("edge-1", "a.test", 9);
    r.track({ changeId: "prg1", zone: "a.test", serial: 9, ts: 1_000, explicit: true });
    expect(r.status("prg1")).toMatchObject({ kind: "purge", status: "PENDING" });
    r.ack("edge-1", "a.test", 10);
    expect(r.status("prg1")?.nodes.every((n) => n.status === "PENDING")).toBe(true);
    expect(r.ackChange("edge-1", "prg1")).toBe(true);
    expect(r.ackChange("res-1", "prg1")).toBe(true);
    expect(r.status("prg1")?.status).toBe("INSYNC");
    expect(r.ackChange("res-1", "nope")).toBe(false);
  });

  it("leases: a node that stops renewing is LOST and no longer holds a change PENDING; renewing makes it live again", () => {
    const clock = new VirtualClock(0);
    const r = new Receipts(clock, 100, 1_000);
    r.register({ id: "edge-1", tier: "edge", address: "a" });
    r.register({ id: "edge-2", tier: "edge", address: "b" });
    r.track({ changeId: "c1", zone: "example.test", serial: 2, ts: 0 });
    clock.advanceSync(600);
    r.ack("edge-2", "example.test", 2); // renews edge-2 at 600
    clock.advanceSync(400);
    expect(r.status("c1")).toMatchObject({ status: "PENDING" }); // edge-1 at exactly its lease
    clock.advanceSync(1);
    expect(r.isLost("edge-1")).toBe(true);
    expect(r.status("c1")).toMatchObject({
      status: "INSYNC",
      convergedAt: 600,
      lost: ["edge-1"],
      nodes: [
        { id: "edge-1", status: "LOST" },
        { id: "edge-2", status: "INSYNC" },
      ],
    });
    expect(r.renew("edge-1")).toBe(true);
    expect(r.status("c1")).toMatchObject({ status: "PENDING", nodes: [{ status: "PENDING" }, {}] });
    expect(r.status("c1")?.lost).toBeUndefined();
    clock.advanceSync(100);
    r.ack("edge-1", "example.test", 2);
    expect(r.status("c1")).toMatchObject({ status: "INSYNC", convergedAt: 1_101 });
    expect(r.renew("nope")).toBe(false);
  });
});
