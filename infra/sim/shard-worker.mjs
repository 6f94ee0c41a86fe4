// A worker thread that runs one shard of a simulation (shards.ts). Plain
// JavaScript so that it starts anywhere: it loads the TypeScript sources
// through tsx, as bin/propagate.mjs does.
import { parentPort, workerData } from "node:worker_threads";
import { register } from "tsx/esm/api";

register();
const { simulate } = await import("./run.ts");
try {
  const { predicted: _, ...result } = await simulate({
    ...workerData,
    onProgress: (done) => parentPort.postMessage({ kind: "progress", done }),
    // The coordinator answers each window with the whole run's closing instant (run.ts).
    windowClosed: (atMs, broken) =>
      new Promise((resolve) => {
        parentPort.once("message", (m) => resolve(m.end));
        parentPort.postMessage({ kind: "window", atMs, broken });
      }),
  });
  parentPort.postMessage({ kind: "done", result });
} catch (err) {
  parentPort.postMessage({
    kind: "failed",
    message: err instanceof Error ? err.message : String(err),
    ...(err instanceof Error && err.stack ? { stack: err.stack } : {}),
  });
}
