import { describe, expect, it } from "vitest";
import {
  type Plan,
  type PlanInput,
  parseDuration,
  planFrom,
  renderPlan,
} from "../../infra/plan.ts";
import type { Observation } from "../../infra/targets.ts";

const NOW = Date.parse("2026-01-01T00:00:00Z");
const SOA = { zone: "example.test", ttl: 3600, minimum: 60 };
const a = (ttl: number, at = NOW): Observation & { ok: true } => ({
  ok: true,
  at,
  rcode: "NOERROR",
  values: ["192.0.2.1"],
  ttl,
});
const nx = (negativeTtl: number, at = NOW): Observation & { ok: true } => ({
  ok: true,
  at,
  rcode: "NXDOMAIN",
  values: [],
  negativeTtl,
  soa: { ...SOA, ttl: negativeTtl },
});
const input = (o: Partial<PlanInput>): PlanInput => ({
  name: "www.example.test",
  type: "A",
  now: NOW,
  auth: { label: "origin", answer: a(300), soa: SOA },
  targets: [],
  ...o,
});

describe("plan", () => {
  it("reads deadlines in s (default), ms, m and h, and names the flag otherwise", () => {
    expect(parseDuration("60s", "within")).toBe(60_000);
    expect(parseDuration("90", "within")).toBe(90_000);
    expect(parseDuration("500ms", "within")).toBe(500);
    expect(parseDuration("5m", "within")).toBe(300_000);
    expect(parseDuration("1h", "within")).toBe(3_600_000);
    expect(() => parseDuration("soon", "within")).toThrow(/--within expects a duration/);
  });

  it("prints the TTLs, each target, the convergence, warnings and what to do", () => {
    const p: Plan = {
      name: "new.example.test",
      type: "TXT",
      now: Date.parse("2026-01-01T00:00:00Z"),
      auth: {
        label: "dns://127.0.0.1:1054",
        answer: {
          ok: true,
          at: 0,
          rcode: "NXDOMAIN",
          values: [],
          negativeTtl: 60,
        },
        exists: false,
        negativeTtl: 60,
        soa: { zone: "example.test", ttl: 3600, minimum: 60 },
      },
      targets: [
        {
          label: "unbound",
          url: "dns://127.0.0.1:5301",
          held: { ok: true, at: 0, rcode: "NXDOMAIN", values: [], negativeTtl: 42 },
          untilMs: 42_000,
          negativeCached: true,
        },
        { label: "down", url: "dns://127.0.0.1:9", error: "timeout", negativeCached: false },
      ],
      convergedByMs: 42_000,
      worstCaseMs: 60_000,
      warnings: ["unbound already caches NXDOMAIN"],
      advice: ["lower the SOA MINIMUM"],
    };
    const text = renderPlan(p);
    expect(text).toContain(
      "authoritative (dns://127.0.0.1:1054): NXDOMAIN, negative TTL 60 s (SOA)",
    );
    expect(text).toContain(
      "negative TTL: 60 s = min(SOA TTL 3600, SOA MINIMUM 60) of example.test",
    );
    expect(text).toMatch(
      /unbound\s+NXDOMAIN, negative TTL 42 s \(SOA\)\s+2026-01-01T00:00:42.000Z \(\+42 s\)/,
    );
    expect(text).toMatch(/down\s+error: timeout\s+-/);
    expect(text).toContain("every target asked serves it by 2026-01-01T00:00:42.000Z (+42 s)");
    expect(text).toContain("warning: unbound already caches NXDOMAIN");
    expect(text).toContain("to do: lower the SOA MINIMUM");
  });

  it("change now when what every target holds, and the TTL, fit the deadline", () => {
    const p = planFrom(
      input({
        auth: { label: "origin", answer: a(30), soa: SOA },
        targets: [{ label: "r1", url: "dns://r1", held: a(12) }],
        withinMs: 60_000,
      }),
    );
    expect(p.convergedByMs).toBe(12_000);
    expect(p.worstCaseMs).toBe(30_000);
    expect(p.auth).toMatchObject({ exists: true, ttl: 30, negativeTtl: 60 });
    expect(p.advice).toEqual([
      "change now: every target asked serves it by 2026-01-01T00:00:12.000Z (+12 s), any cache by 2026-01-01T00:00:30.000Z (+30 s), within 60 s",
    ]);
    expect(p.warnings).toEqual([]);
  });

  it("lower the TTL to half the deadline now, wait until the old TTL drained, then change", () => {
    const p = planFrom(
      input({
        targets: [
          { label: "r1", url: "dns://r1", held: a(250) },
          { label: "r2", url: "dns://r2", held: { ok: false, at: NOW, error: "timeout" } },
        ],
        withinMs: 60_000,
      }),
    );
    expect(p.advice[0]).toBe(
      "lower the TTL to 30 s now, wait until 2026-01-01T00:05:00.000Z (+300 s) (the old TTL of 300 s has drained everywhere), then change: every cache that honours TTLs then serves it within 30 s of the change",
    );
    expect(p.advice[1]).toContain("r1 cannot meet 60 s for a change made now");
    expect(p.warnings).toEqual(["r2: not asked or no answer: timeout"]);
  });

  it("warns of a target holding the answer longer than the authoritative TTL", () => {
    const p = planFrom(input({ targets: [{ label: "r1", url: "dns://r1", held: a(900) }] }));
    expect(p.warnings).toEqual([
      "r1 holds it for 900 s, above the authoritative TTL of 300 s: it stretches TTLs, and lowering the TTL does not shorten what it holds now",
    ]);
  });

  it("a name that does not exist yet: warns of every target caching NXDOMAIN, says to lower the SOA MINIMUM", () => {
    const p = planFrom(
      input({
        name: "new.example.test",
        auth: { label: "origin", answer: nx(60), soa: SOA },
        targets: [
          { label: "r1", url: "dns://r1", held: nx(41) },
          { label: "r2", url: "dns://r2", held: nx(60) },
        ],
        withinMs: 30_000,
      }),
    );
    expect(p.auth.exists).toBe(false);
    expect(p.convergedByMs).toBe(60_000);
    expect(p.warnings).toEqual([
      "r1 already caches NXDOMAIN for new.example.test: created now, it keeps answering NXDOMAIN until 2026-01-01T00:00:41.000Z (+41 s), RFC 2308 negative caching",
      "r2 already caches NXDOMAIN for new.example.test: created now, it keeps answering NXDOMAIN until 2026-01-01T00:01:00.000Z (+60 s), RFC 2308 negative caching (perhaps cached by this very question: plan asks too)",
    ]);
    expect(p.advice[0]).toContain(
      "lower the SOA MINIMUM (or the SOA TTL) of example.test to 15 s now, wait until 2026-01-01T00:01:00.000Z (+60 s), ask nothing about the name before creating it",
    );
  });

  it("warns when the authoritative servers disagree, or one does not answer", () => {
    const p = planFrom(
      input({
        auth: {
          label: "primary",
          answer: a(300),
          soa: SOA,
          others: [
            { label: "secondary-1", answer: a(300) },
            { label: "secondary-2", answer: { ...a(60), values: ["192.0.2.9"] } },
            { label: "secondary-3", answer: { ok: false, at: NOW, error: "REFUSED (rcode 5)" } },
          ],
        },
      }),
    );
    expect(p.warnings).toEqual([
      "authoritative secondary-2 answers 192.0.2.9 TTL 60 s but primary answers 192.0.2.1 TTL 300 s: the authoritative servers disagree (a change still travelling to a secondary?); caches may take either",
      "authoritative secondary-3: no answer: REFUSED (rcode 5)",
    ]);
    expect(p.auth.others).toHaveLength(3);
  });
});
