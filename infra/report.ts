/**
 * The propagation report, shared by `propagate simulate` and `propagate
 * measure`: per node time-to-fresh samples beside the prediction, as a text
 * table and JSON (the SVG chart is report-svg.ts). Also a progress bar for
 * long runs.
 */
import { extend } from "../core/objects.ts";

export interface NodeSamples {
  nodeId: string;
  tier: string;
  kind: "edge" | "resolver" | "secondary";
  /** Time-to-fresh per change (ms). */
  timesMs: number[];
  /** Answers carrying an older value after a change. */
  staleSeen: number;
  /** Changes the node did not serve within the run's window. */
  unconverged?: number;
  /** Probes that got no answer (timeout, refused, HTTP error). */
  errors?: number;
}

export interface PredictedCurve {
  /** The worst case over the nodes the curve covers. */
  boundMs: number;
  /** CDF points [ms, P(time-to-fresh <= ms)], increasing in ms. */
  points: [number, number][];
}

export interface ReportSeries {
  /** e.g. the mode, or "live" / "simulated". */
  label: string;
  nodes: NodeSamples[];
  /** Per node bound (ms), by node id. */
  boundsMs?: Record<string, number>;
  /** Expected CDF pooled over the nodes. */
  predicted?: PredictedCurve;
  /** Requests reaching the origin per second since the start. */
  originLoad?: { reads: number[]; feed?: number[] };
}

export interface Report {
  title: string;
  series: ReportSeries[];
  notes?: string[];
}

/** Nearest-rank quantile (p in [0, 1]) of sorted values; NaN when empty. */
export function quantile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[rankIndex(sorted.length, p)]!;
}

/** The index of the nearest-rank p quantile among n sorted values (n > 0). */
function rankIndex(n: number, p: number): number {
  return Math.min(n, Math.max(1, Math.ceil(p * n))) - 1;
}

/**
 * Puts the k-th smallest of `a[lo..hi]` at index k, nothing larger before it
 * and nothing smaller after it, and returns it: Hoare's FIND as Wirth writes
 * it (Algorithms + Data Structures = Programs, §2.3.4), expected linear, the
 * median of three as the pivot so that sorted input is no worst case. For
 * values without NaN (every comparison with NaN is false).
 */
export function selectKth(a: Float64Array, k: number, lo = 0, hi = a.length - 1): number {
  while (lo < hi) {
    const x = medianOfThree(a[lo]!, a[(lo + hi) >>> 1]!, a[hi]!);
    let i = lo;
    let j = hi;
    do {
      while (a[i]! < x) i++;
      while (x < a[j]!) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i] = a[j]!;
        a[j] = t;
        i++;
        j--;
      }
    } while (i <= j);
    if (j < k) lo = i;
    if (k < i) hi = j;
  }
  return a[k]!;
}

function medianOfThree(a: number, b: number, c: number): number {
  return Math.max(Math.min(a, b), Math.min(Math.max(a, b), c));
}

/**
 * The p50, p90 and p99 (nearest rank) and the maximum of `times`, which it
 * reorders: the quantiles of a sort, by selection (a simulated hour of
 * 100,000 resolvers has 1.2 million samples per table row, and a sort of
 * them took ~150 ms against ~25 ms). With a NaN among them, a sort.
 */
function tail(times: Float64Array): { p50: number; p90: number; p99: number; max: number } {
  const n = times.length;
  if (n === 0) return { p50: Number.NaN, p90: Number.NaN, p99: Number.NaN, max: Number.NaN };
  if (times.some(Number.isNaN)) {
    times.sort();
    return {
      p50: quantile(times, 0.5),
      p90: quantile(times, 0.9),
      p99: quantile(times, 0.99),
      max: times[n - 1]!,
    };
  }
  // Each selection leaves nothing larger before its index: the next one looks only there.
  const k99 = rankIndex(n, 0.99);
  const p99 = selectKth(times, k99);
  const k90 = rankIndex(n, 0.9);
  const p90 = selectKth(times, k90, 0, k99);
  const p50 = selectKth(times, rankIndex(n, 0.5), 0, k90);
  let max = p99;
  for (let i = k99 + 1; i < n; i++) if (times[i]! > max) max = times[i]!;
  return { p50, p90, p99, max };
}

