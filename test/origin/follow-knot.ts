/**
 * A real Knot DNS primary for the follow tests: config, zone files, control
 * socket and databases in a temp dir, on a free loopback port; zones edited
 * with knotc zone-begin/zone-set/zone-commit.
 */
import { type ChildProcess, execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import dnsPacket from "dns-packet";
import { queryUdp } from "../../core/dns-transport.ts";
import { kdig } from "../support/dig.ts";
import { exitOf, freePort, spawnReady } from "../support/net.ts";

const run = promisify(execFile);

export interface KnotZone {
  name: string;
  /** Zone file text; $ORIGIN is the zone. */
  file: string;
  /** Send NOTIFY to this DNS port on 127.0.0.1 after each change. */
  notifyPort?: number;
  /** Transfers need this TSIG key, and NOTIFYs are signed with it. */
  key?: KnotKey;
}

export interface KnotKey {
  name: string;
  algorithm: string;
  /** Base64. */
  secret: string;
}

export interface Knot {
  port: number;
  dir: string;
  /** Runs knotc against this server's control socket. */
  knotc(...args: string[]): Promise<string>;
  /** Applies `zone-set` lines (owner ttl type rdata...) in one transaction; Knot bumps the serial. */
  change(zone: string, sets: string[][], unsets?: string[][]): Promise<void>;
  serial(zone: string): Promise<number>;
  /** From now on, NOTIFY 127.0.0.1:port after each change of these zones (config rewritten, knotc reload). */
  notifyTo(zones: readonly string[], port: number): Promise<void>;
  stop(): Promise<void>;
  /** Starts knotd again on the same port and data (after stop). */
  restart(): Promise<void>;
  close(): Promise<void>;
}

/** A port free on 127.0.0.1 for both UDP and TCP (as a DNS server needs). */
/** A new key from the real `tsig-keygen`: the key file text, and the key for Knot's config. */
export async function tsigKeygen(name: string): Promise<{ file: string; key: KnotKey }> {
  const bin = ["/usr/sbin/tsig-keygen", "tsig-keygen"];
  let file = "";
  for (const b of bin) {
    file = await run(b, ["-a", "hmac-sha256", name]).then(
      (r) => r.stdout,
      () => "",
    );
    if (file) break;
  }
  const secret = /secret "([^"]+)"/.exec(file)?.[1];
  if (!secret) throw new Error(`tsig-keygen wrote no key: ${file}`);
  return { file, key: { name, algorithm: "hmac-sha256", secret } };
}

/** True when the server answers the zone's SOA with NOERROR (a probe with a short timeout). */
async function answersSoa(port: number, zone: string): Promise<boolean> {
  const query = dnsPacket.encode({
    type: "query",
    id: 7,
    questions: [{ name: zone, type: "SOA", class: "IN" }],
  });
  const reply = await queryUdp("127.0.0.1", port, query, 200).catch(() => undefined);
  return reply !== undefined && reply.length >= 4 && (reply.readUInt16BE(2) & 0xf) === 0;
}

/** Knot's configuration: the zones, their keys and NOTIFY targets, everything under `dir`. */
function knotConf(dir: string, port: number, zones: KnotZone[]): string {
  const sock = join(dir, "knot.sock");
  const notifyRemotes = zones
    .filter((z) => z.notifyPort !== undefined)
    .map(
      (z) =>
        `  - id: n-${z.name}\n    address: 127.0.0.1@${z.notifyPort}` +
        (z.key ? `\n    key: ${z.key.name}` : ""),
    );
  const keys = [...new Map(zones.flatMap((z) => (z.key ? [[z.key.name, z.key]] : []))).values()];
  return [
    "server:",
    `  rundir: "${dir}"`,
    `  listen: 127.0.0.1@${port}`,
    "database:",
    `  storage: "${dir}/db"`,
    "  journal-db-max-size: 64M",
    "  timer-db-max-size: 16M",
    "  kasp-db-max-size: 16M",
    "  catalog-db-max-size: 16M",
    "control:",
    `  listen: "${sock}"`,
    "log:",
    "  - target: stderr",
    "    any: warning",
    ...(keys.length > 0
      ? [
          "key:",
          ...keys.flatMap((k) => [
            `  - id: ${k.name}`,
            `    algorithm: ${k.algorithm}`,
            `    secret: ${k.secret}`,
          ]),
        ]
      : []),
    ...(notifyRemotes.length > 0 ? ["remote:", ...notifyRemotes] : []),
    "acl:",
    "  - id: xfr",
    "    address: 127.0.0.0/8",
    "    action: transfer",
    ...keys.flatMap((k) => [
      `  - id: xfr-${k.name}`,
      "    address: 127.0.0.0/8",
      `    key: ${k.name}`,
      "    action: transfer",
    ]),
    "template:",
    "  - id: default",
    `    storage: "${dir}"`,
    '    file: "%s.zone"',
    "    zonefile-sync: -1",
    "    journal-content: changes",
    "    serial-policy: increment",
    "    semantic-checks: off",
    "zone:",
    ...zones.flatMap((z) => [
      `  - domain: ${z.name}`,
      `    acl: ${z.key ? `xfr-${z.key.name}` : "xfr"}`,
      ...(z.notifyPort !== undefined ? [`    notify: n-${z.name}`] : []),
    ]),
  ].join("\n");
}

export async function startKnot(initial: KnotZone[]): Promise<Knot> {
  let zones = initial;
  const dir = await mkdtemp(join(tmpdir(), "propagate-knot-"));
  const port = await freePort();
  const sock = join(dir, "knot.sock");
  const writeConf = () => writeFile(join(dir, "knot.conf"), `${knotConf(dir, port, zones)}\n`);
  // Knot writes its journal there, and a commit fails ("not exists") when it is missing.
  await mkdir(join(dir, "db"));
  await writeConf();
  for (const z of zones) await writeFile(join(dir, `${z.name}.zone`), z.file);

  let child: ChildProcess | undefined;
  const start = async () => {
    // Ready once every zone answers its SOA.
    const ready = async () => {
      for (const z of zones) if (!(await answersSoa(port, z.name))) return false;
      return true;
    };
    ({ proc: child } = await spawnReady("knotd", ["-c", join(dir, "knot.conf")], ready, {
      timeoutMs: 10_000,
      everyMs: 50,
    }));
  };
  const stop = async () => {
    if (child) await exitOf(child);
  };
  const knotc = async (...args: string[]) =>
    (await run("knotc", ["-s", sock, ...args], { timeout: 10_000 })).stdout;
  await start();
  return {
    port,
    dir,
    knotc,
    async change(zone, sets, unsets = []) {
      await knotc("zone-begin", zone);
      try {
        for (const s of unsets) await knotc("zone-unset", zone, ...s);
        for (const s of sets) await knotc("zone-set", zone, ...s);
        await knotc("zone-commit", zone);
      } catch (err) {
        await knotc("zone-abort", zone).catch(() => {});
        throw err;
      }
    },
    async serial(zone) {
      const out = await kdig(["@127.0.0.1", "-p", String(port), zone, "SOA", "+short"]);
      return Number(out.trim().split(/\s+/)[2]);
    },
    async notifyTo(names, notifyPort) {
      zones = zones.map((z) => (names.includes(z.name) ? { ...z, notifyPort } : z));
      await writeConf();
      await knotc("reload");
    },
    stop,
    restart: start,
    async close() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
