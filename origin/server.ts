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
import type { LinkDelay } from "../core/delay.ts";
import type { DnsServer } from "../core/dns-transport.ts";
import { DOH_PATH, JSON_PATH } from "../core/http.ts";
import { PromRegistry } from "../core/prom.ts";
import type { PropagationMode } from "../core/purge.ts";
import { RateLimiter, ResponseRateLimiter } from "../core/rate-limit.ts";
import { eventVerifier } from "../core/signing.ts";
import { parseTsigKeys, type TsigKey } from "../core/tsig.ts";
import { AnswerCache } from "./answer-cache.ts";
import { apiRoutes } from "./api.ts";
import {
  loadOrCreateSigningKey,
  loadOrCreateToken,
  NodeCredentials,
  perClientLimit,
} from "./auth.ts";
import { Catalog } from "./catalog.ts";
import { type DashboardInfo, dashboardRoutes } from "./dashboard.ts";
import { startAuthoritativeDns } from "./dns-server.ts";
import { fabricRoutes } from "./fabric.ts";
import { Outbox, publishCommits } from "./fabric-outbox.ts";
import { Registry } from "./fabric-registry.ts";
import { Follower, followSources } from "./follow.ts";
import {
  OriginMetrics,
  observeAnswerCache,
  observeReceipts,
  observeSecondaries,
} from "./metrics.ts";
import { readRoutes } from "./reads.ts";
import { Receipts } from "./receipts.ts";
import { Relay } from "./relay.ts";
import type { Resolution } from "./resolve.ts";
import { SAMPLE_ZONE, SAMPLE_ZONE_FILE } from "./sample.ts";
import { Secondaries, type SecondarySpec, secondarySchema, udpTransport } from "./secondaries.ts";
import { loadPrimaryState, primaryRoutes } from "./secondaries-api.ts";
import { DataDir } from "./snapshot.ts";
import { type JournalRecord, Store, type StoreSnapshot, zoneName } from "./store.ts";
import { TransferAcl } from "./xfr-acl.ts";
import { IxfrHistory } from "./xfr-history.ts";
import { IxfrHistoryLog } from "./xfr-history-log.ts";
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
  /** A key file in tsig-keygen format: keys for transfers, NOTIFY and SOA queries (RFC 8945). */
  tsigKeys: z.string().optional(),
  /** Who may transfer: zone (or "*" for all) -> IPs, CIDR prefixes, key:NAME (xfr-acl.ts). */
  allowTransfer: z.record(z.string(), z.array(z.string())).default({}),
  /** Publish a catalog zone (RFC 9432 v2) of every zone under this name (catalog.ts). */
  catalog: z.string().optional(),
  /** Real secondaries: NOTIFY on every change, receipts from their SOA (secondaries.ts). */
  secondaries: z.array(secondarySchema).default([]),
  /** Zones taken from primaries by AXFR/IXFR (follow.ts); the API refuses writes to them. */
  follow: z
    .array(
      z.object({
        primary: z.string(),
        zones: z.array(z.string()).min(1),
        /** TSIG key name (in `tsigKeys`) for its transfers, SOA queries and NOTIFYs. */
        key: z.string().optional(),
      }),
    )
    .default([]),
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
  /** Real secondaries: NOTIFY targets and receipts by SOA. */
  secondaries: Secondaries;
  data: DataDir<JournalRecord, StoreSnapshot>;
  /** Keeps followed zones up with their primaries; absent when nothing is followed. */
  follower: Follower | undefined;
  /** Stops serving, then flushes and closes the journal. */
  close(): Promise<void>;
}

