/**
 * Receipts: which registered cache node has applied which change.
 * Route 53 reports PENDING -> INSYNC for a change as a whole; here each node
 * reports for itself, and a change is converged once every node that was
 * registered when it was committed is in sync. Acks are cumulative per zone:
 * a node in sync with serial N of a zone is in sync with every earlier change.
 *
 * Leases: a node renews its registration (registering, acking or POST
 * /v1/nodes/{id}/lease) within `leaseMs`; past it the node is LOST. A LOST
 * node's pending receipts read LOST rather than PENDING, and do not hold a
 * change back: the change reads INSYNC once every live node is, with the
 * lost nodes listed. A lost node that renews is live again.
 */
import type { Clock } from "../core/clock.ts";
import { serialGte } from "../core/serial.ts";

export interface NodeInfo {
  id: string;
  /** "regional", "edge", "resolver", ... : free text used in reports. */
  tier: string;
  /** Where the node answers (URL or host:port). */
  address: string;
  /** Id of the node it fetches from. */
  parent?: string | undefined;
  /** Zones it serves (a real secondary); absent: every zone. Other zones' changes skip it. */
  zones?: readonly string[] | undefined;
}

export interface CommittedChange {
  changeId: string;
  zone: string;
  serial: number;
  /** Commit time (ms). */
  ts: number;
  /** An operator's purge: acked by change id only, never by a serial. */
  explicit?: boolean;
}

export interface NodeReceipt {
  id: string;
  tier: string;
  status: "PENDING" | "INSYNC" | "LOST";
  /** When the node reported the change applied (ms), and the delay since commit. */
  syncedAt?: number;
  latencyMs?: number;
}

export interface ChangeStatus {
  changeId: string;
  /** A committed change, or an operator's purge. */
  kind: "change" | "purge";
  zone: string;
  serial: number;
  committedAt: number;
  status: "PENDING" | "INSYNC";
  convergedAt?: number;
  nodes: NodeReceipt[];
  /** Nodes whose lease ran out before they acked: not known to hold the change. */
  lost?: string[];
}

/** Default lease: a node that has not renewed for this long is LOST. */
export const DEFAULT_LEASE_MS = 30_000;

interface Tracked extends CommittedChange {
  /** Node id -> sync time; pending nodes map to undefined. */
  receipts: Map<string, number | undefined>;
  /** Receipts still undefined, and the latest sync time so far: convergence without a rescan. */
  pending: number;
  last: number;
  convergedAt?: number;
}

export class Receipts {
  private readonly registry = new Map<string, NodeInfo>();
  private readonly changes = new Map<string, Tracked>();
  /** Per zone, changes in commit order, for cumulative acks. */
  private readonly byZone = new Map<string, Tracked[]>();
  /**
   * Per zone, the changes not yet converged, in commit order: what an ack can
   * still change. A converged change has every receipt set, so skipping it is
   * exact, and an ack costs the changes in flight, not the `keep` remembered.
   */
  private readonly open = new Map<string, Tracked[]>();
  /** Per node and zone, the highest serial acked. */
  private readonly acked = new Map<string, Map<string, number>>();

  /** Per node, when its lease was last renewed. */
  private readonly renewed = new Map<string, number>();

  constructor(
    private readonly clock: Clock,
    /** How many changes are kept for status queries; older ones are forgotten. */
    private readonly keep = 10_000,
    /** A node that has not renewed for this long is LOST. */
    readonly leaseMs = DEFAULT_LEASE_MS,
  ) {}

  register(node: NodeInfo): void {
    this.registry.set(node.id, { ...node });
    this.renewed.set(node.id, this.clock.now());
  }

  /** Renews a node's lease; false for a node not registered. */
  renew(id: string): boolean {
    if (!this.registry.has(id)) return false;
    this.renewed.set(id, this.clock.now());
    return true;
  }

  /** True when a registered node's lease has run out. */
  isLost(id: string): boolean {
    const at = this.renewed.get(id);
    return at !== undefined && this.clock.now() - at > this.leaseMs;
  }

  /** Forgets a node; changes pending only on it become converged. */
  deregister(id: string): boolean {
    if (!this.registry.delete(id)) return false;
    this.acked.delete(id);
    this.renewed.delete(id);
    for (const change of this.changes.values()) {
      change.receipts.delete(id);
      this.checkConverged(change);
    }
    return true;
  }

  nodes(): NodeInfo[] {
    return [...this.registry.values()];
  }

  node(id: string): NodeInfo | undefined {
    return this.registry.get(id);
  }

