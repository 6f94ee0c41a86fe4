/**
 * `propagate up --prometheus FILE`: a Prometheus scrape config for every node
 * of the running topology. One job, one static target per node (its
 * /metrics: the origin's and an edge's HTTP address, a resolver's admin
 * address), labelled with its tier and kind; every sample already carries
 * its `node` label. The interval is short because changes travel in
 * milliseconds to seconds, not minutes.
 */
import { writeFile } from "node:fs/promises";
import type { RunningNode } from "./nodes.ts";

export const SCRAPE_INTERVAL = "1s";

type Scraped = Pick<RunningNode, "id" | "kind" | "tier" | "address" | "extra">;

/** host:port of a node's /metrics; undefined for a resolver without an admin endpoint. */
export function metricsTarget(n: Scraped): string | undefined {
  const base = n.kind === "resolver" ? n.extra.admin : n.address;
  return base === undefined ? undefined : new URL(base).host;
}

/** The scrape config as YAML (quoted scalars only, so no value needs escaping rules). */
export function scrapeConfig(nodes: readonly Scraped[], interval = SCRAPE_INTERVAL): string {
  const q = (s: string) => JSON.stringify(s);
  const lines = [
    "# Written by propagate up --prometheus: one target per node of the topology.",
    "global:",
    `  scrape_interval: ${q(interval)}`,
    `  evaluation_interval: ${q(interval)}`,
    "scrape_configs:",
    `  - job_name: "propagate"`,
    `    metrics_path: "/metrics"`,
    "    static_configs:",
  ];
  for (const n of nodes) {
    const target = metricsTarget(n);
    if (target === undefined) continue;
    lines.push(
      `      - targets: [${q(target)}]`,
      `        labels: { tier: ${q(n.tier)}, kind: ${q(n.kind)}, id: ${q(n.id)} }`,
    );
  }
  return `${lines.join("\n")}\n`;
}

export async function writeScrapeConfig(file: string, nodes: readonly Scraped[]): Promise<void> {
  await writeFile(file, scrapeConfig(nodes));
}
