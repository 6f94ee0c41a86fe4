/**
 * `propagate measure`: how long a change takes to reach every cache of a
 * running topology, measured from outside like a user would. For each sample
 * it writes a new unique TXT value, takes t0 at the write's acknowledgement,
 * and asks every edge (HTTP) and every resolver (real DNS over UDP) every
 * `--interval-ms` until each serves the new value, counting the old answers it
 * sees meanwhile. The nodes come from the origin's registry; the prediction
 * comes from the topology file. The receipts are read too, so the report can
 * set "the node says it is in sync" beside "the node serves it".
 *
 * Targets (targets.ts) are DNS servers we do not run. Each is asked once
 * before the change; what it holds sets its deadline (targets-judge.ts), and
 * it is then followed like a node. With `watch`, nothing is written: someone
 * else makes the change, and t0 is when the authoritative first serves it.
 */
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { RealClock, sleep } from "../core/clock.ts";
import { flagHelp, intFlag, parseFlags, UsageError } from "../core/flags.ts";
import type { RRType } from "../core/records.ts";
import { pooledCurve, predict, predictOptions } from "./predict.ts";
import {
  type NodeSamples,
  type Progress,
  printReportJson,
  progressBar,
  type Report,
  renderTable,
  toJson,
} from "./report.ts";
import { renderSvg, renderTimelineSvg } from "./report-svg.ts";
import { renderTargetTable, targetsJson } from "./report-targets.ts";
import {
  ask,
  type BadTarget,
  isBad,
  normaliseValue,
  type Observation,
  parseTarget,
  parseType,
  type Target,
  targetsFrom,
} from "./targets.ts";
import { type AuthTtls, graceMs, judge, type TargetResult } from "./targets-judge.ts";
import { loadTopology } from "./topology.ts";
import { DEFAULT_TOPOLOGY } from "./up.ts";

interface RegisteredNode {
  id: string;
  tier: string;
  address: string;
}

/** `--watch`: someone else makes the change; measure waits for it at every target. */
export interface Watch {
  name: string;
  type: RRType;
  /** The new values (presentation form); else read from `expectFrom`. */
  expect?: string[];
  /** An authoritative server whose current answer is the new value. */
  expectFrom?: Target;
}

export interface MeasureOptions {
  originUrl: string;
  /** The write token; needed unless `watch` is set. */
  token?: string;
  /** Where the token came from, for the error when the origin refuses it. */
  tokenSource?: string;
  zone: string;
  /** Owner name written by the samples (relative to the zone). */
  label: string;
  ttl: number;
  samples: number;
  intervalMs: number;
  timeoutMs: number;
  /** Follow the nodes registered at the origin (default: true, unless watching). */
  nodes?: boolean;
  /** DNS servers we do not run (dns://, DoH, DNS JSON). */
  targets?: readonly (Target | BadTarget)[];
  watch?: Watch;
  /** The authoritative source of TTLs (default: the origin's DoH, or `expectFrom`). */
  auth?: Target;
  /** How long one question may take (default 2000 ms). */
  askTimeoutMs?: number;
  /** Watching: called once every target was asked what it holds; the change may be made now. */
  onWatching?: () => void;
  /** After each sample, and each time a node or target is done with one (fresh or given up). */
  onProgress?: (p: { samples: number; followed: number; total: number }) => void;
}

export interface Measurement {
  name: string;
  type: RRType;
  nodes: (NodeSamples & { receiptMs: number[] })[];
  /** Per sample: the change id and its convergence time from the receipts (ms after t0). */
  changes: { changeId: string; serial: number; convergedMs?: number }[];
  targets: TargetResult[];
  /** Per sample, the authoritative TTLs the targets were held against. */
  auth: AuthTtls[];
  notes: string[];
}

/** A real secondary (tier `secondary`) answers DNS like a resolver but is an authority. */
function kindOf(n: RegisteredNode): NodeSamples["kind"] {
  if (n.tier === "secondary") return "secondary";
  return n.address.startsWith("http") ? "edge" : "resolver";
}

