/**
 * Configs that make Knot, BIND and NSD secondaries of the origin: the zone by
 * AXFR/IXFR from the origin with a TSIG key, NOTIFY accepted from it (signed),
 * refresh timers as short as each allows. The README's snippets are these.
 */
import type { TsigKey } from "../../core/tsig.ts";

export interface SecondaryZone {
  zone: string;
  /** How the secondary asks: with the shared key (default), unsigned, or with a wrong secret. */
  as?: "key" | "nokey" | "badkey";
}

export function knotSecondary(
  dir: string,
  port: number,
  primaryPort: number,
  key: TsigKey,
  zones: SecondaryZone[],
): string {
  const bad = Buffer.alloc(key.secret.length, 7).toString("base64");
  return `server:
  rundir: "${dir}"
  listen: 127.0.0.1@${port}
log:
  - target: stderr
    any: info
database:
  storage: "${dir}"
key:
  - id: ${key.name}
    algorithm: ${key.algorithm}
    secret: ${key.secret.toString("base64")}
  - id: ${key.name}.wrong
    algorithm: ${key.algorithm}
    secret: ${bad}
remote:
  - id: origin
    address: 127.0.0.1@${primaryPort}
    key: ${key.name}
  - id: origin-nokey
    address: 127.0.0.1@${primaryPort}
  - id: origin-badkey
    address: 127.0.0.1@${primaryPort}
    key: ${key.name}.wrong
acl:
  - id: notify-from-origin
    address: 127.0.0.1
    key: ${key.name}
    action: notify
  - id: transfer-out
    address: 127.0.0.1
    action: transfer
template:
  - id: default
    storage: "${dir}"
    zonefile-sync: -1
    zonefile-load: none
    journal-content: none
zone:
${zones.map((z) => `  - domain: ${z.zone}\n    master: ${z.as === "nokey" ? "origin-nokey" : z.as === "badkey" ? "origin-badkey" : "origin"}\n    acl: [notify-from-origin, transfer-out]`).join("\n")}
`;
}

/** named.conf's TSIG key and the options every secondary here shares: loopback, no recursion, no NOTIFY out. */
function bindHead(dir: string, port: number, key: TsigKey): string {
  return `key "${key.name}" {
  algorithm ${key.algorithm};
  secret "${key.secret.toString("base64")}";
};
options {
  directory "${dir}";
  listen-on port ${port} { 127.0.0.1; };
  listen-on-v6 { none; };
  pid-file none;
  session-keyfile none;
  recursion no;
  dnssec-validation no;
  notify no;`;
}

export function bindSecondary(
  dir: string,
  port: number,
  primaryPort: number,
  key: TsigKey,
  zones: string[],
): string {
  return `${bindHead(dir, port, key)}
  min-refresh-time 1;
  min-retry-time 1;
  allow-transfer { 127.0.0.1; };
};
controls { };
${zones
  .map(
    (z) => `zone "${z}" {
  type secondary;
  primaries port ${primaryPort} { 127.0.0.1 key "${key.name}"; };
  allow-notify { key "${key.name}"; };
  file "${z}.db";
};`,
  )
  .join("\n")}
`;
}

export function nsdSecondary(
  dir: string,
  port: number,
  primaryPort: number,
  key: TsigKey,
  zones: string[],
): string {
  return `server:
  ip-address: 127.0.0.1@${port}
  port: ${port}
  do-ip6: no
  zonesdir: "${dir}"
  database: ""
  pidfile: "${dir}/nsd.pid"
  xfrdfile: "${dir}/xfrd.state"
  zonelistfile: "${dir}/zone.list"
  xfrdir: "${dir}"
  username: ""
  chroot: ""
  verbosity: 2
  xfrd-reload-timeout: 0
remote-control:
  control-enable: no
key:
  name: ${key.name}
  algorithm: ${key.algorithm}
  secret: "${key.secret.toString("base64")}"
${zones
  .map(
    (z) => `zone:
  name: ${z}
  zonefile: ${z}.zone
  allow-notify: 127.0.0.1 ${key.name}
  request-xfr: 127.0.0.1@${primaryPort} ${key.name}
  provide-xfr: 127.0.0.1 NOKEY`,
  )
  .join("\n")}
`;
}

/** Knot that knows only the catalog zone (RFC 9432) and takes its members from it. */
export function knotCatalogConsumer(
  dir: string,
  port: number,
  primaryPort: number,
  key: TsigKey,
  catalog: string,
): string {
  return `server:
  rundir: "${dir}"
  listen: 127.0.0.1@${port}
log:
  - target: stderr
    any: info
database:
  storage: "${dir}"
key:
  - id: ${key.name}
    algorithm: ${key.algorithm}
    secret: ${key.secret.toString("base64")}
remote:
  - id: origin
    address: 127.0.0.1@${primaryPort}
    key: ${key.name}
acl:
  - id: notify-from-origin
    address: 127.0.0.1
    key: ${key.name}
    action: notify
template:
  - id: default
    storage: "${dir}"
    zonefile-sync: -1
    zonefile-load: none
    journal-content: none
  - id: member
    storage: "${dir}"
    zonefile-sync: -1
    zonefile-load: none
    journal-content: none
    master: origin
    acl: notify-from-origin
zone:
  - domain: ${catalog}
    master: origin
    acl: notify-from-origin
    catalog-role: interpret
    catalog-template: member
`;
}

/** BIND that knows only the catalog zone (RFC 9432) and takes its members from it. */
export function bindCatalogConsumer(
  dir: string,
  port: number,
  primaryPort: number,
  key: TsigKey,
  catalog: string,
): string {
  const primaries = `port ${primaryPort} { 127.0.0.1 key "${key.name}"; }`;
  return `${bindHead(dir, port, key)}
  allow-new-zones yes;
  catalog-zones {
    zone "${catalog}" default-primaries ${primaries} in-memory yes min-update-interval 0;
  };
};
controls { };
zone "${catalog}" {
  type secondary;
  primaries ${primaries};
  allow-notify { key "${key.name}"; };
  file "${catalog}.db";
};
`;
}
