// A worker thread of the simulator: one shard of a run (shards.ts), or fuzz
// cases handed out one at a time (fuzz.ts). Plain JavaScript so that it
// starts anywhere: it loads the TypeScript sources through tsx, as
// bin/propagate.mjs does.
import { parentPort, workerData } from "node:worker_threads";
import { register } from "tsx/esm/api";

register();
const { simulate } = await import("./run.ts");

/** The result without its predictions (functions do not cross threads). */
const portable = ({ predicted: _, ...result }) => result;

const failed = (err) => ({
  kind: "failed",
  message: err instanceof Error ? err.message : String(err),
  ...(err instanceof Error && err.stack ? { stack: err.stack } : {}),
});

/** The next message from the coordinator. */
const reply = () => new Promise((resolve) => parentPort.once("message", resolve));

try {
  if (workerData.kind === "fuzz") {
    const { fuzzCase, fuzzOptions } = await import("./fuzz.ts");
    for (;;) {
      parentPort.postMessage({ kind: "ready" });
      const { seed } = await reply();
      if (seed === undefined) break;
      const result = await simulate(fuzzOptions(fuzzCase(seed)));
      parentPort.postMessage({ kind: "case", seed, result: portable(result) });
    }
    parentPort.postMessage({ kind: "done" });
  } else {
    // The coordinator sends this shard's bounds once it has predicted the
    // whole run, whenever that is; every other message answers a window.
    const answers = [];
    let stopped = false;
    let bounds;
    const boundsSent = new Promise((resolve) => {
      bounds = resolve;
    });
    parentPort.on("message", (m) => {
      if (m.kind === "bounds") bounds({ maxMs: m.maxMs, byId: new Map(m.byId) });
      else answers.shift()?.(m);
    });
    const answer = () => new Promise((resolve) => answers.push(resolve));
    const result = await simulate({
      ...workerData.options,
      bounds: boundsSent,
      onProgress: (done) => parentPort.postMessage({ kind: "progress", done }),
      // The coordinator answers each window with the whole run's closing instant (run.ts).
      // A capped window closes at this shard's instant: it goes on, and the
      // answer, when it comes, only says whether another shard has stopped
      // the run. The loop settles instants without yielding to messages, so
      // a capped window yields once: a stop read then ends the run at the
      // next window, not at the last.
      windowClosed: async (atMs, broken, capped) => {
        const next = answer();
        parentPort.postMessage({ kind: "window", atMs, broken, capped });
        if (!capped) return (await next).end;
        void next.then((m) => {
          if (m.end === undefined) stopped = true;
        });
        await new Promise((resolve) => setImmediate(resolve));
        return stopped ? undefined : atMs;
      },
    });
    parentPort.postMessage({ kind: "done", result: portable(result) });
    parentPort.removeAllListeners("message");
    // The result is on its way (posted, so the coordinator gets it before
    // this thread's exit): the thread ends now, and gives its heap back (a
    // second or more at 50,000 nodes) while the other shards still run,
    // rather than when the coordinator has every result. tsx's loader port
    // would keep it alive until then.
    process.exit(0);
  }
} catch (err) {
  parentPort.postMessage(failed(err));
}
