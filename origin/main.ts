/**
 * `propagate origin`: runs the origin authority until SIGTERM or SIGINT,
 * then stops serving and flushes the journal.
 */
import {
  flagHelp,
  intFlag,
  LOG_LEVEL_FLAG,
  logging,
  parseFlags,
  parseHostPort,
  printReady,
  serveUntilSignal,
  UsageError,
} from "../core/flags.ts";
import { logChanges } from "./log.ts";
import type { SecondaryInput } from "./secondaries.ts";
import { startOrigin } from "./server.ts";
import { parseAllowList } from "./xfr-acl.ts";

const FLAGS = {
  http: {
    type: "string",
    help: "HTTP API and DoH/JSON reads on HOST:PORT (default 127.0.0.1:8053; port 0 = free)",
  },
  dns: {
    type: "string",
    help: "authoritative DNS, UDP and TCP, on HOST:PORT (default 127.0.0.1:1054)",
  },
  data: { type: "string", help: "data directory: journal, snapshot, token (required)" },
  token: { type: "string", help: "bearer token for writes (default: DATA/token, generated once)" },
  "zone-file": {
    type: "string",
    multiple: true,
    help: "import an RFC 1035 zone file if its zone is absent (repeatable)",
  },
  sample: { type: "boolean", help: "load the sample zone example.test if it is absent" },
  "snapshot-every": { type: "string", help: "journal records between snapshots (default 10000)" },
  "change-log": { type: "string", help: "changes kept per zone for ?since= (default 1000)" },
  "max-body": { type: "string", help: "largest API request body in bytes (default 1048576)" },
  nsid: { type: "string", help: "RFC 5001 NSID the DNS server returns" },
  follow: {
    type: "string",
    help: "follow a primary at dns://IP:PORT: AXFR, then NOTIFY + IXFR (with --follow-zones)",
  },
  "follow-zones": {
    type: "string",
    help: "zones to take from the --follow primary: a.test,b.test",
  },
  "follow-key": {
    type: "string",
    help: "TSIG key NAME (from --tsig-keys) for the --follow primary",
  },
  "tsig-keys": {
    type: "string",
    help: "TSIG key file in tsig-keygen format (transfers, NOTIFY; RFC 8945)",
  },
  "allow-transfer": {
    type: "string",
    multiple: true,
    help: "who may AXFR/IXFR: [ZONE=]ITEM,... with ITEM an IP, IP/prefix or key:NAME (repeatable; no ZONE= means every zone)",
  },
  catalog: {
    type: "string",
    help: "publish a catalog zone (RFC 9432 v2) of every zone under this name, e.g. catalog.invalid",
  },
  secondary: {
    type: "string",
    multiple: true,
    help: "a secondary to NOTIFY and track: id=ID,dns=HOST:PORT[,key=NAME][,zones=Z1+Z2] (repeatable)",
  },
  "log-level": LOG_LEVEL_FLAG,
  help: { type: "boolean", short: "h", help: "show this help" },
} as const;

export async function main(argv: string[]): Promise<void> {
  const { values: v } = parseFlags(argv, FLAGS, "origin");
  if (v.help) {
    console.log(flagHelp(FLAGS, "origin"));
    return;
  }
  if (!v.data) throw new UsageError(`--data DIR is required\n\n${flagHelp(FLAGS, "origin")}`);
  if ((v.follow === undefined) !== (v["follow-zones"] === undefined)) {
    throw new UsageError("--follow dns://IP:PORT and --follow-zones a.test,b.test go together");
  }
  const follow = v.follow
    ? [
        {
          primary: v.follow,
          zones: (v["follow-zones"] ?? "").split(",").filter(Boolean),
          key: v["follow-key"],
        },
      ]
    : [];
  const node = v.nsid ?? "origin";
  const { logger, log } = logging(v["log-level"], node);
  const origin = await startOrigin(
    {
      http: parseHostPort(v.http ?? "127.0.0.1:8053", "http"),
      dns: parseHostPort(v.dns ?? "127.0.0.1:1054", "dns"),
      dataDir: v.data,
      token: v.token,
      zoneFiles: (v["zone-file"] as string[] | undefined) ?? [],
      sample: v.sample ?? false,
      snapshotEvery: intFlag(v["snapshot-every"], "snapshot-every"),
      changeLogLimit: intFlag(v["change-log"], "change-log"),
      maxBodyBytes: intFlag(v["max-body"], "max-body"),
      nsid: v.nsid,
      follow,
      tsigKeys: v["tsig-keys"],
      catalog: v.catalog,
      allowTransfer: allowTransferFlags((v["allow-transfer"] as string[] | undefined) ?? []),
      secondaries: ((v.secondary as string[] | undefined) ?? []).map(secondaryFlag),
    },
    { log },
  );
  logChanges(origin.store, origin.receipts, logger.child({ node }));
  console.log(`origin HTTP API and reads on ${origin.httpUrl}  (DoH ${origin.httpUrl}/dns-query)`);
  console.log(`origin authoritative DNS on ${origin.dnsAddr} (UDP and TCP)`);
  console.log(
    origin.tokenCreated
      ? `write token (new, saved in ${v.data}/token): ${origin.token}`
      : `write token: ${origin.token}`,
  );
  printReady({ http: origin.httpUrl, dns: origin.dnsAddr, token: origin.token });

  // Closing flushes the journal.
  await serveUntilSignal("origin", origin.close);
}

/** `--allow-transfer [ZONE=]ITEM,ITEM` -> { zone or "*": items }. */
function allowTransferFlags(values: string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const value of values) {
    const eq = value.indexOf("=");
    const zone = eq < 0 ? "*" : value.slice(0, eq).toLowerCase().replace(/\.$/, "");
    const items = (eq < 0 ? value : value.slice(eq + 1)).split(",").filter((s) => s !== "");
    try {
      out[zone] = [...(out[zone] ?? []), ...parseAllowList(items, `--allow-transfer ${value}`)];
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  }
  return out;
}

/** `--secondary id=ID,dns=HOST:PORT[,key=NAME][,zones=Z1+Z2]`. */
function secondaryFlag(value: string): SecondaryInput {
  const fields = new Map(
    value.split(",").map((kv) => {
      const i = kv.indexOf("=");
      return [kv.slice(0, i), kv.slice(i + 1)] as const;
    }),
  );
  const id = fields.get("id");
  const dns = fields.get("dns");
  if (!id || !dns)
    throw new UsageError(
      `--secondary expects id=ID,dns=HOST:PORT[,key=NAME][,zones=Z1+Z2], got "${value}"`,
    );
  const key = fields.get("key");
  const zones = fields.get("zones");
  return { id, dns, ...(key && { key }), ...(zones && { zones: zones.split("+") }) };
}
