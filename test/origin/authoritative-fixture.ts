/** Zones for the authoritative tests, built from zone files through parseZoneFile. */
import { normaliseName } from "../../core/names.ts";
import type { RRset } from "../../core/records.ts";
import { Zone, type ZoneSource, type ZoneView } from "../../origin/zone.ts";
import { parseZoneFile } from "../../origin/zonefile.ts";

export const EXAMPLE = `$ORIGIN example.test.
$TTL 3600
@       IN SOA ns1 hostmaster 2024010101 7200 3600 1209600 300
@       IN NS  ns1
@       IN NS  ns.other.test.
@       IN MX  10 mail
@       IN CAA 0 issue "letsencrypt.org"
ns1     IN A   192.0.2.53
www  300 IN A  192.0.2.1
www  300 IN A  192.0.2.2
www     IN AAAA 2001:db8::1
mail    IN A   192.0.2.25
alias 60 IN CNAME alias2
alias2 120 IN CNAME www
toother IN CNAME www.other.test.
outside IN CNAME www.elsewhere.invalid.
dangling IN CNAME nothing
loop1   IN CNAME loop2
loop2   IN CNAME loop1
txt     IN TXT "v=spf1 -all" "second string"
_sip._tcp IN SRV 10 60 5060 sip
sip     IN A   192.0.2.60
1.ptr   IN PTR www
a.b.c   IN A   192.0.2.99
*.wild  IN TXT "wildcard"
real.wild IN A 192.0.2.77
sub     IN NS  ns.sub
ns.sub  IN A   192.0.2.200
`;

export const OTHER = `$ORIGIN other.test.
$TTL 600
@   SOA ns hostmaster 7 3600 600 86400 60
www A 198.51.100.1
`;

/** A TXT RRset over 2 KB in wire form: more than 512 and 1232, less than 4096. */
export function bigTxt(name: string): RRset<"TXT"> {
  const data = Array.from({ length: 10 }, (_, i) => [`record-${i}-${"x".repeat(200)}`]);
  return { name, type: "TXT", ttl: 60, data };
}

/** A ZoneSource over a few zones, longest suffix first. */
export class Zones implements ZoneSource {
  readonly zones = new Map<string, Zone>();

  add(text: string, extra: RRset[] = []): Zone {
    const { origin, rrsets } = parseZoneFile(text);
    const soa = rrsets.find((s) => s.type === "SOA") as RRset<"SOA">;
    const zone = new Zone(origin, soa);
    for (const set of [...rrsets, ...extra]) if (set !== soa) zone.put(set);
    this.zones.set(origin, zone);
    return zone;
  }

  findZone(name: string): ZoneView | undefined {
    for (let n = normaliseName(name); ; n = n.slice(n.indexOf(".") + 1)) {
      const zone = this.zones.get(n);
      if (zone) return zone;
      if (!n.includes(".")) return undefined;
    }
  }
}

export function exampleZones(): Zones {
  const zones = new Zones();
  zones.add(EXAMPLE, [
    bigTxt("big.example.test"),
    { ...bigTxt("medium.example.test"), data: bigTxt("x").data.slice(0, 3) },
  ]);
  zones.add(OTHER);
  return zones;
}