export interface Summary {
  label: string;
  nodes: number;
  samples: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  staleSeen: number;
  unconverged: number;
  /** The largest bound of the nodes summarised (NaN when none is known). */
  boundMs: number;
  /** Samples above their own node's bound. */
  exceeded: number;
}

export function summarise(
  label: string,
  nodes: NodeSamples[],
  bounds?: Record<string, number>,
): Summary {
  // A typed array: a simulated hour of 100,000 resolvers has over a million samples.
  let count = 0;
  for (const n of nodes) count += n.timesMs.length;
  const times = new Float64Array(count);
  let at = 0;
  let boundMs = Number.NaN;
  let exceeded = 0;
  let staleSeen = 0;
  let unconverged = 0;
  for (const n of nodes) {
    const b = bounds?.[n.nodeId];
    if (b !== undefined) boundMs = Number.isNaN(boundMs) ? b : Math.max(boundMs, b);
    const limit = b ?? Number.POSITIVE_INFINITY;
    for (const t of n.timesMs) {
      times[at++] = t;
      if (t > limit) exceeded++;
    }
    staleSeen += n.staleSeen;
    unconverged += n.unconverged ?? 0;
  }
  return {
    label,
    nodes: nodes.length,
    samples: times.length,
    ...tail(times),
    staleSeen,
    unconverged,
    boundMs,
    exceeded,
  };
}

/** Rows per node for small runs; per tier beyond this many nodes. */
export const PER_NODE_ROWS = 40;

/** The rows a table shows: one per node, or one per tier for large runs. */
export function rows(series: ReportSeries): Summary[] {
  const { nodes, boundsMs } = series;
  if (nodes.length <= PER_NODE_ROWS) return nodes.map((n) => summarise(n.nodeId, [n], boundsMs));
  const tiers = new Map<string, NodeSamples[]>();
  for (const n of nodes) {
    const tier = tiers.get(n.tier);
    if (tier) tier.push(n);
    else tiers.set(n.tier, [n]);
  }
  return [...tiers].map(([tier, ns]) => summarise(`${tier} (${ns.length})`, ns, boundsMs));
}

