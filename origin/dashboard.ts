/**
 * The dashboard (GET /dashboard): the topology as a graph, each change
 * spreading node by node, the CDF of time-to-fresh of the latest changes
 * beside the predicted one, and a form that writes a change. The page is
 * rendered here (origin/dashboard-page.ts); it then follows
 * GET /dashboard/events, server-sent events fed by the receipts:
 *
 * - `change` {changeId, zone, serial, explicit, committedAt, pending[], insync[]}: a change tracked;
 * - `receipt` {node, at, changeId? | zone+serial}: a node's ack (acks by
 *   serial are cumulative per zone, as the receipts count them);
 * - `node` {id, tier, parent}: a node registered (the page reloads).
 *
 * The page is open like the other reads; the form sends the write token the
 * operator types, and the write API checks it.
 */
import { type Context, Hono } from "hono";
import { streamSSE } from "hono/streaming";
import type { Clock } from "../core/clock.ts";
import { type DashboardInfo, renderDashboard } from "./dashboard-page.ts";
import type { ChangeStatus, NodeInfo, Receipts } from "./receipts.ts";

export type { DashboardInfo } from "./dashboard-page.ts";

export type DashboardEvent =
  | {
      type: "change";
      changeId: string;
      zone: string;
      serial: number;
      explicit: boolean;
      committedAt: number;
      pending: string[];
      /** Nodes already in sync when it was tracked (they acked its serial first). */
      insync: string[];
    }
  | { type: "receipt"; node: string; at: number; changeId?: string; zone?: string; serial?: number }
  | { type: "node"; id: string; tier: string; parent?: string };

/** How many recent changes the page shows (their receipts make the CDF). */
export const RECENT = 20;

/**
 * Receipts as a stream of events, from the registry's public methods
 * (wrapped on this instance), and the ids of the latest changes.
 */
export class ReceiptEvents {
  private readonly listeners = new Set<(e: DashboardEvent) => void>();
  private readonly recentIds: string[] = [];

  constructor(
    private readonly receipts: Receipts,
    clock: Clock,
  ) {
    const track = receipts.track.bind(receipts);
    receipts.track = (change) => {
      track(change);
      this.recentIds.push(change.changeId);
      if (this.recentIds.length > RECENT) this.recentIds.shift();
      const status = receipts.status(change.changeId);
      this.emit({
        type: "change",
        changeId: change.changeId,
        zone: change.zone,
        serial: change.serial,
        explicit: change.explicit === true,
        committedAt: change.ts,
        pending: status?.nodes.filter((n) => n.status === "PENDING").map((n) => n.id) ?? [],
        insync: status?.nodes.filter((n) => n.status === "INSYNC").map((n) => n.id) ?? [],
      });
    };
    const ack = receipts.ack.bind(receipts);
    receipts.ack = (node, zone, serial, at = clock.now()) => {
      const ok = ack(node, zone, serial, at);
      if (ok) this.emit({ type: "receipt", node, at, zone, serial });
      return ok;
    };
    const ackChange = receipts.ackChange.bind(receipts);
    receipts.ackChange = (node, changeId, at = clock.now()) => {
      const ok = ackChange(node, changeId, at);
      if (ok) this.emit({ type: "receipt", node, at, changeId });
      return ok;
    };
    const register = receipts.register.bind(receipts);
    receipts.register = (n: NodeInfo) => {
      const known = receipts.node(n.id) !== undefined;
      register(n);
      if (!known) {
        this.emit({ type: "node", id: n.id, tier: n.tier, ...(n.parent && { parent: n.parent }) });
      }
    };
  }

  /** The latest changes still known to the receipts, oldest first. */
  recent(): ChangeStatus[] {
    return this.recentIds.flatMap((id) => {
      const s = this.receipts.status(id);
      return s ? [s] : [];
    });
  }

  subscribe(listener: (e: DashboardEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(e: DashboardEvent): void {
    for (const l of this.listeners) l(e);
  }
}

export interface DashboardOptions {
  receipts: Receipts;
  clock: Clock;
  originId: string;
  zones: () => string[];
  info?: DashboardInfo;
}

export function dashboardRoutes(o: DashboardOptions): Hono {
  const events = new ReceiptEvents(o.receipts, o.clock);
  const app = new Hono();
  app.get("/dashboard", (c) =>
    c.html(
      renderDashboard({
        originId: o.originId,
        nodes: o.receipts.nodes(),
        recent: events.recent(),
        zones: o.zones(),
        ...(o.info && { info: o.info }),
      }),
    ),
  );
  app.get("/dashboard/events", (c) => stream(c, events));
  return app;
}

/** One SSE connection: every event as it happens, a comment every 15 s so proxies keep it open. */
function stream(c: Context, events: ReceiptEvents): Response {
  return streamSSE(c, async (s) => {
    const queue: DashboardEvent[] = [];
    let wake: (() => void) | undefined;
    const unsubscribe = events.subscribe((e) => {
      queue.push(e);
      wake?.();
    });
    let open = true;
    s.onAbort(() => {
      open = false;
      unsubscribe();
      wake?.();
    });
    await s.writeSSE({ event: "hello", data: "{}" });
    while (open) {
      const e = queue.shift();
      if (e) {
        await s.writeSSE({ event: e.type, data: JSON.stringify(e) });
        continue;
      }
      await new Promise<void>((resolve) => {
        const keepAlive = setTimeout(() => {
          wake = undefined;
          resolve();
        }, 15_000);
        wake = () => {
          clearTimeout(keepAlive);
          wake = undefined;
          resolve();
        };
      });
      if (open && queue.length === 0) await s.write(": keep-alive\n\n");
    }
  });
}
