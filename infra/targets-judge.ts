/**
 * The verdict on one target for one change, from what it answered (pure: no
 * I/O, no clock). Times in, absolute ms; times out, ms after the change (t0).
 *
 * Deadline. A cache that honours TTLs may serve an answer it holds until its
 * TTL runs out (RFC 1035 §3.2.1; a negative answer until min(SOA TTL, SOA
 * MINIMUM), RFC 2308 §5), and no longer. So every old answer seen before the
 * change, at `at` with remaining TTL r, allows it to serve the old answer
 * until at + r; the deadline is the latest of these: it is computed from what
 * the target served, not from the zone, so a target that stretches TTLs gets
 * the deadline it announced, and is flagged for it.
 *
 * Grace. TTLs count whole seconds (a TTL of 3 may have 3.99 s left), the
 * target is asked every interval, and a refetch takes a round trip: a target
 * fresh within deadline + 1 s + interval + ROUND_TRIP_MS kept its deadline.
 */
import type { Observation } from "./targets.ts";

export const ROUND_TRIP_MS = 500;

export type Cause = "ttl" | "negative-cache" | "already-fresh" | "unknown";

export interface Flag {
  kind: "ttl-stretching" | "serve-stale";
  evidence: string;
}

export interface TargetSample {
  /** What it held when asked before the change; `at` is ms after t0 (negative: before). */
  before: Observation;
  /** The latest moment (ms after t0) it may still serve the old answer if it honours TTLs. */
  deadlineMs?: number;
  /** What the deadline was computed from, in words. */
  deadlineFrom: string;
  cause: Cause;
  /** First answer with the new value (ms after t0; 0 when it served it already). */
  freshMs?: number;
  /** Old answers (positive or negative) after the change. */
  staleSeen: number;
  /** Old answers later than the deadline plus grace (serve-stale). */
  staleAfterDeadline: number;
  /** Fresh by deadline + grace; undefined when no deadline is known. */
  kept?: boolean;
  /** Questions that got no answer (timeout, refused, SERVFAIL...). */
  errors: number;
  lastError?: string;
  flags: Flag[];
}

/** One target over a run: its samples, or why it was never asked. */
export interface TargetResult {
  label: string;
  url: string;
  /** Set when the target could not be parsed; it was never asked. */
  error?: string;
  samples: TargetSample[];
}

/** The authoritative TTLs (s) a target's answers are compared with. */
export interface AuthTtls {
  /** Of the old RRset (before the change). */
  before?: number;
  /** Of the new RRset. */
  after?: number;
  /** RFC 2308 §5: min(SOA TTL, SOA MINIMUM) of the zone. */
  negative?: number;
}

export interface JudgeInput {
  /** The change, absolute ms. */
  t0: number;
  before: Observation;
  /** Every answer after `before`, in time order (absolute `at`). */
  seen: readonly Observation[];
  isFresh: (o: Observation) => boolean;
  auth: AuthTtls;
  intervalMs: number;
}

export function graceMs(intervalMs: number): number {
  return 1_000 + intervalMs + ROUND_TRIP_MS;
}

const secs = (ms: number) => `${ms >= 0 ? "+" : ""}${(ms / 1000).toFixed(1)} s`;

function holding(o: Observation & { ok: true }): string {
  if (o.values.length > 0) return `${o.values.join(" ")} (TTL ${o.ttl} s)`;
  const soa = o.soa ? `; SOA of ${o.soa.zone}: TTL ${o.soa.ttl}, MINIMUM ${o.soa.minimum}` : "";
  return `${o.rcode === "NXDOMAIN" ? "NXDOMAIN" : "NODATA"} (negative TTL ${o.negativeTtl ?? "?"} s${soa})`;
}

/** Remaining lifetime (ms) an answer claims: its TTL, or its RFC 2308 negative TTL. */
function remainingMs(o: Observation & { ok: true }): number {
  return 1000 * ((o.values.length > 0 ? o.ttl : o.negativeTtl) ?? 0);
}

