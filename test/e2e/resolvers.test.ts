/**
 * measure and plan against real resolvers from Debian: unbound, BIND (named,
 * recursive), PowerDNS Recursor and Knot Resolver (kresd). Each is configured
 * here, in a temp dir, on a free loopback port, to send the questions of our
 * test zone to our origin's authoritative DNS (a stub or forward zone). Each
 * runs twice: as configured by default (TTLs honoured) and with a minimum
 * cache TTL above the records' (unbound cache-min-ttl, named min-cache-ttl,
 * pdns minimum-ttl-override, kresd cache.min_ttl), the TTL stretching that
 * measure must flag. TTLs are 1-3 s so the whole file takes seconds.
 */
import { type ChildProcess, spawn } from "node:child_process";
import dgram from "node:dgram";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RealClock, sleep } from "../../core/clock.ts";
import { measure } from "../../infra/measure.ts";
import { plan } from "../../infra/plan.ts";
import { renderTargetTable } from "../../infra/report-targets.ts";
import { ask, parseTarget, type Target } from "../../infra/targets.ts";
import { graceMs } from "../../infra/targets-judge.ts";
import { freePort } from "../support/net.ts";
import { type Running, startOriginProcess } from "../support/process.ts";

const ZONE = "resolvers.test";
/** The zone's SOA: TTL 5, MINIMUM 3, so its negative TTL is 3 s (RFC 2308 §5). */
const NEGATIVE_TTL = 3;
/** The minimum cache TTL of the stretching instances, above every record's TTL. */
const MIN_TTL = 4;
const INTERVAL_MS = 20;
const TOKEN = "resolvers-test-token";

type Kind = "unbound" | "bind" | "pdns" | "kresd";
const KINDS: Kind[] = ["unbound", "bind", "pdns", "kresd"];

interface Resolver {
  label: string;
  target: Target;
  proc: ChildProcess;
  exited: Promise<unknown>;
  output: () => string;
}

/** The config file and command line of one resolver, forwarding ZONE to the origin. */
function configure(
  kind: Kind,
  dir: string,
  port: number,
  origin: { host: string; port: number },
  minTtl: number,
  refuse = false,
  serveStale = false,
) {
  const o = origin;
  switch (kind) {
    case "unbound":
      return {
        file: "unbound.conf",
        text: `server:
  interface: 127.0.0.1
  port: ${port}
  do-ip6: no
  use-syslog: no
  logfile: ""
  username: ""
  chroot: ""
  directory: "${dir}"
  pidfile: "${dir}/unbound.pid"
  access-control: 127.0.0.0/8 ${refuse ? "refuse" : "allow"}
  do-not-query-localhost: no
  module-config: "iterator"
  # RFC 6761 reserves test.; unbound serves it as an empty local zone unless told not to.
  local-zone: "test." nodefault
  domain-insecure: "${ZONE}"
  cache-min-ttl: ${minTtl}
  num-threads: 1
stub-zone:
  name: "${ZONE}"
  stub-addr: ${o.host}@${o.port}
remote-control:
  control-enable: no
`,
        cmd: ["unbound", "-d", "-c", join(dir, "unbound.conf")],
      };
    case "bind":
      return {
        file: "named.conf",
        text: `options {
  directory "${dir}";
  pid-file "${dir}/named.pid";
  listen-on port ${port} { 127.0.0.1; };
  listen-on-v6 { none; };
  recursion yes;
  allow-query { any; };
  allow-recursion { any; };
  dnssec-validation no;
  min-cache-ttl ${minTtl};
  min-ncache-ttl ${minTtl};${
    serveStale
      ? `
  stale-answer-enable yes;
  stale-cache-enable yes;
  stale-answer-client-timeout 0;`
      : ""
  }
};
zone "${ZONE}" { type forward; forward only; forwarders { ${o.host} port ${o.port}; }; };
controls { };
`,
        cmd: ["named", "-g", "-n", "1", "-c", join(dir, "named.conf")],
      };
    case "pdns":
      return {
        file: "recursor.conf",
        text: `local-address=127.0.0.1
local-port=${port}
forward-zones=${ZONE}=${o.host}:${o.port}
dnssec=off
daemon=no
write-pid=no
threads=1
minimum-ttl-override=${minTtl}
security-poll-suffix=
socket-dir=${dir}
`,
        cmd: ["pdns_recursor", `--config-dir=${dir}`, "--disable-syslog"],
      };
    case "kresd":
      return {
        file: "kresd.conf",
        text: `net.ipv6 = false
net.listen('127.0.0.1', ${port}, { kind = 'dns' })
modules.unload('ta_update')
modules.unload('detect_time_jump')
modules.unload('priming')
trust_anchors.remove('.')
cache.size = 10 * MB
cache.min_ttl(${minTtl})
policy.add(policy.suffix(policy.STUB({'${o.host}@${o.port}'}), {todname('${ZONE}.')}))
`,
        cmd: ["kresd", "-n", "-c", join(dir, "kresd.conf"), dir],
      };
  }
}

