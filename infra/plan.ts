/**
 * `propagate plan NAME TYPE`: how long a change made now would take to reach
 * every target, and what to do for a deadline, without changing anything.
 *
 * It asks the authoritative server (`--auth`, else our origin's DoH) for the
 * RRset's TTL and for the zone's negative TTL (RFC 2308 §5: min(SOA TTL, SOA
 * MINIMUM); the SOA's own TTL is read at the apex), then asks each target
 * once what it holds and for how long. A target honouring TTLs serves the
 * old answer at most until its remaining TTL runs out, so a change made now
 * has reached every target asked by the latest of those; a cache not asked
 * may hold it for the whole TTL.
 *
 * Asking is not free: a target that held nothing caches what it was just
 * told, for the full TTL, and for a name that does not exist yet that is an
 * NXDOMAIN (the negative-cache trap). The plan says when a negative answer it
 * saw may have been cached by its own question.
 */
import { RealClock } from "../core/clock.ts";
import { flagHelp, parseFlags, UsageError } from "../core/flags.ts";
import type { RRType } from "../core/records.ts";
import {
  ask,
  type BadTarget,
  describeObservation,
  isBad,
  type Observation,
  parseTarget,
  parseType,
  type Target,
  targetsFrom,
} from "./targets.ts";

export interface PlanOptions {
  name: string;
  type: RRType;
  auth: Target;
  /** More authoritative servers of the zone, compared with `auth`. */
  others?: readonly Target[];
  targets: readonly (Target | BadTarget)[];
  /** The deadline a change must meet (ms), if any. */
  withinMs?: number;
  askTimeoutMs?: number;
}

export interface PlannedTarget {
  label: string;
  url: string;
  /** What it said (absent for a target that could not be parsed). */
  held?: Observation;
  error?: string;
  /** Until when (ms after the plan's `now`) it may serve what it holds. */
  untilMs?: number;
  /** It holds a negative answer for a name (or type) that the change creates. */
  negativeCached: boolean;
}

export interface Plan {
  name: string;
  type: RRType;
  /** Epoch ms when the targets were asked. */
  now: number;
  auth: {
    label: string;
    answer: Observation;
    exists: boolean;
    ttl?: number;
    /** RFC 2308 §5 negative TTL, with the SOA it comes from. */
    negativeTtl?: number;
    soa?: { zone: string; ttl: number; minimum: number };
    /** What the other authoritative servers answered. */
    others?: { label: string; answer: Observation }[];
  };
  targets: PlannedTarget[];
  /** If the change is made now: when every target asked serves it (ms after now). */
  convergedByMs?: number;
  /** A cache not asked may hold the current answer this long (ms after now): TTL or negative TTL. */
  worstCaseMs?: number;
  warnings: string[];
  advice: string[];
}

const remainingS = (o: Observation): number | undefined =>
  o.ok ? (o.values.length > 0 ? o.ttl : o.negativeTtl) : undefined;

/** The zone's SOA as its apex serves it: TTL and MINIMUM, for the negative TTL's parts. */
async function zoneSoa(o: PlanOptions, clock: RealClock, timeoutMs: number) {
  const below = await ask(o.auth, o.name, "SOA", { timeoutMs, clock });
  const zone = below.ok ? below.soa?.zone : undefined;
  if (below.ok && below.values.length > 0 && below.ttl !== undefined) {
    // The name is the apex: its SOA is the answer.
    return { zone: o.name, ttl: below.ttl, minimum: Number(below.values[0]!.split(/\s+/).at(-1)) };
  }
  if (!zone) return undefined;
  const apex = await ask(o.auth, zone, "SOA", { timeoutMs, clock });
  if (apex.ok && apex.values.length > 0 && apex.ttl !== undefined) {
    return { zone, ttl: apex.ttl, minimum: Number(apex.values[0]!.split(/\s+/).at(-1)) };
  }
  return below.ok ? below.soa : undefined;
}

