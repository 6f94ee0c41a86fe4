// How much memory first touched costs on this host: 16 Buffers of 128 MB
// (2 GB) allocated, then each filled once. On a machine whose memory is
// backed as it is touched (a virtual machine), the fill is a page fault per
// 4 KB page; compare `/usr/bin/time -f "%S s sys %R faults" node
// bench/touch-memory.mjs` with the simulator's faults (bench/results/simulate.md,
// "Page faults").
const t0 = performance.now();
const buffers = [];
for (let i = 0; i < 16; i++) buffers.push(Buffer.alloc(128 * 1024 * 1024));
const t1 = performance.now();
for (const b of buffers) b.fill(1);
const t2 = performance.now();
console.log(
  `allocated 2 GB in ${(t1 - t0).toFixed(0)} ms, touched it in ${(t2 - t1).toFixed(0)} ms`,
);
