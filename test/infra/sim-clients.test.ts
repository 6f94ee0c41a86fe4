/**
 * infra/sim/clients.ts: client arrivals that a held answer settles are
 * counted rather than fired, and the arrivals that are fired, and when, are
 * the ones the unheld load fires: held runs end at the answer's end, at a
 * release (the answer ends early), and are counted at a settle.
 */
import { describe, expect, it } from "vitest";
import { ClientLoad } from "../../infra/sim/clients.ts";
import { SimLoop } from "../../infra/sim/loop.ts";

const START = 1_000_000;
const END = START + 600_000;
const RATE = 0.5;

/** Per node, the instants its answer is held: [from, until) windows. */
const WINDOWS: [number, number][][] = [
  [[START + 10_000, START + 200_000]],
  [
    [START + 50_000, START + 120_000],
    [START + 300_000, START + 500_000],
  ],
  // Open at the mid-run settle, and past the end: only a settle counts those.
  [
    [START + 200_000, START + 300_000],
    [START + 450_000, END + 50_000],
  ],
];
/** Node 1's first window ends early here: its answer is dropped (a purge, an upstream call). */
const RELEASE = { node: 1, at: START + 90_000 };

function heldUntil(node: number, now: number): number {
  if (node === RELEASE.node && now >= RELEASE.at && now < START + 120_000) return Number.NaN;
  const w = WINDOWS[node]!.find(([from, until]) => now >= from && now < until);
  return w ? w[1] : Number.NaN;
}

async function run(hold: boolean) {
  const loop = new SimLoop(START, true);
  const fired: [number, number][] = [];
  const counted = [0, 0, 0];
  const clients = new ClientLoad(loop, 7, true, (i) => {
    fired.push([i, loop.now()]);
  });
  if (hold) {
    clients.held = {
      until: (i) => heldUntil(i, loop.now()),
      count: (i, n) => {
        counted[i]! += n;
      },
    };
  }
  for (let i = 0; i < 3; i++) clients.add(i, `res-${i}`, RATE);
  loop.at(RELEASE.at, () => clients.releaseNode(RELEASE.node));
  await loop.runUntil(START + 250_000);
  clients.settle();
  const atSettle = [...counted];
  await loop.runUntil(END);
  clients.settle();
  return { fired, counted, atSettle, stats: clients.stats };
}

describe("ClientLoad: held arrivals", () => {
  it("fires what the unheld load fires, less what a held answer settles, which it counts", async () => {
    const all = await run(false);
    const held = await run(true);
    // Those fired are the unheld load's, in its order and at its instants.
    const key = ([i, t]: [number, number]) => `${i}@${t}`;
    const left = new Set(held.fired.map(key));
    const skipped = all.fired.filter((a) => !left.has(key(a)));
    expect(all.fired.filter((a) => left.has(key(a)))).toEqual(held.fired);
    // What was not fired was counted, node by node, and each was inside a held window.
    for (let i = 0; i < 3; i++) {
      expect(held.counted[i]).toBe(skipped.filter(([n]) => n === i).length);
    }
    for (const [i, t] of skipped) expect(Number.isNaN(heldUntil(i, t))).toBe(false);
    expect(held.stats.held).toBe(skipped.length);
    expect(held.stats.held).toBeGreaterThan(20);
    // The release turned a held arrival back into one that fires; after it, node 1's
    // arrivals before its window's old end fire again.
    expect(held.stats.released).toBeGreaterThan(0);
    expect(
      held.fired.some(([i, t]) => i === RELEASE.node && t > RELEASE.at && t < START + 120_000),
    ).toBe(true);
    // A settle counts what came before it: node 0's window ended before the first,
    // node 2's was open across it (and its last one across the end of the run).
    expect(held.atSettle[0]).toBe(held.counted[0]);
    expect(held.atSettle[1]).toBeLessThan(held.counted[1]!);
    expect(held.atSettle[2]).toBeGreaterThan(0);
    expect(held.atSettle[2]).toBeLessThan(held.counted[2]!);
  });
});
