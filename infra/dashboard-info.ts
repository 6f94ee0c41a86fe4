/**
 * What the origin's dashboard needs from the topology, which the origin does
 * not read: each node's link described, and the predicted CDF of
 * time-to-fresh (infra/predict.ts, every node asked at every instant, so it
 * compares with the receipts' times).
 */
import type { Clock } from "../core/clock.ts";
import { LinkDelay } from "../core/delay.ts";
import type { DashboardInfo } from "../origin/dashboard.ts";
import { pooledCurve, predict, predictOptions } from "./predict.ts";
import type { Topology } from "./topology.ts";

export function dashboardInfo(t: Topology, clock: Clock): DashboardInfo {
  const links: Record<string, string> = {};
  for (const n of [...t.edges, ...t.resolvers]) {
    links[n.id] = new LinkDelay(n.link ?? t.defaults.link, 0, clock).describe();
  }
  const predicted = pooledCurve(predict(t, predictOptions(t, { probeMs: 0 })));
  return { links, predicted };
}
