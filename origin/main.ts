/**
 * `propagate origin`: runs the origin authority until SIGTERM or SIGINT,
 * then stops serving and flushes the journal.
 */
import {
  flagHelp,
  intFlag,
  parseFlags,
  parseHostPort,
  printReady,
  serveUntilSignal,
  UsageError,
} from "../infra/flags.ts";
import { startOrigin } from "./server.ts";

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
  "tsig-keys": { type: "string", help: "TSIG key file as tsig-keygen writes it (RFC 8945)" },
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
  const origin = await startOrigin({
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
  });
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