type StartOptions = { refuse?: boolean; serveStale?: boolean; ready?: RegExp };

/** A daemon that found its port taken between freePort() and its bind (another test's). */
class PortTaken extends Error {}

/**
 * `ready`: what answers once it is up (default: the zone's records, from the
 * origin, through it). A free port can be taken by another process before the
 * daemon binds it (the suite starts many daemons at once): then it starts
 * again on another port, up to three times.
 */
async function startResolver(
  kind: Kind,
  label: string,
  origin: { host: string; port: number },
  minTtl: number,
  dirs: string[],
  opts: StartOptions = {},
): Promise<Resolver> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startResolverOnce(kind, label, origin, minTtl, dirs, opts);
    } catch (err) {
      if (!(err instanceof PortTaken) || attempt === 3) throw err;
    }
  }
}

async function startResolverOnce(
  kind: Kind,
  label: string,
  origin: { host: string; port: number },
  minTtl: number,
  dirs: string[],
  opts: StartOptions,
): Promise<Resolver> {
  const dir = await mkdtemp(join(tmpdir(), `propagate-${label}-`));
  dirs.push(dir);
  const port = await freePort();
  const c = configure(kind, dir, port, origin, minTtl, opts.refuse, opts.serveStale);
  await writeFile(join(dir, c.file), c.text);
  const proc = spawn(c.cmd[0]!, c.cmd.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise((done) => proc.once("exit", done));
  let out = "";
  proc.stdout?.on("data", (b) => (out += b));
  proc.stderr?.on("data", (b) => (out += b));
  const target = parseTarget(`dns://127.0.0.1:${port}`, label) as Target;
  // Ready once it answers a question about the zone (from the origin, through it).
  const clock = new RealClock({ keepAlive: true });
  const until = Date.now() + 20_000;
  for (;;) {
    const a = await ask(target, `ready.${ZONE}`, "TXT", { timeoutMs: 500, clock });
    if (opts.ready ? !a.ok && opts.ready.test(a.error) : a.ok && a.values.length > 0) break;
    if (proc.exitCode !== null || Date.now() > until) {
      proc.kill("SIGKILL");
      const message = `${label} did not answer for ${ZONE} (${a.ok ? a.rcode : a.error}):\n${out}`;
      if (proc.exitCode !== null && /address already in use|address in use|EADDRINUSE/i.test(out))
        throw new PortTaken(message);
      throw new Error(message);
    }
    await sleep(clock, 50);
  }
  return { label, target, proc, exited, output: () => out };
}

let origin: Running;
let originHttp: string;
const plain = new Map<Kind, Resolver>();
const stretching = new Map<Kind, Resolver>();
/** unbound refusing every client, and a pdns_recursor whose forwarder is a closed port. */
const broken = new Map<"refusing" | "failing", Resolver>();
/** named with serve-stale on (RFC 8767; stale-answer-client-timeout 0 answers stale at once). */
let staleBind: Resolver;
const dirs: string[] = [];

async function put(name: string, ttl: number, value: string) {
  const res = await fetch(`${originHttp}/v1/zones/${ZONE}/rrsets/${name}/TXT`, {
    method: "PUT",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ ttl, data: [value] }),
  });
  expect(res.status).toBe(200);
}

