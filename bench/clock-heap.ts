// What the virtual clock costs a fired timer with many pending, as the
// simulator's clock has while a fleet fills (every resolver's first fill at
// once): `npx tsx bench/clock-heap.ts [checkout ...]` runs the same schedule
// on each checkout's core/clock.ts (this one when none is named), three
// rounds interleaved, and prints ns per fired timer at 1,000 and 100,000
// pending. Each fired timer sets a new one a random delay ahead; between
// fires, four random reads of a 64 MB array stand for the engines' own
// cache misses (~700 ns of each figure on this host), which evict the
// heap as the simulator's work does. In process, no load generator: a
// data structure's cost, read against the other checkout's in the same run
// (bench/results/simulate.md, "Objects per node read from typed arrays").
import { resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { machine } from "./support.ts";

type ClockModule = typeof import("../core/clock.ts");

const dirs = process.argv.slice(2);
const checkouts = dirs.length > 0 ? dirs : [fileURLToPath(new URL("..", import.meta.url))];
const modules: [string, ClockModule][] = [];
for (const dir of checkouts) {
  const url = pathToFileURL(resolve(dir, "core/clock.ts")).href;
  modules.push([dir, (await import(url)) as ClockModule]);
}

const JUNK = new Float64Array(8 << 20);
const FIRES = 2_000_000;

/** ns per fired timer with `pending` timers in the clock. */
function run(mod: ClockModule, pending: number): number {
  const clock = new mod.VirtualClock(0);
  let seed = 12345;
  const rnd = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  let left = FIRES;
  const fire = () => {
    if (--left > 0) clock.setTimeout(fire, rnd() * 300_000);
  };
  for (let i = 0; i < pending; i++) clock.setTimeout(fire, rnd() * 300_000);
  let sink = 0;
  const t0 = performance.now();
  while (left > 0) {
    clock.advanceSync(50);
    for (let k = 0; k < 4; k++) sink += JUNK[(rnd() * JUNK.length) | 0]!;
  }
  const ns = ((performance.now() - t0) / FIRES) * 1e6;
  // The reads kept: a sum nobody uses could be dropped by the compiler.
  if (Number.isNaN(sink)) throw new Error("unreachable");
  return ns;
}

console.log(`machine: ${machine()}`);
for (const pending of [1_000, 100_000]) {
  for (let round = 0; round < 3; round++) {
    const cells = modules.map(([dir, mod]) => `${dir}: ${run(mod, pending).toFixed(0)} ns`);
    console.log(`${pending} pending, round ${round + 1}: ${cells.join(", ")}`);
  }
}
