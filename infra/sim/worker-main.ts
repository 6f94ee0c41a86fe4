/**
 * What a simulator worker runs, in a child process of the coordinator's
 * (shards.ts `SimWorker`): one shard of a run (shards.ts), or fuzz cases
 * handed out one at a time (fuzz.ts). What to run is V8-serialized in the
 * file its argument names; then every message crosses the IPC channel by
 * V8's serializer (`serialization: "advanced"`), as a worker thread's would.
 * Started as a bundle of plain JavaScript when the coordinator could make
 * one (shards.ts `prepareWorkers`), else through tsx (worker.mjs).
 */
import { readFileSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import { deserialize } from "node:v8";
import { fuzzCase, fuzzOptions } from "./fuzz.ts";
import { packNodes } from "./packed-nodes.ts";
import { type Bounds, type SimOptions, type SimResult, simulate } from "./run.ts";
import { shardOptions, type WorkerData } from "./shards.ts";

if (process.send === undefined) {
  throw new Error("a simulator worker runs as a child process of `propagate simulate`, with IPC");
}

/** Sends to the coordinator; resolves once the message is written to the channel. */
const send = (m: unknown) =>
  new Promise<void>((resolve, reject) => {
    process.send!(m, (err: Error | null) => (err ? reject(err) : resolve()));
  });

/** Sends what needs no answer nor order after it: a closed channel ends the process (below). */
const post = (m: unknown) => void send(m).catch(() => {});

/** The result without its predictions (functions do not cross). */
const portable = ({ predicted: _, ...result }: SimResult) => result;

const failed = (err: unknown) => ({
  kind: "failed",
  message: err instanceof Error ? err.message : String(err),
  ...(err instanceof Error && err.stack ? { stack: err.stack } : {}),
});

interface WindowAnswer {
  end?: number;
}

// The coordinator gone (its channel closed): nothing left to run for.
process.on("disconnect", () => process.exit(1));

try {
  const file = process.argv[2];
  if (file === undefined) throw new Error("a simulator worker takes the file of what it runs");
  const data = deserialize(readFileSync(file)) as WorkerData;
  rmSync(dirname(file), { recursive: true, force: true });
  if (data.kind === "fuzz") {
    for (;;) {
      // Listening before asking: the answer is the one message the coordinator sends.
      const reply = new Promise<{ seed?: number }>((resolve) => process.once("message", resolve));
      await send({ kind: "ready" });
      const { seed } = await reply;
      if (seed === undefined) break;
      const result = await simulate(fuzzOptions(fuzzCase(seed)));
      await send({ kind: "case", seed, result: portable(result) });
    }
    await send({ kind: "done" });
  } else {
    // The coordinator sends this shard's bounds once it has predicted the
    // whole run, whenever that is; every other message answers a window.
    const answers: ((m: WindowAnswer) => void)[] = [];
    let stopped = false;
    let bounds: (b: Bounds) => void = () => {};
    const boundsSent = new Promise<Bounds>((resolve) => {
      bounds = resolve;
    });
    // Listening from the start (what to run came from the file): no message is missed.
    process.on("message", (m: { kind?: string; maxMs: number; byId: [string, number][] }) => {
      if (m.kind === "bounds") bounds({ maxMs: m.maxMs, byId: new Map(m.byId) });
      else answers.shift()?.(m as WindowAnswer);
    });
    const answer = () => new Promise<WindowAnswer>((resolve) => answers.push(resolve));
    const options = shardOptions(deserialize(data.options) as SimOptions, data.shard, data.of);
    const result = await simulate({
      ...options,
      bounds: boundsSent,
      onProgress: (done) => post({ kind: "progress", done }),
      // The coordinator answers each window with the whole run's closing instant (run.ts).
      // A capped window closes at this shard's instant: it goes on, and the
      // answer, when it comes, only says whether another shard has stopped
      // the run. The loop settles instants without yielding to messages, so
      // a capped window yields once: a stop read then ends the run at the
      // next window, not at the last.
      windowClosed: async (atMs, broken, capped) => {
        const next = answer();
        post({ kind: "window", atMs, broken, capped });
        if (!capped) return (await next).end;
        void next.then((m) => {
          if (m.end === undefined) stopped = true;
        });
        await new Promise((resolve) => setImmediate(resolve));
        return stopped ? undefined : atMs;
      },
    });
    const { nodes, ...rest } = portable(result);
    await send({ kind: "done", result: rest, nodes: packNodes(nodes) });
  }
  // Sent (written to the channel): the process ends now, and the kernel
  // takes its memory back at once (shards.ts `SimWorker`).
  process.exit(0);
} catch (err) {
  await send(failed(err)).catch(() => {});
  process.exit(1);
}
