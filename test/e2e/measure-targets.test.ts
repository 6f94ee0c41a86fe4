/**
 * `propagate measure` and `propagate plan` as users run them, against a
 * topology started like `up --data DIR`: the write token is found through
 * --data, targets come from a file (our origin's DoH, DNS JSON and
 * authoritative DNS, a resolver and an edge's DoH, a bad line) and are
 * measured beside the registered nodes; JSON and the SVG timeline are written.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RealClock } from "../../core/clock.ts";
import { ask, parseTarget, type Target } from "../../infra/targets.ts";
import { node, smallTopology, startTopology } from "./support.ts";

async function run(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, ["bin/propagate.mjs", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout.on("data", (b) => (out += b));
  child.stderr.on("data", (b) => (err += b));
  const killer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const [code] = (await once(child, "exit")) as [number | null];
  clearTimeout(killer);
  return { code, out, err };
}

let t: Awaited<ReturnType<typeof startTopology>>;
let dir: string;
beforeAll(async () => {
  t = await startTopology(
    smallTopology({ defaults: { link: { latency: { kind: "fixed", ms: 5 } } } }),
  );
  dir = await mkdtemp(join(tmpdir(), "propagate-measure-targets-"));
});
afterAll(async () => {
  await t?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("propagate measure --targets, plan (processes)", () => {
  it("measures targets from a file beside the nodes, with the token from --data", async () => {
    const origin = t.nodes.find((n) => n.id === "origin")!;
    const file = join(dir, "targets");
    await writeFile(
      file,
      [
        "# our own servers, seen as any DNS server",
        `origin-doh ${t.originUrl}/dns-query`,
        `origin-json ${t.originUrl}/resolve`,
        `origin-dns dns://${origin.extra.dns}`,
        `res-2 dns://${node(t, "res-2").address}`,
        `edge-1-doh ${node(t, "edge-1").address}/dns-query`,
        "broken dns:/nowhere",
        `not-doh ${t.originUrl}/healthz`,
      ].join("\n"),
    );
    const svg = join(dir, "timeline.svg");
    const { code, out, err } = await run([
      "measure",
      "--origin",
      t.originUrl,
      "--data",
      t.dir,
      "--targets",
      file,
      "--ttl",
      "1",
      "--samples",
      "1",
      "--json",
      "--svg",
      svg,
    ]);
    expect(code, `${out}\n${err}`).toBe(0);
    const report = JSON.parse(out) as {
      series: { nodes: { nodeId: string }[] }[];
      targets: { label: string; error?: string; samples: { kept?: boolean }[] }[];
    };
    expect(report.series[0]!.nodes.map((n) => n.nodeId)).toContain("res-1");
    const by = new Map(report.targets.map((x) => [x.label, x]));
    for (const label of ["origin-doh", "origin-json", "origin-dns", "res-2", "edge-1-doh"]) {
      expect(by.get(label)?.samples[0]?.kept, `${label}: ${JSON.stringify(by.get(label))}`).toBe(
        true,
      );
    }
    expect(by.get("broken")?.error).toContain("is not a target");
    const notDoh = by.get("not-doh") as unknown as { samples: { lastError?: string }[] };
    expect(notDoh.samples[0]?.lastError).toMatch(
      /^the reply is not a DNS message \(content-type application\/json/,
    );
    const chart = await readFile(svg, "utf8");
    expect(chart.startsWith("<svg")).toBe(true);
    for (const label of ["origin-doh", "res-2", "edge-1"]) expect(chart).toContain(`>${label}<`);
    expect(chart).toContain("deadline");
  }, 60_000);

  it("plan prints the TTLs, when a change made now converges, and what to do for a deadline", async () => {
    const name = "_propagate-measure.example.test";
    const { code, out, err } = await run([
      "plan",
      name,
      "TXT",
      "--auth",
      `${t.originUrl}/dns-query`,
      "--auth",
      `dns://${t.nodes.find((n) => n.id === "origin")!.extra.dns}`,
      "--target",
      `res-2=dns://${node(t, "res-2").address}`,
      "--within",
      "60s",
      "--json",
    ]);
    expect(code, `${out}\n${err}`).toBe(0);
    const p = JSON.parse(out) as {
      auth: { exists: boolean; ttl: number; negativeTtl: number; soa: { minimum: number } };
      targets: { label: string; untilMs: number }[];
      advice: string[];
      warnings: string[];
    };
    // Two authoritative views of one zone (DoH and DNS) agree: no warning.
    expect(p.warnings).toEqual([]);
    expect(p.auth).toMatchObject({ exists: true, ttl: 1 });
    expect(p.auth.negativeTtl).toBeLessThanOrEqual(p.auth.soa.minimum);
    expect(p.targets[0]!.untilMs).toBeLessThanOrEqual(2_000);
    expect(p.advice[0]).toMatch(/^change now/);

    const bad = await run(["plan", name]);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("expected NAME TYPE");
    const stray = await run(["measure", "oops"]);
    expect(stray.code).toBe(2);
    expect(stray.err).toContain('unexpected argument "oops"');
  }, 60_000);

  it("asks again over TCP when the UDP answer is truncated (RFC 7766 §5)", async () => {
    // 12 strings of 200 octets: far above the 1232-byte EDNS size we advertise.
    const data = Array.from({ length: 12 }, (_, i) => `${i}`.padEnd(200, "x"));
    const res = await fetch(`${t.originUrl}/v1/zones/example.test/rrsets/big/TXT`, {
      method: "PUT",
      headers: { authorization: `Bearer ${t.token}`, "content-type": "application/json" },
      body: JSON.stringify({ ttl: 60, data }),
    });
    expect(res.status).toBe(200);
    const origin = t.nodes.find((n) => n.id === "origin")!;
    const target = parseTarget(`dns://${origin.extra.dns}`) as Target;
    const a = await ask(target, "big.example.test", "TXT", {
      timeoutMs: 2_000,
      clock: new RealClock(),
    });
    expect(a.ok && a.values.length, JSON.stringify(a)).toBe(12);
  });
});