/** A registered node as a target: an edge's DNS JSON reads, a resolver's DNS port. */
function nodeTarget(n: RegisteredNode): Target {
  const spec = n.address.startsWith("http") ? `${n.address}/resolve` : `dns://${n.address}`;
  const t = parseTarget(spec, n.id);
  if (isBad(t)) throw new Error(`node ${n.id} has an address measure cannot ask: ${t.error}`);
  return t;
}

async function api<T>(o: MeasureOptions, path: string, init?: RequestInit): Promise<T> {
  const res = await fetch(new URL(path, o.originUrl), {
    ...init,
    headers: { authorization: `Bearer ${o.token ?? ""}`, "content-type": "application/json" },
  }).catch((err: Error) => {
    throw new Error(
      `cannot reach the origin at ${o.originUrl} (${err.message}); is "npm start" running?`,
    );
  });
  const text = await res.text();
  if (res.status === 401 || res.status === 403) {
    throw new Error(
      `the origin refused the write token from ${o.tokenSource ?? "the options"} (HTTP ${res.status}); pass the token it printed at start with --token, or its data dir with --data`,
    );
  }
  if (!res.ok)
    throw new Error(`${init?.method ?? "GET"} ${path}: HTTP ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

function writeValue(o: MeasureOptions, value: string) {
  return api<{ serial: number; changeId: string }>(o, `/v1/zones/${o.zone}/rrsets/${o.label}/TXT`, {
    method: "PUT",
    body: JSON.stringify({ ttl: o.ttl, data: [value] }),
  });
}

interface Followed {
  /** Every answer and error, in time order (absolute `at`). */
  seen: Observation[];
}

/**
 * Asks every target every interval until it answers fresh or `timeoutMs`
 * after `start` passes. Errors are kept as observations: a target that fails
 * is counted, never dropped, and the others go on.
 */
async function follow(
  targets: ReadonlyMap<string, Target>,
  name: string,
  type: RRType,
  isFresh: (o: Observation) => boolean,
  o: MeasureOptions,
  clock: RealClock,
  giveUp: (seen: readonly Observation[], now: number) => boolean = () => false,
  onDone?: () => void,
): Promise<Map<string, Followed>> {
  const start = clock.now();
  const out = new Map<string, Followed>();
  const timeoutMs = o.askTimeoutMs ?? 2_000;
  await Promise.all(
    [...targets].map(async ([id, target]) => {
      const r: Followed = { seen: [] };
      out.set(id, r);
      while (clock.now() - start < o.timeoutMs) {
        const answer = await ask(target, name, type, { timeoutMs, clock });
        r.seen.push(answer);
        if (isFresh(answer) || giveUp(r.seen, clock.now())) break;
        await sleep(clock, o.intervalMs);
      }
      onDone?.();
    }),
  );
  return out;
}

/** How long past its deadline a stale target is still followed, to show it serving stale. */
export const PAST_DEADLINE_MS = 10_000;

/**
 * When to stop asking a target before the timeout: its last 3 questions or
 * more, over at least 2 s, got no answer (it is reported with its reason), or,
 * once the deadline from what it held before the change (`deadline`,
 * absolute) is PAST_DEADLINE_MS behind, it still serves the old answer.
 */
export function giveUpRule(intervalMs: number, deadline?: number) {
  return (seen: readonly Observation[], now: number): boolean => {
    const lastAnswer = seen.findLastIndex((a) => a.ok);
    const failing = seen.slice(lastAnswer + 1);
    if (failing.length >= 3 && now - failing[0]!.at >= 2_000) return true;
    return deadline !== undefined && now > deadline + graceMs(intervalMs) + PAST_DEADLINE_MS;
  };
}

/** The deadline a first answer sets (absolute ms): when its TTL or negative TTL runs out. */
function deadlineOf(a: Observation | undefined): number | undefined {
  if (!a?.ok) return undefined;
  const s = a.values.length > 0 ? a.ttl : a.negativeTtl;
  return s === undefined ? undefined : a.at + s * 1000;
}

/** follow() with a give-up rule per target. */
async function followEach(
  targets: ReadonlyMap<string, Target>,
  name: string,
  type: RRType,
  isFresh: (o: Observation) => boolean,
  o: MeasureOptions,
  clock: RealClock,
  rules: ReadonlyMap<string, (seen: readonly Observation[], now: number) => boolean>,
  onDone: () => void,
): Promise<Map<string, Followed>> {
  const parts = await Promise.all(
    [...targets].map(([id, t]) =>
      follow(new Map([[id, t]]), name, type, isFresh, o, clock, rules.get(id), onDone),
    ),
  );
  return new Map(parts.flatMap((m) => [...m]));
}

/** The first answer of the authoritative that is fresh (its time is t0 when watching). */
async function waitForAuth(
  auth: Target,
  w: { name: string; type: RRType },
  isFresh: (o: Observation) => boolean,
  o: MeasureOptions,
  clock: RealClock,
  following: () => boolean,
): Promise<Observation | undefined> {
  const start = clock.now();
  // Once every target and node is done, t0 can no longer matter to them.
  while (clock.now() - start < o.timeoutMs && following()) {
    const a = await ask(auth, w.name, w.type, { timeoutMs: o.askTimeoutMs ?? 2_000, clock });
    if (isFresh(a)) return a;
    await sleep(clock, o.intervalMs);
  }
  return undefined;
}

const ttlOf = (a: Observation | undefined) => (a?.ok && a.values.length > 0 ? a.ttl : undefined);
const negOf = (a: Observation | undefined) => (a?.ok ? a.negativeTtl : undefined);

export async function measure(o: MeasureOptions): Promise<Measurement> {
  // Between two probes nothing but this timer is pending: it must hold the
  // process open, or `propagate measure` exits mid-run with code 13.
  const clock = new RealClock({ keepAlive: true });
  const askTimeoutMs = o.askTimeoutMs ?? 2_000;
  const withNodes = o.nodes ?? o.watch === undefined;
  const nodes = withNodes
    ? (await api<{ nodes: RegisteredNode[] }>(o, "/v1/nodes")).nodes
    : ([] as RegisteredNode[]);
  const good = (o.targets ?? []).filter((t): t is Target => !isBad(t));
  if (withNodes && nodes.length === 0 && good.length === 0) {
    throw new UsageError(
      `no cache node is registered with ${o.originUrl}; start a topology with "propagate up", or give --target`,
    );
  }
  if (nodes.length === 0 && good.length === 0) {
    throw new UsageError("nothing to measure: give --target (or drop --no-nodes)");
  }
  const name = o.watch?.name ?? `${o.label}.${o.zone}`;
  const type = o.watch?.type ?? "TXT";
  const auth = o.auth ?? o.watch?.expectFrom ?? parseTarget(`${o.originUrl}/dns-query`, "origin");
  if (isBad(auth)) throw new UsageError(`--auth: ${auth.error}`);
  const nodeTargets = new Map(nodes.map((n) => [n.id, nodeTarget(n)]));
  const targets = new Map(good.map((t) => [t.label, t]));
  if (targets.size < good.length) {
    throw new UsageError("two targets have the same label; give each its own (LABEL=URL)");
  }
  const results = new Map(
    nodes.map((n) => [
      n.id,
      { times: [] as number[], stale: 0, missed: 0, errors: 0, receipts: [] as number[] },
    ]),
  );
  const targetResults: TargetResult[] = (o.targets ?? []).map((t) => ({
    label: t.label,
    url: t.url,
    ...(isBad(t) && { error: t.error }),
    samples: [],
  }));
  const changes: Measurement["changes"] = [];
  const authTtls: AuthTtls[] = [];
  const notes: string[] = [];
  const askAll = (ts: Map<string, Target>) =>
    Promise.all(
      [...ts].map(
        async ([id, t]) =>
          [id, await ask(t, name, type, { timeoutMs: askTimeoutMs, clock })] as const,
      ),
    ).then((x) => new Map(x));

  const freshFor = (expected: string[]) => (a: Observation) =>
    a.ok && expected.every((v) => a.values.includes(v));
  let samplesDone = 0;
  let followed = 0;
  const total = (o.watch ? 1 : o.samples) * (nodes.length + targets.size);
  const done = () => {
    followed++;
    o.onProgress?.({ samples: samplesDone, followed, total });
  };
  const followNodes = (fresh: (a: Observation) => boolean, onDone?: () => void) =>
    follow(nodeTargets, name, type, fresh, o, clock, undefined, onDone);
  /** Per node: time to fresh after t0, old answers and errors, added to its totals. */
  const account = (seen: Map<string, Followed>, fresh: (a: Observation) => boolean, t0: number) => {
    for (const [id, r] of seen) {
      const acc = results.get(id)!;
      const first = r.seen.find(fresh);
      if (first) acc.times.push(Math.max(0, first.at - t0));
      else acc.missed++;
      acc.stale += r.seen.filter((a) => a.ok && a.values.length > 0 && !fresh(a)).length;
      acc.errors += r.seen.filter((a) => !a.ok).length;
    }
  };
  /** Before a change: the authoritative's answer and negative TTL, and what every target holds. */
  const askBefore = () =>
    Promise.all([
      ask(auth, name, type, { timeoutMs: askTimeoutMs, clock }),
      // A SOA question below the apex answers NODATA with the zone's negative TTL (RFC 2308 §3).
      ask(auth, name, "SOA", { timeoutMs: askTimeoutMs, clock }),
      askAll(targets),
    ]);

  /** One change written through our origin; t0 is its acknowledgement. */
  const byWrite = async (k: number) => {
    const value = `propagate-measure ${randomBytes(6).toString("hex")} sample ${k + 1}`;
    const expected = [normaliseValue("TXT", value)];
    const fresh = freshFor(expected);
    const [authBefore, authNegative, before] = await askBefore();
    const ack = await writeValue(o, value);
    const t0 = clock.now();
    const authAfter: Observation = {
      ok: true,
      at: t0,
      rcode: "NOERROR",
      values: expected,
      ttl: o.ttl,
    };
    const rules = new Map(
      [...targets.keys()].map((id) => [id, giveUpRule(o.intervalMs, deadlineOf(before.get(id)))]),
    );
    const [seen, nodesSeen] = await Promise.all([
      followEach(targets, name, type, fresh, o, clock, rules, done),
      followNodes(fresh, done),
    ]);
    return { t0, fresh, ack, authBefore, authAfter, authNegative, before, seen, nodesSeen };
  };

  /** A change someone else makes; t0 is when the authoritative first serves it. */
  const byWatch = async (w: Watch) => {
    let expected: string[];
    if (w.expect && w.expect.length > 0) expected = w.expect.map((v) => normaliseValue(type, v));
    else {
      const from = await ask(w.expectFrom!, name, type, { timeoutMs: askTimeoutMs, clock });
      if (!from.ok || from.values.length === 0) {
        throw new UsageError(
          `--expect-from ${w.expectFrom!.url} gave no ${type} for ${name} (${from.ok ? from.rcode : from.error}); give --expect VALUE`,
        );
      }
      expected = from.values;
    }
    const fresh = freshFor(expected);
    const start = clock.now();
    const [authBefore, authNegative, before] = await askBefore();
    o.onWatching?.();
    const rules = new Map([...targets.keys()].map((id) => [id, giveUpRule(o.intervalMs)]));
    let following = true;
    const followingAll = Promise.all([
      followEach(targets, name, type, fresh, o, clock, rules, done),
      followNodes(fresh, done),
    ]).finally(() => {
      following = false;
    });
    const authAfter = fresh(authBefore)
      ? authBefore
      : await waitForAuth(auth, w, fresh, o, clock, () => following);
    const [seen, nodesSeen] = await followingAll;
    let t0 = start;
    if (authAfter === undefined) {
      notes.push(
        `the authoritative ${auth.label} did not serve ${expected.join(" ")} while the targets were followed; times are from the start`,
      );
    } else if (authAfter === authBefore) {
      notes.push(
        `the authoritative ${auth.label} served the new value before measure started; times are from the start`,
      );
    } else t0 = authAfter.at;
    return {
      t0,
      fresh,
      ack: undefined,
      authBefore,
      authAfter,
      authNegative,
      before,
      seen,
      nodesSeen,
    };
  };

  const samples = o.watch ? 1 : o.samples;
  // Warm up: every registered cache holds the current value before the first
  // sample. Targets are not warmed: what each holds before the change is what
  // sets its deadline, a cached NXDOMAIN included.
  if (nodes.length > 0 && !o.watch) {
    const value = `propagate-measure ${randomBytes(6).toString("hex")} warm-up`;
    await writeValue(o, value);
    await followNodes(freshFor([normaliseValue("TXT", value)]));
  }

  for (let k = 0; k < samples; k++) {
    const { t0, fresh, ack, authBefore, authAfter, authNegative, before, seen, nodesSeen } = o.watch
      ? await byWatch(o.watch)
      : await byWrite(k);
    account(nodesSeen, fresh, t0);
    const ttls: AuthTtls = {
      ...(ttlOf(authBefore) !== undefined && { before: ttlOf(authBefore) }),
      ...(ttlOf(authAfter) !== undefined && { after: ttlOf(authAfter) }),
      ...((negOf(authBefore) ?? negOf(authNegative)) !== undefined && {
        negative: negOf(authBefore) ?? negOf(authNegative),
      }),
    };
    authTtls.push(ttls);
    for (const r of targetResults) {
      if (r.error) continue;
      r.samples.push(
        judge({
          t0,
          before: before.get(r.label)!,
          seen: seen.get(r.label)!.seen,
          isFresh: fresh,
          auth: ttls,
          intervalMs: o.intervalMs,
        }),
      );
    }
    if (ack) {
      const status = await api<{
        committedAt: number;
        convergedAt?: number;
        nodes: { id: string; latencyMs?: number }[];
      }>(o, `/v1/changes/${ack.changeId}`);
      for (const n of status.nodes)
        if (n.latencyMs !== undefined) results.get(n.id)?.receipts.push(n.latencyMs);
      changes.push({
        changeId: ack.changeId,
        serial: ack.serial,
        ...(status.convergedAt !== undefined && {
          convergedMs: status.convergedAt - status.committedAt,
        }),
      });
    }
    samplesDone = k + 1;
    o.onProgress?.({ samples: samplesDone, followed, total });
  }
  return {
    name,
    type,
    changes,
    targets: targetResults,
    auth: authTtls,
    notes,
    nodes: nodes.map((n) => {
      const r = results.get(n.id)!;
      return {
        nodeId: n.id,
        tier: n.tier,
        kind: kindOf(n),
        timesMs: r.times,
        staleSeen: r.stale,
        unconverged: r.missed,
        errors: r.errors,
        receiptMs: r.receipts,
      };
    }),
  };
}

const FLAGS = {
  origin: { type: "string", help: "origin URL (default http://127.0.0.1:8053)" },
  token: {
    type: "string",
    help: "write token (default: $PROPAGATE_TOKEN, else DATA/token, else .data/origin/token)",
  },
  data: {
    type: "string",
    help: "the origin's data dir (as given to up --data): the write token is read from DATA/token",
  },
  topology: {
    type: "string",
    help: "topology file for the prediction (default: the default topology)",
  },
  zone: { type: "string", help: "zone to write in (default example.test)" },
  name: {
    type: "string",
    help: "owner name written, relative to the zone (default _propagate-measure)",
  },
  ttl: { type: "string", help: "TTL of the written record, seconds (default 60)" },
  samples: { type: "string", help: "changes to follow (default 5)" },
  "interval-ms": { type: "string", help: "how often each node or target is asked (default 20)" },
  "timeout-ms": {
    type: "string",
    help: "give up on a node after this long per sample (default: 2 x TTL + 30 s; watching 10 min)",
  },
  target: {
    type: "string",
    multiple: true,
    help: "[LABEL=]dns://HOST:PORT, https://HOST/dns-query (DoH) or https://HOST/resolve (repeatable)",
  },
  targets: { type: "string", help: 'file of targets, one "LABEL URL" per line' },
  "no-nodes": { type: "boolean", help: "do not follow the nodes registered at the origin" },
  watch: {
    type: "string",
    help: "NAME TYPE: do not write; wait for a change someone else makes (needs --expect or --expect-from)",
  },
  expect: { type: "string", multiple: true, help: "with --watch: the new value (repeatable)" },
  "expect-from": {
    type: "string",
    help: "with --watch: dns://AUTH:PORT whose current answer is the new value",
  },
  auth: {
    type: "string",
    help: "authoritative server for the TTLs targets are held to (default: the origin)",
  },
  json: { type: "boolean", help: "print the report as JSON" },
  svg: {
    type: "string",
    help: "write an SVG chart to this file (CDF; with targets, a timeline per target)",
  },
  help: { type: "boolean", help: "show this help" },
} as const;

async function tokenFrom(
  given: string | undefined,
  dataDir: string | undefined,
): Promise<{ token: string; source: string }> {
  if (given) return { token: given, source: "--token" };
  if (process.env.PROPAGATE_TOKEN)
    return { token: process.env.PROPAGATE_TOKEN, source: "$PROPAGATE_TOKEN" };
  const file = join(dataDir ?? ".data/origin", "token");
  try {
    const token = (await readFile(file, "utf8")).trim();
    return { token, source: file };
  } catch {
    throw new UsageError(
      `no write token: cannot read ${file}; pass --token T, set PROPAGATE_TOKEN, or --data DIR (the origin's data dir, as given to "propagate up --data")`,
    );
  }
}