export async function plan(o: PlanOptions): Promise<Plan> {
  const clock = new RealClock({ keepAlive: true });
  const timeoutMs = o.askTimeoutMs ?? 2_000;
  const now = clock.now();
  const good = o.targets.filter((t): t is Target => !isBad(t));
  const [answer, soa, held, others] = await Promise.all([
    ask(o.auth, o.name, o.type, { timeoutMs, clock }),
    zoneSoa(o, clock, timeoutMs),
    Promise.all(good.map((t) => ask(t, o.name, o.type, { timeoutMs, clock }))),
    Promise.all(
      (o.others ?? []).map(async (t) => ({
        label: t.label,
        answer: await ask(t, o.name, o.type, { timeoutMs, clock }),
      })),
    ),
  ]);
  if (!answer.ok) {
    throw new UsageError(
      `the authoritative ${o.auth.url} did not answer ${o.name} ${o.type}: ${answer.error}; give --auth dns://HOST:PORT`,
    );
  }
  const heldBy = new Map(good.map((t, i) => [t.label, held[i]!]));
  return planFrom({
    name: o.name,
    type: o.type,
    now,
    auth: { label: o.auth.label, answer, ...(soa && { soa }), others },
    targets: o.targets.map((t) =>
      isBad(t)
        ? { label: t.label, url: t.url, error: t.error }
        : { label: t.label, url: t.url, held: heldBy.get(t.label)! },
    ),
    ...(o.withinMs !== undefined && { withinMs: o.withinMs }),
  });
}

/** What plan asked, for planFrom. */
export interface PlanInput {
  name: string;
  type: RRType;
  /** Epoch ms when the targets were asked. */
  now: number;
  auth: {
    label: string;
    answer: Observation & { ok: true };
    soa?: { zone: string; ttl: number; minimum: number };
    /** What the other authoritative servers answered. */
    others?: { label: string; answer: Observation }[];
  };
  targets: { label: string; url: string; held?: Observation; error?: string }[];
  withinMs?: number;
}