export function formatMs(ms: number): string {
  if (Number.isNaN(ms)) return "-";
  if (ms < 1_000) return `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  return `${(ms / 60_000).toFixed(1)} min`;
}

/**
 * Whether every sample stayed within its bound. A change the node never
 * served within the run is never within, whatever the bound says.
 */
export function verdict(r: Pick<Summary, "boundMs" | "exceeded" | "unconverged">): string {
  if (Number.isNaN(r.boundMs)) return "-";
  const why = [
    ...(r.exceeded > 0 ? [`${r.exceeded} over`] : []),
    ...(r.unconverged > 0 ? [`${r.unconverged} unconverged`] : []),
  ];
  return why.length === 0 ? "yes" : `NO (${why.join(", ")})`;
}

/** A plain-text table per series, with a verdict against the prediction. */
export function renderTable(report: Report): string {
  const out = [report.title, ""];
  const head = ["node", "n", "p50", "p90", "p99", "max", "stale", "unconv", "bound", "within"];
  for (const s of report.series) {
    const table = rows(s).map((r) => [
      r.label,
      String(r.samples),
      formatMs(r.p50),
      formatMs(r.p90),
      formatMs(r.p99),
      formatMs(r.max),
      String(r.staleSeen),
      String(r.unconverged),
      formatMs(r.boundMs),
      verdict(r),
    ]);
    const total = summarise("all", s.nodes, s.boundsMs);
    out.push(`${s.label}: ${total.samples} samples from ${total.nodes} nodes`);
    const widths = head.map((h, i) => Math.max(h.length, ...table.map((r) => r[i]!.length)));
    const line = (cells: string[]) =>
      cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
    out.push(line(head), line(widths.map((w) => "-".repeat(w))), ...table.map(line));
    if (s.originLoad) {
      const reads = s.originLoad.reads;
      const total = reads.reduce((a, b) => a + b, 0);
      const feed = s.originLoad.feed?.reduce((a, b) => a + b, 0) ?? 0;
      out.push(
        `origin load: ${total} reads (peak ${Math.max(0, ...reads)}/s, mean ${(total / Math.max(1, reads.length)).toFixed(1)}/s), ${feed} change-feed polls`,
      );
    }
    out.push("");
  }
  for (const n of report.notes ?? []) out.push(`note: ${n}`);
  return out.join("\n");
}

/** The JSON form: the report with a summary per series (and per node) added. */
export function toJson(report: Report): unknown {
  return {
    title: report.title,
    notes: report.notes ?? [],
    series: report.series.map((s) => ({
      label: s.label,
      summary: summarise("all", s.nodes, s.boundsMs),
      rows: rows(s),
      predicted: s.predicted ?? null,
      originLoad: s.originLoad ?? null,
      // extend, not a spread that adds boundMs: Node 20 builds a hidden class
      // for each such object (core/objects.ts); 101,000 rows took 0.2-0.4 s.
      nodes: s.nodes.map((n) => extend(n, { boundMs: s.boundsMs?.[n.nodeId] ?? null })),
    })),
  };
}

/**
 * JSON text of a report, as `simulate --json` and `measure --json` print
 * it: indented by two spaces, except that each entry of a `nodes` array is
 * one line. A run of 100,000 resolvers has a row per node
 * and a sample per change in each: fully indented, 68 MB, most of it
 * indentation, and a second of the command's wall time to build and write;
 * one line per node is as easy to read and to grep. `JSON.parse` reads it
 * as it reads `JSON.stringify(value, null, 2)`.
 */
export function reportJsonText(value: unknown): string {
  const parts: string[] = [];
  writeReportJson(value, (chunk) => parts.push(chunk));
  return parts.join("");
}

/** Rows of a `nodes` array joined into one chunk: ~0.5 MB of a 100,000-resolver run's. */
const ROWS_PER_CHUNK = 1_000;

/**
 * `reportJsonText(value)` handed to `write` a chunk at a time, the rows of
 * a `nodes` array a thousand at once: the 100,000-resolver hour's 40 MB
 * was one string (its rows joined, then copied into a buffer to be
 * written), 1.0 of the 1.6 s the command took after its workers ended.
 */
export function writeReportJson(value: unknown, write: (chunk: string) => void): void {
  const arrays: unknown[][] = [];
  // Each nodes array leaves a marker in the indented text, in order; its
  // rows are written on their own. The marker is a string no report holds:
  // it starts with U+0000, which JSON writes as the escape \u0000.
  const text = JSON.stringify(
    value,
    (key, v: unknown) => {
      if (key !== "nodes" || !Array.isArray(v)) return v;
      arrays.push(v);
      return `\u0000nodes ${arrays.length - 1}`;
    },
    2,
  );
  let from = 0;
  for (const m of text.matchAll(/^( *)"nodes": "\\u0000nodes (\d+)"/gm)) {
    const indent = m[1]!;
    const rows = arrays[Number(m[2])]!;
    if (rows.length === 0) {
      write(`${text.slice(from, m.index)}${indent}"nodes": []`);
    } else {
      write(`${text.slice(from, m.index)}${indent}"nodes": [\n`);
      const between = `,\n${indent}  `;
      for (let at = 0; at < rows.length; at += ROWS_PER_CHUNK) {
        const chunk = rows.slice(at, at + ROWS_PER_CHUNK).map((row) => JSON.stringify(row));
        const last = at + ROWS_PER_CHUNK >= rows.length;
        write(`${indent}  ${chunk.join(between)}${last ? `\n${indent}]` : ",\n"}`);
      }
    }
    from = m.index + m[0].length;
  }
  write(text.slice(from));
}

/** `writeReportJson` to standard output, and a newline, as `console.log` prints the text (writes to a file or a pipe are synchronous). */
export function printReportJson(value: unknown): void {
  writeReportJson(value, (chunk) => process.stdout.write(chunk));
  process.stdout.write("\n");
}

export interface Progress {
  update(done: number): void;
  finish(): void;
}

/** A one-line progress bar on stderr, only when stderr is a terminal. */
export function progressBar(
  label: string,
  total: number,
  stream: NodeJS.WriteStream = process.stderr,
): Progress {
  if (!stream.isTTY) return { update: () => {}, finish: () => {} };
  const width = 30;
  const draw = (done: number) => {
    const f = total > 0 ? Math.min(1, done / total) : 1;
    const bar = "#".repeat(Math.round(f * width)).padEnd(width, ".");
    stream.write(`\r${label} [${bar}] ${done}/${total}`);
  };
  draw(0);
  return { update: draw, finish: () => stream.write("\n") };
}
