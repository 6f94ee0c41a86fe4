/**
 * Starts an origin: recovers the store from its data directory, then serves
 * the HTTP API and reads and the authoritative DNS. Used by `propagate
 * origin`, by the tests and by the launcher.
 */
import { readFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { z } from "zod";
import type { PurgeBus } from "../core/bus.ts";
import { type Clock, RealClock } from "../core/clock.ts";
import type { DnsServer } from "../core/dns-transport.ts";
import { DOH_PATH, JSON_PATH } from "../core/http.ts";
import type { PropagationMode } from "../core/purge.ts";
import { RateLimiter, ResponseRateLimiter } from "../core/rate-limit.ts";
import { eventVerifier } from "../core/signing.ts";
import { apiRoutes } from "./api.ts";
import {
  loadOrCreateSigningKey,
  loadOrCreateToken,
  NodeCredentials,
  perClientLimit,
} from "./auth.ts";
import { startAuthoritativeDns } from "./dns-server.ts";
import { fabricRoutes } from "./fabric.ts";
import { Outbox, publishCommits } from "./fabric-outbox.ts";
import { Registry } from "./fabric-registry.ts";
import { OriginMetrics } from "./metrics.ts";
import { readRoutes } from "./reads.ts";
import { Receipts } from "./receipts.ts";
import { Relay } from "./relay.ts";
import { SAMPLE_ZONE, SAMPLE_ZONE_FILE } from "./sample.ts";
import { DataDir } from "./snapshot.ts";
import { type JournalRecord, Store, type StoreSnapshot } from "./store.ts";
import { parseZoneFile } from "./zonefile.ts";

const hostPort = z.object({ host: z.string().min(1), port: z.number().int().min(0).max(65535) });

export const originConfigSchema = z.object({
  http: hostPort.default({ host: "127.0.0.1", port: 8053 }),
  dns: hostPort.default({ host: "127.0.0.1", port: 1054 }),
  /** Journal, snapshot and token live here. */
  dataDir: z.string().min(1),
  /** Bearer token for writes; absent: DATA/token, created on first start. */
  token: z.string().min(8).optional(),
  /**
   * Bearer token of cache nodes: registering, acking, and their own purge and
   * admin endpoints. It cannot write zones. Absent: DATA/node-token.
   */
  nodeToken: z.string().min(8).optional(),
  /** Zone files imported at start when their zone does not exist yet. */
  zoneFiles: z.array(z.string()).default([]),
  /** Load the sample zone example.test when it does not exist yet. */
  sample: z.boolean().default(false),
  /** Journal records between snapshots. */
  snapshotEvery: z.number().int().min(1).default(10_000),
  /** Changes kept per zone for GET .../changes?since=N. */
  changeLogLimit: z.number().int().min(1).default(1000),
  /** A node that has not renewed its registration (lease, ack) for this long is LOST. */
  leaseMs: z.number().int().min(100).default(30_000),
  /** Largest API request body, bytes. */
  maxBodyBytes: z
    .number()
    .int()
    .min(1024)
    .default(1024 * 1024),
  /**
   * Response rate limiting on the authoritative UDP front (BIND-style RRL):
   * identical responses per second per client /24 (/56), then drop, every
   * `slip`-th sent truncated. Absent: off (like BIND, it is configured per site).
   */
  rrl: z
    .object({ responsesPerSecond: z.number().min(1), slip: z.number().int().min(0).default(2) })
    .optional(),
  /** Per-client limit on the HTTP API (/v1/*): requests per second and burst. Absent: off. */
  apiRateLimit: z
    .object({ perSecond: z.number().min(0.1), burst: z.number().int().min(1) })
    .optional(),
  /** RFC 5001 NSID of the DNS server. */
  nsid: z.string().optional(),
});

export type OriginConfig = z.input<typeof originConfigSchema>;

export interface RunningOrigin {
  httpUrl: string;
  /** "host:port" of the authoritative DNS (UDP and TCP). */
  dnsAddr: string;
  dns: DnsServer;
  token: string;
  /** True when the token was generated on this start. */
  tokenCreated: boolean;
  /** The cache nodes' token (registry, acks); it cannot write zones. */
  nodeToken: string;
  /** The public key (base64 SPKI) nodes verify purge events with. */
  purgeKey: string;
  /** Issues node `id` its own token (POST /v1/nodes/{id}/token does the same). */
  issueNodeToken(id: string): string;
  store: Store;
  /** Registered cache nodes and per-node receipts of every change. */
  receipts: Receipts;
  data: DataDir<JournalRecord, StoreSnapshot>;
  /** Stops serving, then flushes and closes the journal. */
  close(): Promise<void>;
}

export interface OriginDeps {
  clock?: Clock;
  log?: (message: string) => void;
  /** The purge bus every committed change is published on; none: nodes learn by anti-entropy. */
  bus?: PurgeBus;
  /** Propagation mode of each zone's events (default "invalidate"). */
  modeOf?: (zone: string) => PropagationMode;
}

export async function startOrigin(
  config: OriginConfig,
  deps: OriginDeps = {},
): Promise<RunningOrigin> {
  const cfg = originConfigSchema.parse(config);
  const clock = deps.clock ?? new RealClock();
  const log = deps.log ?? ((m: string) => console.error(m));
  const warn = (m: string) => log(`warning: ${m}`);

  const { data, recovered } = await DataDir.open<JournalRecord, StoreSnapshot>(cfg.dataDir, {
    snapshotEvery: cfg.snapshotEvery,
    warn,
  });
  const store = new Store(
    { clock, durability: data, changeLogLimit: cfg.changeLogLimit, warn },
    recovered,
  );
  data.snapshotWith(() => store.snapshot());
  const metrics = new OriginMetrics();
  store.onCommit(metrics.onCommit);
  const { token, created } = await loadOrCreateToken(cfg.dataDir, cfg.token);
  const { token: nodeToken } = await loadOrCreateToken(cfg.dataDir, cfg.nodeToken, "node-token");
  const signer = await loadOrCreateSigningKey(cfg.dataDir);
  const credentials = new NodeCredentials(nodeToken, join(cfg.dataDir, "node-credentials.json"));

  const files = await Promise.all(
    cfg.zoneFiles.map(async (f) => ({ source: f, text: await readFile(f, "utf8") })),
  );
  if (cfg.sample) files.push({ source: "the sample zone", text: SAMPLE_ZONE_FILE });

  const receipts = new Receipts(clock, undefined, cfg.leaseMs);
  const registry = await Registry.open(cfg.dataDir, receipts, warn);
  // A zone's own mode (set when it was created) wins over the launcher's (a topology's).
  const modeOf = (zone: string): PropagationMode =>
    store.findState(zone)?.config.mode ?? deps.modeOf?.(zone) ?? "invalidate";
  const outbox = deps.bus ? new Outbox(deps.bus, clock, log, { signer }) : undefined;
  const stopPublishing = publishCommits(store, receipts, outbox, modeOf);

  const app = new Hono();
  let dnsAddr = "";
  // journal: records and fsynced batches since start; records/batches is the group-commit factor.
  // dns: where the authoritative DNS listens (nodes started on their own find it here).
  app.get("/healthz", (c) =>
    c.json({ ok: true, zones: store.zones().length, dns: dnsAddr, journal: data.stats }),
  );
  if (cfg.apiRateLimit) {
    const { perSecond, burst } = cfg.apiRateLimit;
    app.use("/v1/*", perClientLimit(new RateLimiter(clock, perSecond, burst)));
  }
  // Counted around the routes, so a refused write (401, 413, 409) counts too.
  app.on(["PUT", "PATCH", "DELETE"], ["/v1/zones", "/v1/zones/*"], metrics.writeCounter());
  app.use(DOH_PATH, metrics.readCounter("doh"));
  app.use(JSON_PATH, metrics.readCounter("json"));
  app.get("/metrics", (c) =>
    c.text(metrics.text(store, data.stats), 200, {
      "content-type": "text/plain; version=0.0.4; charset=utf-8",
    }),
  );
  app.route("/", apiRoutes({ store, token, modeOf, maxBodyBytes: cfg.maxBodyBytes, log }));
  const relay = deps.bus
    ? new Relay(
        deps.bus,
        receipts,
        () => store.zones().map((s) => ({ zone: s.zone.name, serial: s.zone.serial })),
        clock,
        log,
        eventVerifier(signer.publicKey),
      )
    : undefined;
  app.route(
    "/",
    fabricRoutes({
      store,
      receipts,
      token,
      nodeToken,
      clock,
      outbox,
      relay,
      purgeKey: signer.publicKey,
      credentials,
      registry,
    }),
  );
  app.route("/", readRoutes({ store, clock }));
  app.notFound((c) =>
    c.json(
      {
        error: "not found",
        reason: `no route for ${c.req.method} ${c.req.path}; see origin/openapi.json`,
      },
      404,
    ),
  );

  const { server, address } = await listen(app, cfg.http.host, cfg.http.port).catch(
    async (err: Error) => {
      stopPublishing();
      outbox?.close();
      await data.close();
      await registry.close();
      throw err;
    },
  );
  let dns: DnsServer;
  try {
    dns = await startAuthoritativeDns(store, {
      host: cfg.dns.host,
      port: cfg.dns.port,
      ...(cfg.nsid !== undefined && { nsid: cfg.nsid }),
      onAnswer: metrics.onDnsAnswer,
      ...(cfg.rrl && { rrl: new ResponseRateLimiter(clock, cfg.rrl) }),
      onError: (err) => log(`dns: ${(err as Error).message}`),
    });
  } catch (err) {
    server.close();
    await data.close();
    await registry.close();
    throw err;
  }
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const dnsHost = dns.host.includes(":") ? `[${dns.host}]` : dns.host;
  dnsAddr = `${dnsHost}:${dns.port}`;
  const close = async () => {
    stopPublishing();
    outbox?.close();
    await relay?.close();
    await dns.close();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    await data.close();
    await registry.close();
  };
  // Zones are imported once both ports are ours, so a start that cannot listen
  // leaves the data directory as it found it.
  try {
    for (const { source, text } of files) await importZone(store, source, text, log);
    if (cfg.sample && !store.findZone(SAMPLE_ZONE))
      throw new Error(`the sample zone ${SAMPLE_ZONE} did not load`);
  } catch (err) {
    await close();
    throw err;
  }
  return {
    httpUrl: `http://${host}:${address.port}`,
    dnsAddr,
    dns,
    token,
    tokenCreated: created,
    nodeToken,
    purgeKey: signer.publicKey,
    issueNodeToken: (id) => credentials.issue(id),
    store,
    receipts,
    data,
    close,
  };
}

async function importZone(
  store: Store,
  source: string,
  text: string,
  log: (m: string) => void,
): Promise<void> {
  const parsed = parseZoneFile(text);
  for (const w of parsed.warnings) log(`${source}: ${w}`);
  const existing = store.findState(parsed.origin);
  if (existing?.zone.name === parsed.origin) {
    log(
      `zone ${parsed.origin} from ${source} already exists at serial ${existing.zone.serial}; not re-imported`,
    );
    return;
  }
  const rrsets = parsed.rrsets.map((s) => ({ ...s, name: `${s.name}.` }));
  const result = await store.createZone({ name: parsed.origin, rrsets });
  log(`imported zone ${parsed.origin} from ${source} at serial ${result.serial}`);
}

type NodeServer = ReturnType<typeof serve> & { closeAllConnections(): void };

function listen(
  app: Hono,
  hostname: string,
  port: number,
): Promise<{ server: NodeServer; address: AddressInfo }> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: app.fetch, hostname, port }, (info) =>
      resolve({ server, address: info }),
    ) as NodeServer;
    server.once("error", reject);
  });
}
