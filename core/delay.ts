/**
 * The delay model of one link: a latency distribution, a loss probability and
 * partition windows, drawn from a seeded stream so a run can be replayed.
 * It applies alike to purge deliveries (the bus) and to upstream fetches
 * (`wrapFetch`), and gives the predictor closed forms (mean, quantiles, CDF).
 *
 * Semantics, chosen once:
 * - latency is one-way, from sender to receiver; for a fetch it is added once,
 *   before the request leaves (the response travels free);
 * - a message is lost with probability `loss`, decided when it is sent;
 * - a message sent while the link is partitioned is dropped, not held: the
 *   receiver must catch up by anti-entropy, which is what partitions exercise;
 * - partition windows are in ms relative to the run's start (`startMs`, by
 *   default the clock's time when the LinkDelay is made), so one topology file
 *   describes every run.
 */
import { z } from "zod";
import type { Clock, TimerId } from "./clock.ts";
import { issueLines } from "./issue.ts";
import { normalCdf, normalPdf, normalQuantile, Random, type Seed } from "./random.ts";

const ms = z.number().finite().min(0);

const fixedSchema = z.strictObject({ kind: z.literal("fixed"), ms });
const uniformSchema = z
  .strictObject({ kind: z.literal("uniform"), minMs: ms, maxMs: ms })
  .refine((v) => v.maxMs >= v.minMs, { message: "maxMs must be >= minMs", path: ["maxMs"] });
/** Truncated at 0 (resampled, not clamped), so a latency is never negative. */
const normalSchema = z.strictObject({ kind: z.literal("normal"), meanMs: ms, stddevMs: ms });
const lognormalSchema = z.strictObject({
  kind: z.literal("lognormal"),
  medianMs: z.number().finite().positive(),
  sigma: z.number().finite().min(0).max(5),
});

export const latencySchema = z.discriminatedUnion("kind", [
  fixedSchema,
  uniformSchema,
  normalSchema,
  lognormalSchema,
]);
export type Latency = z.output<typeof latencySchema>;

export const partitionSchema = z
  .strictObject({ startMs: ms, endMs: ms })
  .refine((w) => w.endMs > w.startMs, { message: "endMs must be > startMs", path: ["endMs"] });

/** A link's model as a topology file states it; every field has a default. */
export const linkModelSchema = z.strictObject({
  /** Default: fixed 0 ms. */
  latency: latencySchema.default({ kind: "fixed", ms: 0 }),
  /** Probability in [0, 1] that a message is lost. Default 0. */
  loss: z.number().min(0).max(1).default(0),
  /** Windows [startMs, endMs) relative to the run's start. Default none. */
  partitions: z.array(partitionSchema).default([]),
  /** Overrides the seed the launcher derives for this link. */
  seed: z.union([z.number().int(), z.string().min(1)]).optional(),
});
export type LinkModel = z.output<typeof linkModelSchema>;
export type LinkModelInput = z.input<typeof linkModelSchema>;

export class DelayModelError extends Error {
  override readonly name = "DelayModelError";
}

/** Validates a link model; the error names each bad field, e.g. `link "edge-1": latency.sigma: ...`. */
export function parseLinkModel(input: unknown, where = "link"): LinkModel {
  const result = linkModelSchema.safeParse(input ?? {});
  if (result.success) return result.data;
  const lines = issueLines(result.error.issues, "(model)");
  throw new DelayModelError(`${where}: invalid delay model: ${lines.join("; ")}`);
}

/**
 * Each model object parsed once: every node of a topology without a link of
 * its own shares the default's, and a link per node each parsing it made a
 * schema pass and three objects per node (the simulator's 100,000
 * resolvers keep theirs for the whole run). The parsed model is read, never
 * written.
 */
const parsedModels = new WeakMap<object, LinkModel>();

function sharedLinkModel(input: LinkModel | LinkModelInput): LinkModel {
  if (input === null || typeof input !== "object") return parseLinkModel(input);
  let model = parsedModels.get(input);
  if (model === undefined) {
    model = parseLinkModel(input);
    parsedModels.set(input, model);
  }
  return model;
}

export type DropReason = "loss" | "partition";
export type LinkSample =
  | { dropped: false; delayMs: number }
  | { dropped: true; reason: DropReason };

export interface LinkDelayOptions {
  /** Origin of the partition windows; default: clock.now() at construction. */
  startMs?: number;
}

export class LinkDelay {
  readonly model: LinkModel;
  /** The effective seed: the model's own, else the one passed in. */
  readonly seed: Seed;
  readonly startMs: number;
  private readonly random: Random;

