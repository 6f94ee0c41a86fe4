// What this host gives a run right now, to read a simulator timing by: the
// time of a fixed arithmetic loop (the core) and of ten million dependent
// random reads over 128 MB (the memory: one cycle through a shuffled array,
// so each read waits for the last). The simulator's hot paths read one
// resolver's objects among a worker's gigabyte of heap, so they follow the
// second figure; on this VM it was 235-310 ns a read (a quiet bare-metal
// EPYC: ~90 ns) while the same hour took 66.6-106.9 s (bench/results/simulate.md,
// "The start of a shard"). It tells what the host's memory costs, not how a
// run will go: the host's spells come and go within an hour (sim-ab.ts
// takes it before each run). `node bench/host-latency.mjs`.
const t0 = performance.now();
let x = 1;
for (let i = 0; i < 3e8; i++) x = (x * 1103515245 + 12345) | 0;
const coreMs = performance.now() - t0;

const n = 1 << 25;
const next = new Int32Array(n);
for (let i = 0; i < n; i++) next[i] = i;
// Sattolo's shuffle: one cycle through every slot, from a fixed seed.
let seed = 12345;
for (let i = n - 1; i > 0; i--) {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  const j = seed % i;
  const t = next[i];
  next[i] = next[j];
  next[j] = t;
}
const reads = 1e7;
const t1 = performance.now();
let at = 0;
for (let i = 0; i < reads; i++) at = next[at];
const memMs = performance.now() - t1;
console.log(
  `core: ${coreMs.toFixed(0)} ms for 3e8 steps; memory: ${((memMs * 1e6) / reads).toFixed(0)} ns a dependent random read over 128 MB (${at})`,
);