function targetFlag(spec: string, flag: string): Target {
  const t = parseTarget(spec);
  if (isBad(t)) throw new UsageError(`--${flag}: ${t.error}`);
  return t;
}

/** --watch NAME TYPE (TYPE as the next word or inside the value), --expect, --expect-from. */
export function watchFrom(
  v: {
    watch?: string;
    expect?: string[];
    "expect-from"?: string;
  },
  positionals: string[],
): Watch | undefined {
  if (v.watch === undefined) {
    if (v.expect || v["expect-from"])
      throw new UsageError("--expect and --expect-from need --watch NAME TYPE");
    return undefined;
  }
  const [name, typeText = positionals[0]] = v.watch.trim().split(/\s+/);
  const type = typeText ? parseType(typeText) : undefined;
  if (!name || !type) {
    throw new UsageError(
      `--watch expects NAME TYPE (e.g. --watch www.example.test A), got "${v.watch}${typeText ? ` ${typeText}` : ""}"`,
    );
  }
  if (!v.expect && !v["expect-from"]) {
    throw new UsageError(
      "--watch needs the new value: --expect VALUE or --expect-from dns://AUTH:PORT",
    );
  }
  return {
    name: name.replace(/\.$/, "").toLowerCase(),
    type,
    ...(v.expect && { expect: v.expect }),
    ...(v["expect-from"] && { expectFrom: targetFlag(v["expect-from"], "expect-from") }),
  };
}