beforeAll(async () => {
  const dataDir = await mkdtemp(join(tmpdir(), "propagate-resolvers-origin-"));
  dirs.push(dataDir);
  origin = await startOriginProcess(dataDir, TOKEN);
  originHttp = origin.ready.http!;
  const res = await fetch(`${originHttp}/v1/zones/${ZONE}`, {
    method: "PUT",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({
      ttl: 5,
      soa: { minimum: NEGATIVE_TTL },
      rrsets: [{ name: "ready", type: "TXT", ttl: 60, data: ["up"] }],
    }),
  });
  expect(res.status).toBe(201);
  const [host, port] = origin.ready.dns!.split(":");
  const dns = { host: host!, port: Number(port) };
  // Every start settles before beforeAll ends, failed or not: a start still
  // running when another failed would leave its daemon behind afterAll.
  const starts = await Promise.allSettled([
    ...KINDS.flatMap((k) => [
      startResolver(k, k, dns, 0, dirs).then((r) => plain.set(k, r)),
      startResolver(k, `${k}-min-ttl`, dns, MIN_TTL, dirs).then((r) => stretching.set(k, r)),
    ]),
    startResolver("bind", "bind-serve-stale", dns, 0, dirs, { serveStale: true }).then((r) => {
      staleBind = r;
    }),
    startResolver("unbound", "refusing", dns, 0, dirs, { refuse: true, ready: /REFUSED/ }).then(
      (r) => broken.set("refusing", r),
    ),
    freePort().then((closed) =>
      startResolver("pdns", "failing", { host: "127.0.0.1", port: closed }, 0, dirs, {
        ready: /SERVFAIL/,
      }).then((r) => broken.set("failing", r)),
    ),
  ]);
  const failed = starts.find((r) => r.status === "rejected");
  if (failed) throw failed.reason;
}, 60_000);