/** The plan from what was asked (pure: the warnings and the advice). */
export function planFrom(input: PlanInput): Plan {
  const { now, auth } = input;
  const { answer, soa } = auth;
  const exists = answer.values.length > 0;
  const negativeTtl = soa ? Math.min(soa.ttl, soa.minimum) : answer.negativeTtl;
  const authTtl = exists ? answer.ttl : negativeTtl;
  const targets: PlannedTarget[] = input.targets.map((t) => {
    const h = t.held;
    if (!h)
      return { label: t.label, url: t.url, error: t.error ?? "not asked", negativeCached: false };
    const r = remainingS(h);
    return {
      label: t.label,
      url: t.url,
      held: h,
      ...(!h.ok && { error: h.error }),
      ...(r !== undefined && { untilMs: h.at - now + r * 1000 }),
      negativeCached: h.ok && h.values.length === 0,
    };
  });
  const until = targets.map((t) => t.untilMs).filter((x): x is number => x !== undefined);
  const convergedByMs = until.length > 0 ? Math.max(...until) : undefined;
  const worstCaseMs = authTtl === undefined ? undefined : authTtl * 1000;
  const warnings: string[] = [];
  const advice: string[] = [];
  const when = (ms: number) =>
    `${new Date(now + ms).toISOString()} (+${Math.round(ms / 100) / 10} s)`;

  // Servers of one zone that answer differently are mid-change (or broken):
  // caches fill from either, so the plan holds only once they agree.
  const same = (x: Observation & { ok: true }) =>
    [...x.values].sort().join(" ") === [...answer.values].sort().join(" ") && x.ttl === answer.ttl;
  for (const other of auth.others ?? []) {
    const x = other.answer;
    if (!x.ok) warnings.push(`authoritative ${other.label}: no answer: ${x.error}`);
    else if (!same(x)) {
      warnings.push(
        `authoritative ${other.label} answers ${describeObservation(x)} but ${auth.label} answers ${describeObservation(answer)}: the authoritative servers disagree (a change still travelling to a secondary?); caches may take either`,
      );
    }
  }
  for (const t of targets) {
    if (t.error) warnings.push(`${t.label}: not asked or no answer: ${t.error}`);
    const h = t.held;
    if (!h?.ok || t.untilMs === undefined) continue;
    if (t.negativeCached && !exists) {
      const what = h.rcode === "NXDOMAIN" ? "NXDOMAIN" : "NODATA";
      const full =
        h.negativeTtl !== undefined && negativeTtl !== undefined && h.negativeTtl >= negativeTtl;
      warnings.push(
        `${t.label} already caches ${what} for ${input.name}: created now, it keeps answering ${what} until ${when(t.untilMs)}, RFC 2308 negative caching${full ? " (perhaps cached by this very question: plan asks too)" : ""}`,
      );
    }
    const r = remainingS(h)!;
    const a = h.values.length > 0 ? (exists ? answer.ttl : undefined) : negativeTtl;
    if (a !== undefined && r > a) {
      warnings.push(
        `${t.label} holds it for ${r} s, above the authoritative ${h.values.length > 0 ? "TTL" : "negative TTL"} of ${a} s: it stretches TTLs, and lowering the TTL does not shorten what it holds now`,
      );
    }
  }

  if (input.withinMs !== undefined) {
    const d = input.withinMs;
    const ds = Math.round(d / 1000);
    const worst = Math.max(convergedByMs ?? 0, worstCaseMs ?? 0);
    // TTLs count whole seconds: what a target holds may last up to 1 s longer than it says.
    const slack = 1_000;
    if (worst <= d + slack || (exists && answer.ttl !== undefined && answer.ttl * 1000 <= d)) {
      advice.push(
        `change now: every target asked serves it by ${when(convergedByMs ?? 0)}, any cache by ${when(worstCaseMs ?? 0)}, within ${ds} s`,
      );
    } else if (exists) {
      const lower = Math.max(1, Math.floor(ds / 2));
      const wait = worst;
      advice.push(
        `lower the TTL to ${lower} s now, wait until ${when(wait)} (the old TTL of ${answer.ttl} s has drained everywhere), then change: every cache that honours TTLs then serves it within ${lower} s of the change`,
      );
    } else {
      const lower = Math.max(1, Math.floor(ds / 2));
      advice.push(
        `${input.name} does not exist yet: caches that ask before it exists keep the negative answer for the negative TTL (${negativeTtl ?? "?"} s); lower the SOA MINIMUM (or the SOA TTL) of ${soa?.zone ?? "the zone"} to ${lower} s now, wait until ${when(worst)}, ask nothing about the name before creating it, then create it`,
      );
    }
    for (const t of targets) {
      if (t.untilMs !== undefined && t.untilMs > d + slack && t.held?.ok) {
        advice.push(
          `${t.label} cannot meet ${ds} s for a change made now: it holds the answer until ${when(t.untilMs)}`,
        );
      }
    }
  }
  return {
    name: input.name,
    type: input.type,
    now,
    auth: {
      label: auth.label,
      answer,
      exists,
      ...(exists && answer.ttl !== undefined && { ttl: answer.ttl }),
      ...(negativeTtl !== undefined && { negativeTtl }),
      ...(soa && { soa }),
      ...(auth.others && auth.others.length > 0 && { others: auth.others }),
    },
    targets,
    ...(convergedByMs !== undefined && { convergedByMs }),
    ...(worstCaseMs !== undefined && { worstCaseMs }),
    warnings,
    advice,
  };
}