  /** `seed` is usually hashSeed(runSeed, linkName); a seed in the model wins. */
  constructor(
    model: LinkModel | LinkModelInput,
    seed: Seed,
    private readonly clock: Clock,
    opts: LinkDelayOptions = {},
  ) {
    this.model = sharedLinkModel(model);
    this.seed = this.model.seed ?? seed;
    this.random = new Random(this.seed);
    this.startMs = opts.startMs ?? clock.now();
  }

  /**
   * Decides the fate of one message sent now. Every call draws the same amount
   * of randomness whatever the outcome, so a partition does not shift the
   * sequence of later samples.
   */
  sample(): LinkSample {
    const lost = this.random.next() < this.model.loss;
    const delayMs = sampleLatency(this.model.latency, this.random);
    if (this.isPartitioned(this.clock.now())) return { dropped: true, reason: "partition" };
    if (lost) return { dropped: true, reason: "loss" };
    return { dropped: false, delayMs };
  }

  /** Whether the link is partitioned at absolute clock time `atMs`. */
  isPartitioned(atMs: number = this.clock.now()): boolean {
    const t = atMs - this.startMs;
    return this.model.partitions.some((w) => t >= w.startMs && t < w.endMs);
  }

  /** e.g. "lognormal(median 20 ms, sigma 0.5), loss 1%, 1 partition". */
  describe(): string {
    const parts = [describeLatency(this.model.latency)];
    parts.push(this.model.loss > 0 ? `loss ${round(this.model.loss * 100)}%` : "no loss");
    const n = this.model.partitions.length;
    if (n > 0) parts.push(`${n} partition${n === 1 ? "" : "s"}`);
    return parts.join(", ");
  }

  /** Mean latency of a delivered message (loss and partitions excluded). */
  expectedMs(): number {
    return latencyMean(this.model.latency);
  }

  /** p-quantile of the latency of a delivered message. */
  quantileMs(p: number): number {
    return latencyQuantile(this.model.latency, p);
  }