afterAll(async () => {
  for (const r of [...plain.values(), ...stretching.values(), ...broken.values(), staleBind]) {
    if (!r) continue;
    r.proc.kill("SIGTERM");
    // A server that ignores SIGTERM for 5 s is killed: no resolver outlives the test.
    const killer = setTimeout(() => r.proc.kill("SIGKILL"), 5_000);
    await r.exited;
    clearTimeout(killer);
  }
  await origin?.stop();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const base = () => ({
  originUrl: originHttp,
  token: TOKEN,
  zone: ZONE,
  intervalMs: INTERVAL_MS,
  timeoutMs: 20_000,
  nodes: false,
});

describe.concurrent("measure and plan through real resolvers", () => {
  it("a change is fresh at every resolver within the deadline stated from what it held", async () => {
    await put("change", 1, "before");
    const targets = [...plain.values()].map((r) => r.target);
    const progress: { samples: number; followed: number; total: number }[] = [];
    const m = await measure({
      ...base(),
      label: "change",
      ttl: 1,
      samples: 2,
      targets,
      onProgress: (p) => progress.push(p),
    });
    // One step per target and sample (the progress bar), then one per sample.
    expect(progress.at(-1)).toEqual({ samples: 2, followed: 8, total: 8 });
    expect(progress.filter((p) => p.followed === 4).at(-1)).toEqual({
      samples: 1,
      followed: 4,
      total: 8,
    });
    for (const t of m.targets) {
      expect(t.samples, t.label).toHaveLength(2);
      for (const s of t.samples) {
        const why = `${t.label}: ${JSON.stringify(s)}`;
        expect(s.cause, why).toBe("ttl");
        expect(s.before.ok && s.before.ttl, why).toBeLessThanOrEqual(1);
        expect(s.deadlineMs, why).toBeLessThanOrEqual(1_000);
        expect(s.freshMs, why).toBeDefined();
        expect(s.freshMs!, why).toBeLessThanOrEqual(s.deadlineMs! + graceMs(INTERVAL_MS));
        expect(s.kept, why).toBe(true);
        expect(s.flags, why).toEqual([]);
      }
    }
  }, 30_000);

  it("the negative-cache trap: plan warns of it, measure shows NXDOMAIN served until the SOA's negative TTL", async () => {
    const targets = [...plain.values()].map((r) => r.target);
    // A client asks for the name before it exists: every resolver caches NXDOMAIN.
    for (const t of targets) {
      const a = await ask(t, `trap.${ZONE}`, "TXT", { timeoutMs: 2_000, clock: new RealClock() });
      expect(a.ok && a.rcode, t.label).toBe("NXDOMAIN");
    }
    const auth = parseTarget(`${originHttp}/dns-query`, "origin") as Target;
    const p = await plan({ name: `trap.${ZONE}`, type: "TXT", auth, targets, withinMs: 60_000 });
    expect(p.auth.exists).toBe(false);
    expect(p.auth.negativeTtl).toBe(NEGATIVE_TTL);
    expect(p.auth.soa).toMatchObject({ zone: ZONE, ttl: 5, minimum: NEGATIVE_TTL });
    for (const t of targets) {
      expect(p.warnings.join("\n")).toContain(
        `${t.label} already caches NXDOMAIN for trap.${ZONE}`,
      );
    }

    const m = await measure({ ...base(), label: "trap", ttl: 1, samples: 1, targets });
    for (const t of m.targets) {
      const s = t.samples[0]!;
      const why = `${t.label}: ${JSON.stringify(s)}`;
      expect(s.before.ok && s.before.rcode, why).toBe("NXDOMAIN");
      expect(s.cause, why).toBe("negative-cache");
      expect(s.deadlineFrom, why).toContain(`MINIMUM ${NEGATIVE_TTL}`);
      expect(s.deadlineMs!, why).toBeLessThanOrEqual(NEGATIVE_TTL * 1000);
      if (t.label === "kresd") {
        // kresd keeps an insecure NXDOMAIN for less than the SOA allows (and
        // reports the SOA's TTL without counting it down): it is fresh early.
        expect(s.freshMs!, why).toBeLessThan(s.deadlineMs!);
      } else {
        // NXDOMAIN after the name was created, and fresh only around the deadline.
        expect(s.staleSeen, why).toBeGreaterThan(0);
        // TTLs are whole seconds, rounded either way by the resolvers: 1 s each side.
        expect(s.freshMs!, why).toBeGreaterThan(s.deadlineMs! - 1_000 - 2 * INTERVAL_MS - 100);
      }
      expect(s.kept, why).toBe(true);
    }
    const table = renderTargetTable(m);
    expect(table).toContain("negative cache (RFC 2308)");
    for (const t of targets.filter((x) => x.label !== "kresd")) {
      expect(table).toContain(`${t.label} served the negative answer`);
    }
  }, 30_000);

  it("a resolver with a minimum cache TTL is flagged as stretching; its deadline comes from what it served", async () => {
    await put("stretch", 1, "before");
    const targets = [...stretching.values()].map((r) => r.target);
    // Each resolver takes the record in (with its stretched TTL) before the change.
    for (const t of targets)
      await ask(t, `stretch.${ZONE}`, "TXT", { timeoutMs: 2_000, clock: new RealClock() });
    const m = await measure({ ...base(), label: "stretch", ttl: 1, samples: 1, targets });
    expect(m.auth[0]).toMatchObject({ before: 1, after: 1 });
    for (const t of m.targets) {
      const s = t.samples[0]!;
      const why = `${t.label}: ${JSON.stringify(s)}`;
      const kinds = s.flags.map((f) => f.kind);
      if (t.label === "kresd-min-ttl") {
        // kresd stores the answer for cache.min_ttl but tells its clients the
        // record's own TTL, counted down to 0: what it served sets a 1 s
        // deadline, and it serves the old answer past it (serve-stale); the
        // new answer then comes with the stretched TTL.
        expect(s.before.ok && s.before.ttl, why).toBeLessThanOrEqual(1);
        expect(kinds, why).toEqual(["ttl-stretching", "serve-stale"]);
        expect(s.flags[1]!.evidence, why).toMatch(/past its deadline/);
        expect(s.kept, why).toBe(false);
      } else {
        expect(s.before.ok && s.before.ttl, why).toBeGreaterThan(1);
        expect(kinds, why).toEqual(["ttl-stretching"]);
        expect(s.flags[0]!.evidence, why).toContain("the authoritative TTL is 1 s");
        // The deadline is what it announced (up to MIN_TTL s), not the zone's 1 s, and it kept it.
        expect(s.deadlineMs!, why).toBeGreaterThan(1_000);
        expect(s.kept, why).toBe(true);
      }
      expect(s.freshMs, why).toBeDefined();
    }
    const table = renderTargetTable(m);
    for (const t of targets)
      expect(table, table).toContain(`  ${t.label}: ttl-stretching: answered`);
  }, 30_000);

  it("bad targets are reported each with its reason; the others are still measured", async () => {
    await put("bad", 1, "before");
    // A server that never answers: a bound UDP socket that reads nothing.
    const silent = dgram.createSocket("udp4");
    await new Promise<void>((r) => silent.bind(0, "127.0.0.1", () => r()));
    const closed = await freePort();
    const targets = [
      plain.get("unbound")!.target,
      broken.get("refusing")!.target,
      broken.get("failing")!.target,
      parseTarget(`silent=dns://127.0.0.1:${silent.address().port}`),
      parseTarget(`closed=dns://127.0.0.1:${closed}`),
      parseTarget(`closed-doh=http://127.0.0.1:${closed}/dns-query`),
      parseTarget("typo=dns:/127.0.0.1:53"),
      parseTarget("ftp://127.0.0.1/"),
    ];
    try {
      const m = await measure({
        ...base(),
        label: "bad",
        ttl: 1,
        samples: 1,
        targets,
        askTimeoutMs: 300,
      });
      const by = new Map(m.targets.map((t) => [t.label, t]));
      const good = by.get("unbound")!.samples[0]!;
      expect(good.kept, JSON.stringify(good)).toBe(true);
      const reasons: [string, RegExp][] = [
        ["refusing", /^REFUSED \(rcode 5\)$/],
        ["failing", /^SERVFAIL \(rcode 2\)$/],
        ["silent", /^timeout: no reply within 300 ms$/],
        ["closed", /ECONNREFUSED/],
        ["closed-doh", /ECONNREFUSED/],
      ];
      for (const [label, reason] of reasons) {
        const s = by.get(label)!.samples[0]!;
        expect(s.lastError, label).toMatch(reason);
        expect(s.freshMs, label).toBeUndefined();
        expect(s.kept, label).toBeUndefined();
      }
      expect(by.get("typo")!.error).toMatch(/"dns:\/127.0.0.1:53" is not a target/);
      expect(by.get("ftp://127.0.0.1/")!.error).toMatch(/unknown scheme "ftp:"/);
      const table = renderTargetTable(m);
      expect(table).toMatch(/errors:\n(.*\n){6}/);
      expect(table).toMatch(/refusing: \d+ question\(s\) got no answer; last: REFUSED/);
    } finally {
      silent.close();
    }
  }, 30_000);

  it("--watch follows a change another client makes at the origin", async () => {
    await put("watch", 1, "before");
    const targets = [...plain.values()].map((r) => r.target);
    for (const t of targets)
      await ask(t, `watch.${ZONE}`, "TXT", { timeoutMs: 2_000, clock: new RealClock() });
    let changed: Promise<void> | undefined;
    const m = await measure({
      ...base(),
      token: undefined,
      label: "",
      ttl: 1,
      samples: 1,
      targets,
      watch: { name: `watch.${ZONE}`, type: "TXT", expect: ["after"] },
      auth: parseTarget(`dns://${origin.ready.dns}`, "origin-dns") as Target,
      // Another client changes the record once measure has asked every target.
      onWatching: () => {
        changed = put("watch", 1, "after");
      },
    });
    await changed;
    expect(m.notes).toEqual([]);
    expect(m.name).toBe(`watch.${ZONE}`);
    for (const t of m.targets) {
      const s = t.samples[0]!;
      const why = `${t.label}: ${JSON.stringify(s)}`;
      expect(s.before.ok && s.before.values, why).toEqual(['"before"']);
      expect(s.cause, why).toBe("ttl");
      expect(s.freshMs, why).toBeDefined();
      expect(s.kept, why).toBe(true);
    }
  }, 30_000);

  it("--expect-from takes the new value from the authoritative, already changed before measure started", async () => {
    await put("expect-from", 1, "v1");
    const targets = [...plain.values()].map((r) => r.target);
    for (const t of targets) {
      await ask(t, `expect-from.${ZONE}`, "TXT", { timeoutMs: 2_000, clock: new RealClock() });
    }
    await put("expect-from", 1, "v2");
    const originDns = parseTarget(`dns://${origin.ready.dns}`, "origin-dns") as Target;
    const m = await measure({
      ...base(),
      token: undefined,
      label: "",
      ttl: 1,
      samples: 1,
      targets,
      watch: { name: `expect-from.${ZONE}`, type: "TXT", expectFrom: originDns },
    });
    expect(m.notes).toEqual([
      "the authoritative origin-dns served the new value before measure started; times are from the start",
    ]);
    for (const t of m.targets) {
      const s = t.samples[0]!;
      expect(s.freshMs, `${t.label}: ${JSON.stringify(s)}`).toBeDefined();
      expect(s.kept, `${t.label}: ${JSON.stringify(s)}`).toBe(true);
    }
  }, 30_000);

  it("watching with an authoritative that does not answer ends once every target is done", async () => {
    await put("no-auth", 1, "here");
    const targets = [...plain.values()].map((r) => r.target);
    const closed = await freePort();
    const m = await measure({
      ...base(),
      token: undefined,
      label: "",
      ttl: 1,
      samples: 1,
      targets,
      timeoutMs: 600_000,
      watch: { name: `no-auth.${ZONE}`, type: "TXT", expect: ["here"] },
      auth: parseTarget(`dns://127.0.0.1:${closed}`, "down") as Target,
    });
    expect(m.notes).toEqual([
      'the authoritative down did not serve "here" while the targets were followed; times are from the start',
    ]);
    for (const t of m.targets) expect(t.samples[0]!.freshMs, t.label).toBeDefined();
  }, 30_000);

  it("a resolver serving stale answers (named stale-answer-enable) is flagged serve-stale, with the answer", async () => {
    await put("stale", 1, "before");
    const target = staleBind.target;
    await ask(target, `stale.${ZONE}`, "TXT", { timeoutMs: 2_000, clock: new RealClock() });
    const m = await measure({ ...base(), label: "stale", ttl: 1, samples: 1, targets: [target] });
    const s = m.targets[0]!.samples[0]!;
    const why = JSON.stringify(s);
    // At expiry it answers the old value again with the RFC 8767 stale TTL (30 s), then refreshes.
    expect(
      s.flags.map((f) => f.kind),
      why,
    ).toEqual(["serve-stale"]);
    expect(s.flags[0]!.evidence, why).toMatch(
      /\(TTL 30 s\) at \+[\d.]+ s, .*an expired answer served again/,
    );
    expect(s.freshMs, why).toBeDefined();
  }, 30_000);
});
