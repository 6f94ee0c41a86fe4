import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  describeObservation,
  normaliseValue,
  type Observation,
  parseTarget,
  readTargetsFile,
} from "../../infra/targets.ts";
import { graceMs, judge } from "../../infra/targets-judge.ts";

describe("parseTarget", () => {
  it("knows DNS, DoH and DNS JSON targets, with or without a label", () => {
    expect(parseTarget("dns://127.0.0.1:5300")).toEqual({
      label: "127.0.0.1:5300",
      kind: "dns",
      url: "dns://127.0.0.1:5300",
      host: "127.0.0.1",
      port: 5300,
    });
    expect(parseTarget("dns://[::1]")).toMatchObject({ host: "::1", port: 53 });
    expect(parseTarget("quad9=https://dns.quad9.net/dns-query")).toMatchObject({
      label: "quad9",
      kind: "doh",
      port: 443,
    });
    expect(parseTarget("http://127.0.0.1:8053/resolve")).toMatchObject({
      kind: "json",
      port: 8053,
    });
    expect(parseTarget("https://dns.google/resolve", "google")).toMatchObject({
      label: "google",
      kind: "json",
    });
  });

  it("turns a malformed target into a reason, not a throw", () => {
    expect(parseTarget("dns:/127.0.0.1")).toMatchObject({
      error: expect.stringContaining('"dns:/127.0.0.1" is not a target'),
    });
    expect(parseTarget("dns://127.0.0.1:99999")).toMatchObject({
      error: expect.stringContaining("dns://HOST:PORT"),
    });
    expect(parseTarget("ftp://x")).toMatchObject({
      error: expect.stringContaining('unknown scheme "ftp:"'),
    });
    expect(parseTarget("not a url")).toMatchObject({ error: expect.stringContaining("not a URL") });
  });

  it("reads a targets file: LABEL URL or URL per line, comments, bad lines kept as errors", async () => {
    const dir = await mkdtemp(join(tmpdir(), "propagate-targets-"));
    const file = join(dir, "targets");
    try {
      await writeFile(
        file,
        "# resolvers\nlocal dns://127.0.0.1:5300\n\nhttps://dns.example/dns-query  # DoH\none two three\nx ftp://y\n",
      );
      const list = await readTargetsFile(file);
      expect(list.map((t) => t.label)).toEqual([
        "local",
        "https://dns.example/dns-query",
        `${file}:5`,
        "x",
      ]);
      expect(list[2]).toMatchObject({ error: expect.stringContaining("line 5") });
      expect(list[3]).toMatchObject({ error: expect.stringContaining("unknown scheme") });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("compares values in one form: TXT quoted, names absolute and lower-case", () => {
    expect(normaliseValue("TXT", "hello")).toBe('"hello"');
    expect(normaliseValue("TXT", '"hello"')).toBe('"hello"');
    expect(normaliseValue("CNAME", "WWW.Example.test")).toBe("www.example.test.");
    expect(normaliseValue("AAAA", "2001:DB8::1")).toBe("2001:db8::1");
  });
});

const old = (at: number, ttl: number): Observation => ({
  ok: true,
  at,
  rcode: "NOERROR",
  values: ['"old"'],
  ttl,
});
const fresh = (at: number, ttl = 1): Observation => ({
  ok: true,
  at,
  rcode: "NOERROR",
  values: ['"new"'],
  ttl,
});
const nx = (at: number, negativeTtl: number): Observation => ({
  ok: true,
  at,
  rcode: "NXDOMAIN",
  values: [],
  negativeTtl,
  soa: { zone: "example.test", ttl: 60, minimum: negativeTtl },
});
const isFresh = (o: Observation) => o.ok && o.values.includes('"new"');
const T0 = 1_000_000;

describe("judge: a target's deadline and verdict", () => {
  it("takes the deadline from the TTL it served before the change, and keeps it", () => {
    const s = judge({
      t0: T0,
      before: old(T0 - 100, 3),
      seen: [old(T0 + 1_000, 2), old(T0 + 2_800, 0), fresh(T0 + 2_950)],
      isFresh,
      auth: { before: 3, after: 1 },
      intervalMs: 20,
    });
    expect(s).toMatchObject({
      deadlineMs: 2_900,
      cause: "ttl",
      freshMs: 2_950,
      staleSeen: 2,
      staleAfterDeadline: 0,
      kept: true,
      flags: [],
      errors: 0,
    });
    expect(s.before.at).toBe(-100);
  });

  it("a negative answer sets the deadline from the SOA and names the cause", () => {
    const s = judge({
      t0: T0,
      before: nx(T0 - 10, 3),
      seen: [nx(T0 + 1_000, 2), fresh(T0 + 3_000)],
      isFresh,
      auth: { after: 1, negative: 3 },
      intervalMs: 20,
    });
    expect(s).toMatchObject({ cause: "negative-cache", deadlineMs: 2_990, kept: true });
    expect(s.deadlineFrom).toContain(
      "NXDOMAIN (negative TTL 3 s; SOA of example.test: TTL 60, MINIMUM 3)",
    );
  });

  it("flags TTL stretching (above the authoritative TTL) with the evidence, deadline from what it served", () => {
    const s = judge({
      t0: T0,
      before: old(T0 - 5, 10),
      seen: [fresh(T0 + 10_000, 10)],
      isFresh,
      auth: { before: 1, after: 1 },
      intervalMs: 20,
    });
    expect(s.deadlineMs).toBe(9_995);
    expect(s.kept).toBe(true);
    expect(s.flags).toEqual([
      {
        kind: "ttl-stretching",
        evidence: 'answered "old" (TTL 10 s) at -0.0 s; the authoritative TTL is 1 s',
      },
    ]);
  });

  it("flags serve-stale: old answers past the deadline plus grace, and the deadline broken", () => {
    const late = T0 + 1_000 + graceMs(20) + 1;
    const s = judge({
      t0: T0,
      before: old(T0, 1),
      seen: [old(late, 0), old(late + 500, 0)],
      isFresh,
      auth: { before: 1 },
      intervalMs: 20,
    });
    expect(s.kept).toBe(false);
    expect(s.freshMs).toBeUndefined();
    expect(s.staleAfterDeadline).toBe(2);
    expect(s.flags[0]).toMatchObject({ kind: "serve-stale" });
    expect(s.flags[0]!.evidence).toContain("past its deadline (+1.0 s); 2 such answer(s)");
  });

  it("an expired answer served again at the deadline with a new TTL is serve-stale, not stretching", () => {
    const s = judge({
      t0: T0,
      before: old(T0, 1),
      seen: [old(T0 + 1_010, 30), fresh(T0 + 1_050)],
      isFresh,
      auth: { before: 1, after: 1 },
      intervalMs: 20,
    });
    expect(s.kept).toBe(true);
    expect(s.staleAfterDeadline).toBe(0);
    expect(s.flags).toEqual([
      {
        kind: "serve-stale",
        evidence:
          'answered "old" (TTL 30 s) at +1.0 s, at its deadline (+1.0 s) with a new lifetime: an expired answer served again',
      },
    ]);
  });

  it("counts errors and knows no deadline when nothing answered before the change", () => {
    const err: Observation = { ok: false, at: T0 - 1, error: "REFUSED (rcode 5)" };
    const s = judge({
      t0: T0,
      before: err,
      seen: [{ ...err, at: T0 + 100 }],
      isFresh,
      auth: {},
      intervalMs: 20,
    });
    expect(s).toMatchObject({ errors: 2, lastError: "REFUSED (rcode 5)", cause: "unknown" });
    expect(s.deadlineMs).toBeUndefined();
    expect(s.kept).toBeUndefined();
    expect(describeObservation(err)).toBe("error: REFUSED (rcode 5)");
  });

  it("a target already serving the new value is fresh at 0", () => {
    const s = judge({
      t0: T0,
      before: fresh(T0 - 50),
      seen: [],
      isFresh,
      auth: {},
      intervalMs: 20,
    });
    expect(s).toMatchObject({ cause: "already-fresh", freshMs: 0, kept: true, staleSeen: 0 });
  });
});