  /** Starts tracking a committed change against every node registered now. */
  track(change: CommittedChange): void {
    const receipts = new Map<string, number | undefined>();
    let pending = 0;
    for (const [id, node] of this.registry) {
      if (node.zones && !node.zones.includes(change.zone)) continue;
      const ackedSerial = this.acked.get(id)?.get(change.zone);
      // A node may report a serial before the commit hook ran (fast in-process bus).
      const early =
        !change.explicit && ackedSerial !== undefined && serialGte(ackedSerial, change.serial);
      receipts.set(id, early ? change.ts : undefined);
      if (!early) pending++;
    }
    const tracked: Tracked = { ...change, receipts, pending, last: change.ts };
    this.changes.set(change.changeId, tracked);
    const list = this.byZone.get(change.zone) ?? [];
    list.push(tracked);
    this.byZone.set(change.zone, list);
    if (pending === 0) tracked.convergedAt = change.ts;
    else {
      const open = this.open.get(change.zone) ?? [];
      open.push(tracked);
      this.open.set(change.zone, open);
    }
    this.evict();
  }

  /**
   * Records that `nodeId` has applied `zone` up to `serial`: every tracked change
   * of that zone at or below it turns in sync for the node. Unknown nodes are
   * refused so that a typo cannot fake convergence.
   */
  ack(nodeId: string, zone: string, serial: number, at = this.clock.now()): boolean {
    if (!this.renew(nodeId)) return false;
    const perZone = this.acked.get(nodeId) ?? new Map<string, number>();
    const prev = perZone.get(zone);
    if (prev === undefined || serialGte(serial, prev)) perZone.set(zone, serial);
    this.acked.set(nodeId, perZone);
    const open = this.open.get(zone);
    if (open) {
      let kept = 0;
      for (const change of open) {
        if (!change.explicit && serialGte(serial, change.serial)) this.insync(change, nodeId, at);
        if (change.convergedAt === undefined) open[kept++] = change;
      }
      open.length = kept;
    }
    return true;
  }

  /**
   * The highest serial of a change still tracked for `zone` (operator purges
   * aside), also once the zone is deleted: its deletion is such a change, and
   * a node that applied it acks it.
   */
  latestSerial(zone: string): number | undefined {
    const list = this.byZone.get(zone) ?? [];
    for (let i = list.length - 1; i >= 0; i--) if (!list[i]!.explicit) return list[i]!.serial;
    return undefined;
  }

  /** Records that `nodeId` has applied one change or purge, named by its id. */
  ackChange(nodeId: string, changeId: string, at = this.clock.now()): boolean {
    const change = this.changes.get(changeId);
    if (!change || !this.renew(nodeId)) return false;
    this.insync(change, nodeId, at);
    return true;
  }

  private insync(change: Tracked, nodeId: string, at: number): void {
    if (change.receipts.has(nodeId) && change.receipts.get(nodeId) === undefined) {
      const t = Math.max(at, change.ts);
      change.receipts.set(nodeId, t);
      if (t > change.last) change.last = t;
      if (--change.pending === 0) change.convergedAt = change.last;
    }
  }

  status(changeId: string): ChangeStatus | undefined {
    const c = this.changes.get(changeId);
    if (!c) return undefined;
    const nodes: NodeReceipt[] = [...c.receipts].map(([id, syncedAt]) => ({
      id,
      tier: this.registry.get(id)?.tier ?? "unknown",
      status: syncedAt !== undefined ? "INSYNC" : this.isLost(id) ? "LOST" : "PENDING",
      ...(syncedAt !== undefined ? { syncedAt, latencyMs: syncedAt - c.ts } : {}),
    }));
    const lost = nodes.filter((n) => n.status === "LOST").map((n) => n.id);
    // Only live nodes hold a change back; the lost ones are named instead.
    const convergedAt =
      c.convergedAt ??
      (nodes.some((n) => n.status === "PENDING")
        ? undefined
        : Math.max(c.ts, ...nodes.map((n) => n.syncedAt ?? c.ts)));
    return {
      changeId: c.changeId,
      kind: c.explicit ? "purge" : "change",
      zone: c.zone,
      serial: c.serial,
      committedAt: c.ts,
      status: convergedAt === undefined ? "PENDING" : "INSYNC",
      ...(convergedAt !== undefined ? { convergedAt } : {}),
      nodes,
      ...(lost.length > 0 ? { lost } : {}),
    };
  }

  /** A change converges when no receipt is pending, at the latest sync time. */
  private checkConverged(change: Tracked): void {
    if (change.convergedAt !== undefined) return;
    let last = change.ts;
    let pending = 0;
    for (const t of change.receipts.values()) {
      if (t === undefined) pending++;
      else if (t > last) last = t;
    }
    change.pending = pending;
    change.last = last;
    if (pending === 0) change.convergedAt = last;
  }

  private evict(): void {
    while (this.changes.size > this.keep) {
      const oldest = this.changes.keys().next().value;
      if (oldest === undefined) return;
      const c = this.changes.get(oldest)!;
      this.changes.delete(oldest);
      const list = this.byZone.get(c.zone);
      if (list && list[0] === c) list.shift();
      // Both lists are in commit order: a change evicted before it converged is the open head.
      const open = this.open.get(c.zone);
      if (open && open[0] === c) open.shift();
    }
  }
}
