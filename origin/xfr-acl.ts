/**
 * Who may transfer a zone: a list of addresses (a single IP or a CIDR prefix)
 * and TSIG key names (`key:NAME`). A request is allowed when its source
 * address, or the key it was signed with (already verified), is on the list
 * for every zone (`*`) or for its zone. No list: nobody (RFC 5936 §4.2:
 * transfers are restricted by default in practice).
 */
import { BlockList, isIP } from "node:net";
import { keyName } from "../core/tsig.ts";

export class AclError extends Error {}

interface Compiled {
  items: string[];
  addresses: BlockList;
  keys: Set<string>;
}

/** Validates one list; each item is an IP, IP/prefix, or key:NAME. */
export function parseAllowList(items: readonly string[], where = "allow-transfer"): string[] {
  return items.map((raw, i) => {
    const item = raw.trim();
    if (item.startsWith("key:")) {
      try {
        return `key:${keyName(item.slice(4))}`;
      } catch {
        throw new AclError(`${where}[${i}]: "${raw}" is not a key name`);
      }
    }
    const [ip, prefix, extra] = item.split("/");
    const family = isIP(ip ?? "");
    const bits = prefix === undefined ? undefined : Number(prefix);
    const max = family === 6 ? 128 : 32;
    if (
      family === 0 ||
      extra !== undefined ||
      (bits !== undefined && (!Number.isInteger(bits) || bits < 0 || bits > max))
    )
      throw new AclError(
        `${where}[${i}]: "${raw}" is neither an IP address, an address/prefix, nor key:NAME`,
      );
    return item;
  });
}

function compile(items: string[]): Compiled {
  const addresses = new BlockList();
  const keys = new Set<string>();
  for (const item of items) {
    if (item.startsWith("key:")) {
      keys.add(item.slice(4));
      continue;
    }
    const [ip, prefix] = item.split("/") as [string, string | undefined];
    const type = isIP(ip) === 6 ? "ipv6" : "ipv4";
    if (prefix === undefined) addresses.addAddress(ip, type);
    else addresses.addSubnet(ip, Number(prefix), type);
  }
  return { items, addresses, keys };
}

export class TransferAcl {
  private readonly lists = new Map<string, Compiled>();

  /** `lists`: zone (or "*" for every zone) -> items, already validated. */
  constructor(lists: Readonly<Record<string, readonly string[]>> = {}) {
    for (const [zone, items] of Object.entries(lists)) this.set(zone, items);
  }

  set(zone: string, items: readonly string[]): void {
    if (items.length === 0) this.lists.delete(zone);
    else this.lists.set(zone, compile(parseAllowList(items)));
  }

  /** The zone's own list (without the "*" one). */
  list(zone: string): string[] {
    return this.lists.get(zone)?.items ?? [];
  }

  /** Every list, for saving. */
  all(): Record<string, string[]> {
    return Object.fromEntries([...this.lists].map(([z, c]) => [z, c.items]));
  }

  allows(zone: string, address: string, key: string | undefined): boolean {
    return [this.lists.get("*"), this.lists.get(zone)].some(
      (c) =>
        c !== undefined && (matchesAddress(c, address) || (key !== undefined && c.keys.has(key))),
    );
  }
}

function matchesAddress(c: Compiled, address: string): boolean {
  const plain =
    address.startsWith("::ffff:") && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
  const family = isIP(plain);
  if (family === 0) return false;
  return c.addresses.check(plain, family === 6 ? "ipv6" : "ipv4");
}
