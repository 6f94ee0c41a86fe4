/**
 * Makes the bus a topology names: "memory", "off" (none) or a Redis URL: one
 * server (redis://, rediss://) or a Redis Cluster (redis+cluster://h1:p1,h2:p2,
 * or redis:// URLs joined by commas), see core/redis-bus.ts clusterSeeds.
 */
import { MemoryBus, type PurgeBus } from "../core/bus.ts";
import type { Clock } from "../core/clock.ts";

export async function createBus(
  spec: string,
  clock: Clock,
  log?: (message: string) => void,
): Promise<PurgeBus | undefined> {
  if (spec === "off") return undefined;
  if (spec === "memory") return new MemoryBus({ clock });
  const { RedisBus } = await import("../core/redis-bus.ts");
  return new RedisBus({ url: spec, clock, ...(log && { log }) });
}