export function judge(input: JudgeInput): TargetSample {
  const { t0, isFresh, auth } = input;
  const all = [input.before, ...input.seen];
  const answers = all.filter((o): o is Observation & { ok: true } => o.ok);
  const old = answers.filter((o) => !isFresh(o));
  const rel = (at: number) => at - t0;

  // The deadline: the latest end of an old answer's lifetime among those served before the change.
  let deadline: number | undefined;
  let from: (Observation & { ok: true }) | undefined;
  for (const o of old) {
    // `before` counts whenever it came: when watching a change made before
    // measure started, t0 is the start and the first question comes just after.
    if (o !== input.before && o.at > t0) continue;
    const end = o.at + remainingMs(o);
    if (deadline === undefined || end > deadline) {
      deadline = end;
      from = o;
    }
  }
  const freshObs = answers.find((o) => isFresh(o));
  let cause: Cause = "unknown";
  let deadlineFrom = "nothing answered before the change";
  if (from) {
    cause = from.values.length > 0 ? "ttl" : "negative-cache";
    deadlineFrom = `${holding(from)} at ${secs(rel(from.at))}`;
  } else if (freshObs && freshObs.at <= t0) {
    cause = "already-fresh";
    deadline = freshObs.at;
    deadlineFrom = `served the new value already at ${secs(rel(freshObs.at))}`;
  }

  const grace = graceMs(input.intervalMs);
  const afterChange = old.filter((o) => o !== input.before && o.at > t0);
  const late = deadline === undefined ? [] : afterChange.filter((o) => o.at > deadline + grace);
  // RFC 8767: an expired answer served again comes with a new, short TTL (30 s
  // recommended), so its lifetime runs past the deadline even when it is
  // served just at it. That is serve-stale, not TTL stretching.
  const revived =
    deadline === undefined
      ? []
      : afterChange.filter(
          (o) => o.at <= deadline + grace && o.at + remainingMs(o) > deadline + grace,
        );
  const flags: Flag[] = [];
  const stretched = answers.find((o) => {
    if (revived.includes(o)) return false;
    if (o.values.length === 0)
      return auth.negative !== undefined && (o.negativeTtl ?? 0) > auth.negative;
    const a = isFresh(o) ? auth.after : auth.before;
    return a !== undefined && (o.ttl ?? 0) > a;
  });
  if (stretched) {
    const negative = stretched.values.length === 0;
    const a = negative ? auth.negative : isFresh(stretched) ? auth.after : auth.before;
    flags.push({
      kind: "ttl-stretching",
      evidence: `answered ${holding(stretched)} at ${secs(rel(stretched.at))}; the authoritative ${negative ? "negative TTL" : "TTL"} is ${a} s`,
    });
  }
  if (late.length > 0 && deadline !== undefined) {
    const first = late[0]!;
    flags.push({
      kind: "serve-stale",
      evidence: `answered ${holding(first)} at ${secs(rel(first.at))}, ${((first.at - deadline) / 1000).toFixed(1)} s past its deadline (${secs(rel(deadline))}); ${late.length} such answer(s)`,
    });
  } else if (revived.length > 0 && deadline !== undefined) {
    const first = revived[0]!;
    flags.push({
      kind: "serve-stale",
      evidence: `answered ${holding(first)} at ${secs(rel(first.at))}, at its deadline (${secs(rel(deadline))}) with a new lifetime: an expired answer served again`,
    });
  }
  const errors = all.filter((o): o is Observation & { ok: false } => !o.ok);
  const lastSeen = all.at(-1)?.at ?? t0;
  let kept: boolean | undefined;
  if (deadline !== undefined) {
    if (freshObs) kept = freshObs.at <= Math.max(deadline, t0) + grace;
    else if (lastSeen > deadline + grace) kept = false;
  }
  return {
    before: { ...input.before, at: rel(input.before.at) },
    ...(deadline !== undefined && { deadlineMs: Math.max(0, rel(deadline)) }),
    deadlineFrom,
    cause,
    ...(freshObs && { freshMs: Math.max(0, rel(freshObs.at)) }),
    staleSeen: afterChange.length,
    staleAfterDeadline: late.length,
    ...(kept !== undefined && { kept }),
    errors: errors.length,
    ...(errors.length > 0 && { lastError: errors.at(-1)!.error }),
    flags,
  };
}