export interface OriginDeps {
  clock?: Clock;
  log?: (message: string) => void;
  /** The purge bus every committed change is published on; none: nodes learn by anti-entropy. */
  bus?: PurgeBus;
  /** What GET /dashboard shows beside the registry: the links' delay models, the prediction. */
  dashboard?: DashboardInfo;
  /** Propagation mode of each zone's events (default "invalidate"). */
  modeOf?: (zone: string) => PropagationMode;
  /** The delay model of the link to a secondary (its NOTIFYs pass through it). */
  linkOf?: (secondary: SecondarySpec) => LinkDelay | undefined;
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
  const nodeRegistry = await Registry.open(cfg.dataDir, receipts, warn);
  const primary = await startPrimary(cfg, store, receipts, clock, log, metrics, deps).catch(
    async (err: Error) => {
      await nodeRegistry.close();
      await data.close();
      throw err;
    },
  );
  let follower: Follower | undefined;
  try {
    follower =
      cfg.follow.length > 0
        ? new Follower({
            zones: followSources(cfg.follow, { file: cfg.tsigKeys, keys: primary.keys }),
            store,
            clock,
            log,
          })
        : undefined;
  } catch (err) {
    primary.secondaries.close();
    await primary.historyLog.close();
    await nodeRegistry.close();
    await data.close();
    throw err;
  }
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
    c.json({
      ok: true,
      zones: store.zones().length,
      dns: dnsAddr,
      journal: data.stats,
      ...(follower && { follow: follower.status() }),
    }),
  );
  if (cfg.apiRateLimit) {
    const { perSecond, burst } = cfg.apiRateLimit;
    app.use("/v1/*", perClientLimit(new RateLimiter(clock, perSecond, burst)));
  }
  // Counted around the routes, so a refused write (401, 413, 409) counts too.
  app.on(["PUT", "PATCH", "DELETE"], ["/v1/zones", "/v1/zones/*"], metrics.writeCounter());
  app.use(DOH_PATH, metrics.readCounter("doh"));
  app.use(JSON_PATH, metrics.readCounter("json"));
  const registry = new PromRegistry(cfg.nsid ?? "origin");
  metrics.register(registry, store, () => data.stats);
  observeReceipts(registry, receipts, clock);
  observeSecondaries(registry, primary.secondaries);
  app.get("/metrics", async (c) =>
    c.body((await registry.render()) + (follower?.metricsText(cfg.nsid ?? "origin") ?? ""), 200, {
      "content-type": registry.contentType,
    }),
  );
  const followedFrom = (zone: string) => follower?.primaryOf(zone);
  app.route(
    "/",
    apiRoutes({ store, token, modeOf, maxBodyBytes: cfg.maxBodyBytes, log, followedFrom }),
  );
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
      registry: nodeRegistry,
    }),
  );
  app.route(
    "/",
    readRoutes({
      store,
      clock,
      ...(follower && { expired: (zone: string) => follower.expired(zone) }),
    }),
  );
  app.route(
    "/",
    primaryRoutes({
      store,
      token,
      dataDir: cfg.dataDir,
      acl: primary.acl,
      secondaries: primary.secondaries,
      state: primary.state,
    }),
  );
  app.route(
    "/",
    dashboardRoutes({
      receipts,
      clock,
      originId: cfg.nsid ?? "origin",
      zones: () => store.zones().map((s) => s.zone.name),
      ...(deps.dashboard && { info: deps.dashboard }),
    }),
  );
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
      await primary.historyLog.close();
      await data.close();
      await nodeRegistry.close();
      throw err;
    },
  );
  let dns: DnsServer;
  try {
    const answerCache = new AnswerCache<Resolution>(undefined, store);
    observeAnswerCache(registry, () => answerCache.stats());
    store.onCommit(answerCache.onCommit);
    dns = await startAuthoritativeDns(store, {
      answerCache,
      host: cfg.dns.host,
      port: cfg.dns.port,
      ...(cfg.nsid !== undefined && { nsid: cfg.nsid }),
      onAnswer: metrics.onDnsAnswer,
      ...(cfg.rrl && { rrl: new ResponseRateLimiter(clock, cfg.rrl) }),
      onError: (err) => log(`dns: ${(err as Error).message}`),
      ...(follower && { expired: (zone: string) => follower.expired(zone) }),
      primary: {
        ...primary.dns,
        ...(follower && { onNotify: follower.notified.bind(follower) }),
      },
    });
  } catch (err) {
    server.close();
    await primary.historyLog.close();
    await data.close();
    await nodeRegistry.close();
    throw err;
  }
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const dnsHost = dns.host.includes(":") ? `[${dns.host}]` : dns.host;
  dnsAddr = `${dnsHost}:${dns.port}`;
  const close = async () => {
    await follower?.close();
    primary.secondaries.close();
    stopPublishing();
    outbox?.close();
    await relay?.close();
    await dns.close();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    // After the last write could arrive, before the journal closes.
    await primary.historyLog.close();
    await data.close();
    await nodeRegistry.close();
  };
  // Zones are imported once both ports are ours, so a start that cannot listen
  // leaves the data directory as it found it.
  try {
    for (const { source, text } of files) await importZone(store, source, text, log);
    if (cfg.sample && !store.findZone(SAMPLE_ZONE))
      throw new Error(`the sample zone ${SAMPLE_ZONE} did not load`);
    if (primary.catalog) await primary.catalog.start();
  } catch (err) {
    await close();
    throw err;
  }
  follower?.start();
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
    secondaries: primary.secondaries,
    data,
    follower,
    close,
  };
}

