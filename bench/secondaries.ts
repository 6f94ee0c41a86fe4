/**
 * NOTIFY -> the secondary serves the new serial: how long real secondaries
 * take to follow the origin, next to a Knot primary -> Knot secondary pair
 * measured the same way on the same machine.
 *
 *   npx tsx bench/secondaries.ts [changes=50]
 *
 * The origin (in process) has knotd, named and nsd as secondaries of s.test
 * (TSIG, NOTIFY + IXFR). Each change is a PUT; t0 is when its 200 arrives
 * (the NOTIFYs leave at commit, just before), and each secondary's time is
 * when a UDP SOA query to it, repeated every 2 ms, first shows the new serial.
 * For Knot -> Knot, t0 is when `knotc zone-commit` returns. Changes run one at
 * a time (the next once every secondary has the previous one).
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { parseTsigKeys, type TsigKey } from "../core/tsig.ts";
import { startOrigin } from "../origin/server.ts";
import { type Daemon, freePort, soaSerial, startDaemon } from "../test/support/dns-daemons.ts";
import { bindSecondary, knotSecondary, nsdSecondary } from "../test/support/secondary-configs.ts";
import { machine } from "./support.ts";

const run = promisify(execFile);
const changes = Number(process.argv[2] ?? 50);
const TOKEN = "bench-secondaries-token";

const zoneFile = [
  "$ORIGIN s.test.",
  "$TTL 300",
  "@ IN SOA ns.s.test. host.s.test. 1 3600 60 600 60",
  "@ IN NS ns",
  "ns IN A 192.0.2.53",
  "",
].join("\n");

/** Polls the SOA every 2 ms until it shows `serial`; the elapsed ms since t0. */
async function servedAfter(port: number, serial: number, t0: number): Promise<number> {
  const deadline = t0 + 30_000;
  while ((await soaSerial(port, "s.test")) !== serial) {
    if (performance.now() > deadline) throw new Error(`port ${port} never served serial ${serial}`);
    await new Promise((r) => setTimeout(r, 2));
  }
  return performance.now() - t0;
}

function summary(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  const median = s[Math.floor(s.length / 2)]!;
  return `median ${median.toFixed(1)} ms, p90 ${s[Math.floor(s.length * 0.9)]!.toFixed(1)} ms, max ${s.at(-1)!.toFixed(1)} ms`;
}

async function originToSecondaries(dir: string, key: TsigKey): Promise<Record<string, number[]>> {
  const origin = await startOrigin(
    {
      http: { host: "127.0.0.1", port: 0 },
      dns: { host: "127.0.0.1", port: 0 },
      dataDir: join(dir, "origin"),
      token: TOKEN,
      tsigKeys: join(dir, "keys.conf"),
      allowTransfer: { "*": [`key:${key.name}`] },
    },
    { log: () => {} },
  );
  const api = (method: string, path: string, body: string, type: string) =>
    fetch(`${origin.httpUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": type },
      body,
    });
  await api("PUT", "/v1/zones/s.test", zoneFile, "text/dns");
  const op = origin.dns.port;
  const daemons: Daemon[] = await Promise.all([
    startDaemon("knot", (d, p) => knotSecondary(d, p, op, key, [{ zone: "s.test" }])),
    startDaemon("bind", (d, p) => bindSecondary(d, p, op, key, ["s.test"])),
    startDaemon("nsd", (d, p) => nsdSecondary(d, p, op, key, ["s.test"])),
  ]);
  try {
    for (const d of daemons)
      origin.secondaries.add({
        id: d.kind,
        dns: `127.0.0.1:${d.port}`,
        zones: ["s.test"],
        key: key.name,
      });
    for (const d of daemons) await servedAfter(d.port, 1, performance.now());
    const times: Record<string, number[]> = { knot: [], bind: [], nsd: [] };
    for (let i = 0; i < changes; i++) {
      const res = await api(
        "PUT",
        "/v1/zones/s.test/rrsets/www/TXT",
        JSON.stringify({ data: [[`change ${i}`]] }),
        "application/json",
      );
      const t0 = performance.now();
      const { serial } = (await res.json()) as { serial: number };
      const got = await Promise.all(daemons.map((d) => servedAfter(d.port, serial, t0)));
      for (const [j, d] of daemons.entries()) times[d.kind]!.push(got[j]!);
    }
    return times;
  } finally {
    await Promise.all(daemons.map((d) => d.stop()));
    await origin.close();
  }
}

async function knotToKnot(key: TsigKey): Promise<number[]> {
  const primaryPort = await freePort();
  const secondary = await startDaemon("knot", (d, p) =>
    knotSecondary(d, p, primaryPort, key, [{ zone: "s.test" }]),
  );
  let conf = "";
  const primary = await startDaemon(
    "knot",
    async (d, p) => {
      await writeFile(join(d, "s.test.zone"), zoneFile);
      conf = join(d, "knot.conf");
      return `server:
  rundir: "${d}"
  listen: 127.0.0.1@${p}
log:
  - target: stderr
    any: warning
database:
  storage: "${d}"
key:
  - id: ${key.name}
    algorithm: ${key.algorithm}
    secret: ${key.secret.toString("base64")}
remote:
  - id: secondary
    address: 127.0.0.1@${secondary.port}
    key: ${key.name}
acl:
  - id: xfr
    address: 127.0.0.1
    key: ${key.name}
    action: transfer
zone:
  - domain: s.test
    storage: "${d}"
    file: s.test.zone
    zonefile-sync: -1
    notify: secondary
    acl: xfr
`;
    },
    primaryPort,
  );
  try {
    await servedAfter(secondary.port, 1, performance.now());
    const times: number[] = [];
    for (let i = 0; i < changes; i++) {
      const knotc = (...args: string[]) => run("knotc", ["-c", conf, ...args]);
      await knotc("zone-begin", "s.test");
      await knotc("zone-set", "s.test", "www", "300", "TXT", `"change ${i}"`);
      await knotc("zone-commit", "s.test");
      const t0 = performance.now();
      const serial = (await soaSerial(primary.port, "s.test"))!;
      times.push(await servedAfter(secondary.port, serial, t0));
    }
    return times;
  } finally {
    await primary.stop();
    await secondary.stop();
  }
}

const dir = await mkdtemp(join(tmpdir(), "propagate-bench-secondaries-"));
try {
  const keyText = (await run("tsig-keygen", ["-a", "hmac-sha256", "bench-key"])).stdout;
  await writeFile(join(dir, "keys.conf"), keyText);
  const key = parseTsigKeys(keyText)[0]!;
  const ours = await originToSecondaries(dir, key);
  const knot = await knotToKnot(key);
  const rows = [
    ["propagate origin -> Knot", ours.knot!],
    ["propagate origin -> BIND", ours.bind!],
    ["propagate origin -> NSD", ours.nsd!],
    ["Knot primary -> Knot", knot],
  ] as const;
  console.log(`machine: ${machine()}`);
  console.log(
    `${changes} changes, NOTIFY -> the secondary serves the new serial (SOA polled every 2 ms):`,
  );
  for (const [name, ms] of rows) console.log(`  ${name.padEnd(26)} ${summary(ms)}`);
  if (process.env.BENCH_RAW)
    for (const [name, ms] of rows) console.log(name, ms.map((m) => Math.round(m)).join(" "));
} finally {
  await rm(dir, { recursive: true, force: true });
}