export async function main(argv: string[]): Promise<void> {
  const { values: raw, positionals } = parseFlags(argv, FLAGS, "measure");
  const v = raw as typeof raw & { target?: string[]; expect?: string[] };
  if (v.help) {
    console.log(flagHelp(FLAGS, "measure"));
    return;
  }
  const ttl = intFlag(v.ttl, "ttl", { min: 1, default: 60 });
  const watch = watchFrom(v, positionals);
  // Only --watch NAME TYPE takes a word after it.
  const extra = positionals.slice(watch && !v.watch?.trim().includes(" ") ? 1 : 0);
  if (extra.length > 0) {
    throw new UsageError(
      `unexpected argument "${extra.join(" ")}"\n\n${flagHelp(FLAGS, "measure")}`,
    );
  }
  const samples = watch ? 1 : intFlag(v.samples, "samples", { min: 1, default: 5 });
  const intervalMs = intFlag(v["interval-ms"], "interval-ms", { min: 1, default: 20 });
  const targets = await targetsFrom(v.target, v.targets);
  const withNodes = !v["no-nodes"] && (watch === undefined || v.origin !== undefined);
  const topology = await loadTopology(v.topology ?? DEFAULT_TOPOLOGY);
  // One step per node or target and sample, so a long wait for one slow target still moves.
  let bar: Progress | undefined;
  const m = await measure({
    originUrl: v.origin ?? "http://127.0.0.1:8053",
    ...(!watch &&
      (await tokenFrom(v.token, v.data).then(({ token, source }) => ({
        token,
        tokenSource: source,
      })))),
    zone: v.zone ?? "example.test",
    label: v.name ?? "_propagate-measure",
    ttl,
    samples,
    intervalMs,
    timeoutMs: intFlag(v["timeout-ms"], "timeout-ms", {
      min: 1,
      default: watch ? 600_000 : 2 * ttl * 1000 + 30_000,
    }),
    nodes: withNodes,
    targets,
    ...(watch && { watch }),
    ...(v.auth && { auth: targetFlag(v.auth, "auth") }),
    onProgress: (p) => {
      bar ??= progressBar("measuring", p.total);
      bar.update(p.followed);
    },
    onWatching: () =>
      console.error(
        `watching ${watch?.name} ${watch?.type}: every target was asked what it holds; make the change now`,
      ),
  });
  bar?.finish();
  const preds = predict(topology, predictOptions(topology, { ttlSec: ttl, probeMs: intervalMs }));
  const registered = new Set(m.nodes.map((n) => n.nodeId));
  const faultNotes = preds
    .filter((p) => registered.has(p.nodeId) && p.boundNotes.length > 0)
    .map((p) => `bound of ${p.nodeId} includes ${p.boundNotes.join("; ")}`);
  const errors = m.nodes.filter((n) => (n.errors ?? 0) > 0);
  const report: Report = {
    title: watch
      ? `propagate measure: watching ${m.name} ${m.type}`
      : `propagate measure: ${samples} change${samples === 1 ? "" : "s"}, ${m.nodes.length > 0 ? `mode ${topology.defaults.mode}, ` : ""}TTL ${ttl} s, asked every ${intervalMs} ms`,
    series:
      m.nodes.length === 0
        ? []
        : [
            {
              label: "live",
              nodes: m.nodes,
              boundsMs: Object.fromEntries(preds.map((p) => [p.nodeId, p.boundMs])),
              predicted: pooledCurve(preds.filter((p) => registered.has(p.nodeId))),
            },
          ],
    notes: [
      ...m.notes,
      ...faultNotes,
      ...(m.nodes.length > 0
        ? [
            `receipts (node says INSYNC), ms after commit: ${m.nodes
              .map((n) => `${n.nodeId} ${n.receiptMs.length ? Math.max(...n.receiptMs) : "-"}`)
              .join(", ")} (max per node)`,
          ]
        : []),
      ...(m.changes.length > 0 && m.nodes.length > 0
        ? [
            `converged per receipts: ${m.changes.map((c) => c.convergedMs ?? "pending").join(", ")} ms`,
          ]
        : []),
      ...(errors.length > 0
        ? [`probe errors (no answer): ${errors.map((n) => `${n.nodeId} ${n.errors}`).join(", ")}`]
        : []),
    ],
  };
  const boundsMs = report.series[0]?.boundsMs ?? {};
  if (v.svg) {
    await writeFile(
      v.svg,
      m.targets.length > 0 ? renderTimelineSvg(report.title, m, boundsMs) : renderSvg(report),
    );
  }
  if (v.json) {
    printReportJson({ ...(toJson(report) as object), ...targetsJson(m) });
  } else {
    console.log(renderTable(report));
    if (m.targets.length > 0) console.log(`\n${renderTargetTable(m)}`);
    if (v.svg) console.log(`chart written to ${v.svg}`);
  }
}