/**
 * The primary side: TSIG keys, transfer lists (command line, then what the
 * API saved), the IXFR history and the secondaries' NOTIFYs, hooked on commits.
 */
async function startPrimary(
  cfg: z.output<typeof originConfigSchema>,
  store: Store,
  receipts: Receipts,
  clock: Clock,
  log: (m: string) => void,
  metrics: OriginMetrics,
  deps: OriginDeps,
) {
  const keys = new Map<string, TsigKey>();
  if (cfg.tsigKeys !== undefined)
    for (const k of parseTsigKeys(await readFile(cfg.tsigKeys, "utf8"), cfg.tsigKeys))
      keys.set(k.name, k);
  const lookup = (name: string) => keys.get(name);
  const saved = await loadPrimaryState(cfg.dataDir);
  const state = {
    allowTransfer: saved?.allowTransfer ?? {},
    secondaries: saved?.secondaries ?? [],
  };
  const acl = new TransferAcl({ ...cfg.allowTransfer, ...state.allowTransfer });
  const history = new IxfrHistory(cfg.changeLogLimit);
  for (const s of store.zones()) history.seed(s.zone.name, s.zone.all());
  const historyLog = await IxfrHistoryLog.open(
    cfg.dataDir,
    history,
    (zone) => {
      const state = store.findState(zone);
      return state?.zone.name === zone ? state.zone.serial : undefined;
    },
    log,
  );
  store.onCommit((c) => history.apply(c));
  const count = metrics.count.bind(metrics);
  const secondaries = new Secondaries({
    store,
    receipts,
    keys: lookup,
    clock,
    transport: udpTransport,
    log,
    count,
    ...(deps.linkOf && { linkOf: deps.linkOf }),
  });
  for (const spec of [...cfg.secondaries, ...state.secondaries]) secondaries.add(spec);
  store.onCommit(secondaries.onCommit);
  const catalog =
    cfg.catalog === undefined ? undefined : new Catalog(store, zoneName(cfg.catalog), log);
  if (catalog) store.onCommit(catalog.onCommit);
  return {
    catalog,
    historyLog,
    keys: [...keys.values()],
    acl,
    secondaries,
    state,
    dns: {
      store,
      history,
      keys: lookup,
      // A secondary's own key may transfer the zones it serves.
      acl: {
        allows: (zone: string, address: string, key: string | undefined) =>
          acl.allows(zone, address, key) ||
          (key !== undefined && secondaries.allowedKeys(zone).includes(key)),
      },
      now: () => clock.now() / 1000,
      log,
      count,
      onTransfer: (zone: string) => secondaries.transferred(zone),
    },
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
