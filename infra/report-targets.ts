/**
 * The part of `propagate measure`'s report about targets (DNS servers we do
 * not run): per target what it held before the change, its deadline, when it
 * served the new value, stale answers, whether it kept the deadline, and the
 * targets flagged for TTL stretching or serve-stale with their evidence.
 * Table and JSON here; the timeline SVG is report-svg.ts.
 */
import type { RRType } from "../core/records.ts";
import { formatMs } from "./report.ts";
import { describeObservation } from "./targets.ts";
import type { AuthTtls, TargetResult, TargetSample } from "./targets-judge.ts";

export interface TargetReport {
  name: string;
  type: RRType;
  targets: TargetResult[];
  auth: AuthTtls[];
}

const rel = (ms: number | undefined) =>
  ms === undefined ? "-" : `+${formatMs(ms).replace(" ", " ")}`;

function keptText(samples: TargetSample[]): string {
  const judged = samples.filter((s) => s.kept !== undefined);
  if (judged.length === 0) return "-";
  const broken = judged.filter((s) => !s.kept).length;
  return broken === 0 ? "yes" : `NO (${broken} of ${judged.length})`;
}

const CAUSES: Record<TargetSample["cause"], string> = {
  ttl: "TTL",
  "negative-cache": "negative cache (RFC 2308)",
  "already-fresh": "already fresh",
  unknown: "-",
};

/** One row per target; samples are summarised by their worst. */
export function renderTargetTable(r: TargetReport): string {
  const head = [
    "target",
    "n",
    "held before the change",
    "deadline",
    "fresh",
    "stale",
    "late",
    "kept",
    "cause",
  ];
  const rows = r.targets.map((t) => {
    if (t.error) return [t.label, "0", "not asked (bad target)", "-", "-", "-", "-", "-", "-"];
    const last = t.samples.at(-1);
    const max = (f: (s: TargetSample) => number | undefined) => {
      const xs = t.samples.map(f).filter((x): x is number => x !== undefined);
      return xs.length > 0 ? Math.max(...xs) : undefined;
    };
    const unconverged = t.samples.filter((s) => s.freshMs === undefined).length;
    return [
      t.label,
      String(t.samples.length),
      last ? describeObservation(last.before) : "-",
      rel(max((s) => s.deadlineMs)),
      unconverged > 0 ? `never (${unconverged})` : rel(max((s) => s.freshMs)),
      String(t.samples.reduce((a, s) => a + s.staleSeen, 0)),
      String(t.samples.reduce((a, s) => a + s.staleAfterDeadline, 0)),
      keptText(t.samples),
      [...new Set(t.samples.map((s) => CAUSES[s.cause]))].join(", "),
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((x) => x[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i <= 2 || i === 8 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join("  ")
      .trimEnd();
  const authText = r.auth.at(-1);
  const out = [
    `targets: ${r.name} ${r.type}; deadline = the latest moment a target may still serve the old answer if it honours TTLs (after the change)`,
    ...(authText
      ? [
          `authoritative TTLs: old ${authText.before ?? "-"} s, new ${authText.after ?? "-"} s, negative ${authText.negative ?? "-"} s`,
        ]
      : []),
    line(head),
    line(widths.map((w) => "-".repeat(w))),
    ...rows.map(line),
  ];
  const flagged = r.targets.flatMap((t) =>
    dedupe(t.samples.flatMap((s) => s.flags)).map((f) => `  ${t.label}: ${f.kind}: ${f.evidence}`),
  );
  if (flagged.length > 0) out.push("", "flagged:", ...flagged);
  const errors = r.targets.flatMap((t) => {
    if (t.error) return [`  ${t.label}: ${t.error}`];
    const failed = t.samples.reduce((a, s) => a + s.errors, 0);
    const last = t.samples.findLast((s) => s.lastError)?.lastError;
    return failed > 0 ? [`  ${t.label}: ${failed} question(s) got no answer; last: ${last}`] : [];
  });
  if (errors.length > 0) out.push("", "errors:", ...errors);
  const traps = r.targets.filter((t) =>
    t.samples.some((s) => s.cause === "negative-cache" && s.staleSeen > 0),
  );
  for (const t of traps) {
    const s = t.samples.find((x) => x.cause === "negative-cache" && x.staleSeen > 0)!;
    out.push(
      "",
      `${t.label} served the negative answer after the change until ${rel(s.freshMs)}: it had cached it (${s.deadlineFrom}); RFC 2308 lets it, until min(SOA TTL, SOA MINIMUM) runs out. Ask no name before it exists, or lower the SOA MINIMUM first.`,
    );
  }
  return out.join("\n");
}

function dedupe<T extends { kind: string }>(flags: T[]): T[] {
  const seen = new Set<string>();
  return flags.filter((f) => !seen.has(f.kind) && seen.add(f.kind) !== undefined);
}

/** The targets part of the JSON report. */
export function targetsJson(r: TargetReport): {
  name: string;
  type: RRType;
  auth: AuthTtls[];
  targets: unknown[];
} {
  return {
    name: r.name,
    type: r.type,
    auth: r.auth,
    targets: r.targets.map((t) => ({
      ...t,
      flags: dedupe(t.samples.flatMap((s) => s.flags)),
    })),
  };
}