  /** P(latency <= x) for a delivered message. */
  cdf(x: number): number {
    return latencyCdf(this.model.latency, x);
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

function describeLatency(l: Latency): string {
  switch (l.kind) {
    case "fixed":
      return `fixed ${round(l.ms)} ms`;
    case "uniform":
      return `uniform(${round(l.minMs)}..${round(l.maxMs)} ms)`;
    case "normal":
      return `normal(mean ${round(l.meanMs)} ms, stddev ${round(l.stddevMs)} ms, truncated at 0)`;
    case "lognormal":
      return `lognormal(median ${round(l.medianMs)} ms, sigma ${round(l.sigma)})`;
  }
}

function sampleLatency(l: Latency, r: Random): number {
  switch (l.kind) {
    case "fixed":
      return l.ms;
    case "uniform":
      return r.uniform(l.minMs, l.maxMs);
    case "normal": {
      // Rejection keeps the shape above 0; with meanMs >= 0 over half the draws are kept.
      for (;;) {
        const x = r.normal(l.meanMs, l.stddevMs);
        if (x >= 0) return x;
      }
    }
    case "lognormal":
      return r.lognormal(l.medianMs, l.sigma);
  }
}

/** Normal(mean, sd) conditioned on x >= 0: alpha is 0 in standard units, z the mass kept. */
function truncation(l: { meanMs: number; stddevMs: number }) {
  const alpha = -l.meanMs / l.stddevMs;
  return { alpha, phiAlpha: normalCdf(alpha), z: 1 - normalCdf(alpha) };
}

function latencyMean(l: Latency): number {
  switch (l.kind) {
    case "fixed":
      return l.ms;
    case "uniform":
      return (l.minMs + l.maxMs) / 2;
    case "normal": {
      if (l.stddevMs === 0) return l.meanMs;
      const { alpha, z } = truncation(l);
      return l.meanMs + (l.stddevMs * normalPdf(alpha)) / z;
    }
    case "lognormal":
      return l.medianMs * Math.exp((l.sigma * l.sigma) / 2);
  }
}

function latencyQuantile(l: Latency, p: number): number {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`quantile ${p} must be in [0, 1]`);
  switch (l.kind) {
    case "fixed":
      return l.ms;
    case "uniform":
      return l.minMs + p * (l.maxMs - l.minMs);
    case "normal": {
      if (l.stddevMs === 0) return l.meanMs;
      const { phiAlpha, z } = truncation(l);
      return l.meanMs + l.stddevMs * normalQuantile(phiAlpha + p * z);
    }
    case "lognormal":
      return l.medianMs * Math.exp(l.sigma * normalQuantile(p));
  }
}

function latencyCdf(l: Latency, x: number): number {
  switch (l.kind) {
    case "fixed":
      return x >= l.ms ? 1 : 0;
    case "uniform":
      if (x >= l.maxMs) return 1;
      return x < l.minMs ? 0 : (x - l.minMs) / (l.maxMs - l.minMs);
    case "normal": {
      if (x < 0) return 0;
      if (l.stddevMs === 0) return x >= l.meanMs ? 1 : 0;
      const { phiAlpha, z } = truncation(l);
      return (normalCdf((x - l.meanMs) / l.stddevMs) - phiAlpha) / z;
    }
    case "lognormal":
      if (x <= 0) return 0;
      if (l.sigma === 0) return x >= l.medianMs ? 1 : 0;
      return normalCdf(Math.log(x / l.medianMs) / l.sigma);
  }
}

export type Delivery<T> =
  | { dropped: false; delayMs: number; value: T }
  | { dropped: true; reason: DropReason };

/**
 * Runs `fn` after the link's sampled delay, or never if the link drops the
 * message. Without a link, or with a zero delay, `fn` runs at once (no timer),
 * so zero-delay paths do not depend on a virtual clock being advanced.
 */
export async function delayed<T>(
  clock: Clock,
  link: LinkDelay | undefined,
  fn: () => T | Promise<T>,
): Promise<Delivery<T>> {
  const s: LinkSample = link ? link.sample() : { dropped: false, delayMs: 0 };
  if (s.dropped) return s;
  if (s.delayMs > 0) await wait(clock, s.delayMs);
  return { dropped: false, delayMs: s.delayMs, value: await fn() };
}

/** What fetch rejects with on a network failure is a TypeError; so is a modelled one. */
export class LinkDropError extends TypeError {
  override readonly name = "LinkDropError";
  constructor(
    readonly reason: DropReason,
    url: string,
  ) {
    super(
      `fetch ${url} failed: request ${reason === "loss" ? "lost" : "dropped by a partition"} on the modelled link`,
    );
  }
}

export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

export interface WrapFetchOptions {
  /**
   * How long a dropped request takes to fail. Default 0: it rejects at once,
   * which keeps tests fast; set it to a client timeout to model one.
   */
  dropAfterMs?: number;
}

/**
 * A fetch whose requests cross `link`: each waits the sampled delay before it
 * is sent; a lost or partitioned one rejects with LinkDropError after
 * `dropAfterMs`. An AbortSignal in `init` cancels the wait.
 */
export function wrapFetch(
  fetch: FetchLike,
  link: LinkDelay,
  clock: Clock,
  opts: WrapFetchOptions = {},
): FetchLike {
  const dropAfterMs = opts.dropAfterMs ?? 0;
  // Not an async function: a request waiting on its link holds a promise, a
  // reaction and one closure, not also a suspended frame, its registers and
  // its await handlers (a simulated burst has thousands waiting at once,
  // bench/results/simulate.md). The same promise turns as `await wait(...);
  // return fetch(...)`: the callback runs a turn after the wait as the
  // await's continuation would, and returning fetch's promise from it
  // settles the result two turns after that promise, as an async function's
  // return of one does; a synchronous throw (an aborted signal) rejects.
  return (input, init) => {
    let dropped: DropReason | undefined;
    let waited: Promise<void>;
    try {
      const s = link.sample();
      dropped = s.dropped ? s.reason : undefined;
      waited = wait(clock, s.dropped ? dropAfterMs : s.delayMs, init?.signal ?? undefined);
    } catch (err) {
      return Promise.reject(err);
    }
    return waited.then(() => {
      if (dropped !== undefined) throw new LinkDropError(dropped, urlOf(input));
      return fetch(input, init);
    });
  };
}

function urlOf(input: string | URL | Request): string {
  return typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
}

/** Waits `ms` on `clock`; rejects with the signal's reason if it aborts first. */
function wait(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted();
  if (ms <= 0) return Promise.resolve();
  // Without a signal, nothing to listen to: the timer alone (every simulated hop waits).
  if (!signal) return new Promise((resolve) => clock.setTimeout(resolve, ms));
  return new Promise((resolve, reject) => {
    let id: TimerId | undefined;
    const onAbort = () => {
      if (id !== undefined) clock.clearTimeout(id);
      reject(signal?.reason);
    };
    id = clock.setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
