/**
 * What a simulator worker thread runs: one shard of a run (shards.ts), or
 * fuzz cases handed out one at a time (fuzz.ts). Started as a bundle of
 * plain JavaScript when the coordinator could make one (shards.ts
 * `prepareWorkers`), else through tsx (worker.mjs).
 */
import { parentPort, workerData } from "node:worker_threads";
import { fuzzCase, fuzzOptions } from "./fuzz.ts";
import { type Bounds, type SimOptions, type SimResult, simulate } from "./run.ts";

const port = parentPort!;

/** The result without its predictions (functions do not cross threads). */
const portable = ({ predicted: _, ...result }: SimResult) => result;

const failed = (err: unknown) => ({
  kind: "failed",
  message: err instanceof Error ? err.message : String(err),
  ...(err instanceof Error && err.stack ? { stack: err.stack } : {}),
});

/** The next message from the coordinator. */
const reply = () => new Promise<{ seed?: number }>((resolve) => port.once("message", resolve));

interface WindowAnswer {
  end?: number;
}

try {
  if (workerData.kind === "fuzz") {
    for (;;) {
      port.postMessage({ kind: "ready" });
      const { seed } = await reply();
      if (seed === undefined) break;
      const result = await simulate(fuzzOptions(fuzzCase(seed)));
      port.postMessage({ kind: "case", seed, result: portable(result) });
    }
    port.postMessage({ kind: "done" });
  } else {
    // The coordinator sends this shard's bounds once it has predicted the
    // whole run, whenever that is; every other message answers a window.
    const answers: ((m: WindowAnswer) => void)[] = [];
    let stopped = false;
    let bounds: (b: Bounds) => void = () => {};
    const boundsSent = new Promise<Bounds>((resolve) => {
      bounds = resolve;
    });
    port.on("message", (m: { kind?: string; maxMs: number; byId: [string, number][] }) => {
      if (m.kind === "bounds") bounds({ maxMs: m.maxMs, byId: new Map(m.byId) });
      else answers.shift()?.(m as WindowAnswer);
    });
    const answer = () => new Promise<WindowAnswer>((resolve) => answers.push(resolve));
    const options = workerData.options as SimOptions;
    const result = await simulate({
      ...options,
      bounds: boundsSent,
      onProgress: (done) => port.postMessage({ kind: "progress", done }),
      // The coordinator answers each window with the whole run's closing instant (run.ts).
      // A capped window closes at this shard's instant: it goes on, and the
      // answer, when it comes, only says whether another shard has stopped
      // the run. The loop settles instants without yielding to messages, so
      // a capped window yields once: a stop read then ends the run at the
      // next window, not at the last.
      windowClosed: async (atMs, broken, capped) => {
        const next = answer();
        port.postMessage({ kind: "window", atMs, broken, capped });
        if (!capped) return (await next).end;
        void next.then((m) => {
          if (m.end === undefined) stopped = true;
        });
        await new Promise((resolve) => setImmediate(resolve));
        return stopped ? undefined : atMs;
      },
    });
    port.postMessage({ kind: "done", result: portable(result) });
    port.removeAllListeners("message");
    // The result is on its way (posted, so the coordinator gets it before
    // this thread's exit): the thread ends now, and gives its heap back (a
    // second or more at 50,000 nodes) while the other shards still run,
    // rather than when the coordinator has every result. tsx's loader port
    // would keep it alive until then.
    process.exit(0);
  }
} catch (err) {
  port.postMessage(failed(err));
}
