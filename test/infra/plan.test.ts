import { describe, expect, it } from "vitest";
import { type Plan, parseDuration, renderPlan } from "../../infra/plan.ts";

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
});