export function renderPlan(p: Plan): string {
  const at = (ms: number) =>
    `${new Date(p.now + ms).toISOString()} (+${Math.round(ms / 100) / 10} s)`;
  const a = p.auth;
  const out = [
    `propagate plan: ${p.name} ${p.type}, asked at ${new Date(p.now).toISOString()}`,
    "",
    `authoritative (${a.label}): ${describeObservation(a.answer)}`,
    `negative TTL: ${a.negativeTtl ?? "?"} s = min(SOA TTL ${a.soa?.ttl ?? "?"}, SOA MINIMUM ${a.soa?.minimum ?? "?"})${a.soa ? ` of ${a.soa.zone}` : ""} (RFC 2308 §5)`,
  ];
  if (p.targets.length > 0) {
    const rows = p.targets.map((t) => [
      t.label,
      t.held ? describeObservation(t.held) : `error: ${t.error}`,
      t.untilMs === undefined ? "-" : at(t.untilMs),
    ]);
    const head = ["target", "holds", "may serve it until"];
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (r: string[]) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join("  ")
        .trimEnd();
    out.push("", line(head), line(widths.map((w) => "-".repeat(w))), ...rows.map(line));
  }
  out.push("");
  if (p.convergedByMs !== undefined)
    out.push(`if the change is made now: every target asked serves it by ${at(p.convergedByMs)}`);
  if (p.worstCaseMs !== undefined)
    out.push(`a cache not asked here may hold the current answer until ${at(p.worstCaseMs)}`);
  for (const w of p.warnings) out.push(`warning: ${w}`);
  for (const x of p.advice) out.push(`to do: ${x}`);
  return out.join("\n");
}

/** "60s", "90", "2m", "1h": a deadline in ms. */
export function parseDuration(value: string, flag: string): number {
  const m = /^(\d+)\s*(ms|s|m|h)?$/.exec(value.trim());
  if (!m)
    throw new UsageError(`--${flag} expects a duration such as 60s, 5m or 1h, got "${value}"`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? "s") as "ms" | "s" | "m" | "h"];
  return Number(m[1]) * unit;
}

const FLAGS = {
  auth: {
    type: "string",
    multiple: true,
    help: "authoritative server: dns://HOST:PORT, DoH or DNS JSON URL (repeatable; default: the origin)",
  },
  origin: {
    type: "string",
    help: "origin URL, the default authoritative (default http://127.0.0.1:8053)",
  },
  target: {
    type: "string",
    multiple: true,
    help: "[LABEL=]dns://HOST:PORT, https://HOST/dns-query or https://HOST/resolve (repeatable)",
  },
  targets: { type: "string", help: 'file of targets, one "LABEL URL" per line' },
  within: { type: "string", help: "the deadline the change must meet (60s, 5m, 1h)" },
  json: { type: "boolean", help: "print the plan as JSON" },
  help: { type: "boolean", help: "show this help" },
} as const;

export async function main(argv: string[]): Promise<void> {
  const { values: raw, positionals } = parseFlags(argv, FLAGS, "plan NAME TYPE");
  const v = raw as Omit<typeof raw, "auth"> & { target?: string[]; auth?: string[] };
  if (v.help) {
    console.log(flagHelp(FLAGS, "plan NAME TYPE"));
    return;
  }
  const [name, typeText, ...extra] = positionals;
  const type = typeText ? parseType(typeText) : undefined;
  if (!name || !type || extra.length > 0) {
    throw new UsageError(
      `expected NAME TYPE (e.g. propagate plan www.example.test A), got "${positionals.join(" ")}"\n\n${flagHelp(FLAGS, "plan NAME TYPE")}`,
    );
  }
  const auths = (v.auth ?? [`${v.origin ?? "http://127.0.0.1:8053"}/dns-query`]).map((spec) => {
    const t = parseTarget(spec);
    if (isBad(t)) throw new UsageError(`--auth: ${t.error}`);
    return t;
  });
  const [auth, ...others] = auths as [Target, ...Target[]];
  const p = await plan({
    name: name.replace(/\.$/, "").toLowerCase(),
    type,
    auth,
    others,
    targets: await targetsFrom(v.target, v.targets),
    ...(v.within !== undefined && { withinMs: parseDuration(v.within, "within") }),
  });
  console.log(v.json ? JSON.stringify(p, null, 2) : renderPlan(p));
}
