/**
 * The propagation report, shared by `propagate simulate` and `propagate
 * measure`: per node time-to-fresh samples beside the prediction, as a text
 * table, JSON, and an SVG chart (CDF of time-to-fresh, measured solid and
 * predicted dashed, and origin load when known). Hand-written SVG, no
 * dependency. Also a progress bar for long runs.
 */

export interface NodeSamples {
  nodeId: string;
  tier: string;
  kind: "edge" | "resolver";
  /** Time-to-fresh per change (ms). */
  timesMs: number[];
  /** Answers carrying an older value after a change. */
  staleSeen: number;
  /** Changes the node did not serve within the run's window. */
  unconverged?: number;
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
export function quantile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil(p * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1]!;
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
  const times = nodes.flatMap((n) => n.timesMs).sort((a, b) => a - b);
  let boundMs = Number.NaN;
  let exceeded = 0;
  for (const n of nodes) {
    const b = bounds?.[n.nodeId];
    if (b === undefined) continue;
    boundMs = Number.isNaN(boundMs) ? b : Math.max(boundMs, b);
    exceeded += n.timesMs.filter((t) => t > b).length;
  }
  return {
    label,
    nodes: nodes.length,
    samples: times.length,
    p50: quantile(times, 0.5),
    p90: quantile(times, 0.9),
    p99: quantile(times, 0.99),
    max: times.at(-1) ?? Number.NaN,
    staleSeen: nodes.reduce((s, n) => s + n.staleSeen, 0),
    unconverged: nodes.reduce((s, n) => s + (n.unconverged ?? 0), 0),
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
      Number.isNaN(r.boundMs) ? "-" : r.exceeded === 0 ? "yes" : `NO (${r.exceeded} over)`,
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
      nodes: s.nodes.map((n) => ({ ...n, boundMs: s.boundsMs?.[n.nodeId] ?? null })),
    })),
  };
}

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf"];

function esc(s: string): string {
  return s
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

/** Tick values for an axis from lo to hi: 1-2-5 steps, on a log scale when `log`. */
export function ticks(lo: number, hi: number, log: boolean): number[] {
  const out: number[] = [];
  if (log) {
    // Beyond three decades the 2s and 5s would crowd the labels.
    const steps = Math.log10(hi / lo) > 3 ? [1] : [1, 2, 5];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
      for (const m of steps) {
        const v = m * 10 ** e;
        if (v >= lo && v <= hi) out.push(v);
      }
    }
    return out;
  }
  const raw = (hi - lo) / 6;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(v);
  return out;
}

/**
 * The chart: the CDF of time-to-fresh per series (measured solid, predicted
 * dashed, bound as a dotted vertical line), time on a log axis when the
 * times span more than two decades; below it, origin reads per second.
 */
export function renderSvg(report: Report): string {
  const W = 1000;
  const plot = { x: 70, y: 50, w: 600, h: 300 };
  const withLoad = report.series.filter((s) => s.originLoad && s.originLoad.reads.length > 0);
  const loadBox = { x: 70, y: 420, w: 600, h: 140 };
  const H = withLoad.length > 0 ? 610 : 410;
  const all = report.series.flatMap((s) => [
    ...s.nodes.flatMap((n) => n.timesMs),
    ...(s.predicted ? [s.predicted.boundMs] : []),
  ]);
  const positive = all.filter((t) => t > 0);
  const hiRaw = Math.max(1, ...positive);
  const loRaw = Math.max(0.1, Math.min(hiRaw, ...positive));
  const log = hiRaw / loRaw > 100;
  const lo = log ? 10 ** Math.floor(Math.log10(loRaw)) : 0;
  const hi = log ? 10 ** Math.ceil(Math.log10(hiRaw)) : hiRaw * 1.05;
  const xOf = (t: number) => {
    const f = log
      ? (Math.log10(Math.max(t, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))
      : (t - lo) / (hi - lo);
    return plot.x + Math.min(1, Math.max(0, f)) * plot.w;
  };
  const yOf = (p: number) => plot.y + (1 - p) * plot.h;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${esc(report.title)}</text>`,
  );
  for (const t of ticks(log ? lo : 0, hi, log)) {
    const x = xOf(t).toFixed(1);
    parts.push(
      `<line x1="${x}" y1="${plot.y}" x2="${x}" y2="${plot.y + plot.h}" stroke="#e5e5e5"/>`,
      `<text x="${x}" y="${plot.y + plot.h + 16}" text-anchor="middle">${esc(tickLabel(t))}</text>`,
    );
  }
  for (const p of [0, 0.25, 0.5, 0.75, 0.9, 1]) {
    const y = yOf(p).toFixed(1);
    parts.push(
      `<line x1="${plot.x}" y1="${y}" x2="${plot.x + plot.w}" y2="${y}" stroke="#e5e5e5"/>`,
      `<text x="${plot.x - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${p}</text>`,
    );
  }
  parts.push(
    `<rect x="${plot.x}" y="${plot.y}" width="${plot.w}" height="${plot.h}" fill="none" stroke="#333"/>`,
    `<text x="${plot.x + plot.w / 2}" y="${plot.y + plot.h + 36}" text-anchor="middle">time to fresh after the change${log ? " (log scale)" : ""}</text>`,
    `<text transform="translate(20 ${plot.y + plot.h / 2}) rotate(-90)" text-anchor="middle">fraction of samples (CDF)</text>`,
  );
  report.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const times = s.nodes.flatMap((n) => n.timesMs).sort((a, b) => a - b);
    if (times.length > 0) parts.push(stepPath(times, xOf, yOf, color));
    if (s.predicted) {
      const d = s.predicted.points
        .map(([t, p], k) => `${k === 0 ? "M" : "L"}${xOf(t).toFixed(1)},${yOf(p).toFixed(1)}`)
        .join(" ");
      const xb = xOf(s.predicted.boundMs).toFixed(1);
      parts.push(
        `<path d="${d}" fill="none" stroke="${color}" stroke-width="2" stroke-dasharray="7 4"/>`,
        `<line x1="${xb}" y1="${plot.y}" x2="${xb}" y2="${plot.y + plot.h}" stroke="${color}" stroke-dasharray="2 3"/>`,
      );
    }
  });
  parts.push(legend(report.series, plot.x + plot.w + 20, plot.y));
  if (withLoad.length > 0) parts.push(loadChart(withLoad, report.series, loadBox));
  parts.push("</svg>");
  return `${parts.join("\n")}\n`;
}

/** An axis label: "50 ms", "2 s", "1.5 min". */
function tickLabel(ms: number): string {
  const trim = (x: number) => String(Number(x.toPrecision(3)));
  if (ms < 1_000) return `${trim(ms)} ms`;
  if (ms < 120_000) return `${trim(ms / 1000)} s`;
  return `${trim(ms / 60_000)} min`;
}

/** The empirical CDF as a step path (at most ~800 steps, so 100,000 samples stay small). */
function stepPath(
  sorted: number[],
  xOf: (t: number) => number,
  yOf: (p: number) => number,
  color: string,
): string {
  const n = sorted.length;
  const stride = Math.max(1, Math.floor(n / 800));
  let d = `M${xOf(sorted[0]!).toFixed(1)},${yOf(0).toFixed(1)}`;
  for (let k = 0; k < n; k += stride) {
    const i = Math.min(n - 1, k + stride - 1);
    const x = xOf(sorted[i]!).toFixed(1);
    d += ` H${x} V${yOf((i + 1) / n).toFixed(1)}`;
  }
  return `<path d="${d}" fill="none" stroke="${color}" stroke-width="2"/>`;
}

function legend(series: ReportSeries[], x: number, y: number): string {
  const lines: string[] = [];
  const height = series.length * 36 + 8;
  lines.push(`<rect x="${x}" y="${y}" width="300" height="${height}" fill="white" stroke="#bbb"/>`);
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const yy = y + 16 + i * 36;
    lines.push(
      `<line x1="${x + 8}" y1="${yy}" x2="${x + 38}" y2="${yy}" stroke="${color}" stroke-width="2"/>`,
      `<text x="${x + 44}" y="${yy + 4}">${esc(s.label)}: measured</text>`,
    );
    if (s.predicted) {
      lines.push(
        `<line x1="${x + 8}" y1="${yy + 16}" x2="${x + 38}" y2="${yy + 16}" stroke="${color}" stroke-width="2" stroke-dasharray="7 4"/>`,
        `<text x="${x + 44}" y="${yy + 20}">${esc(s.label)}: predicted (bound ${esc(formatMs(s.predicted.boundMs))}, dotted)</text>`,
      );
    }
  });
  return lines.join("\n");
}

function loadChart(
  withLoad: ReportSeries[],
  all: ReportSeries[],
  box: { x: number; y: number; w: number; h: number },
): string {
  const seconds = Math.max(...withLoad.map((s) => s.originLoad!.reads.length));
  const peak = Math.max(1, ...withLoad.flatMap((s) => s.originLoad!.reads));
  const xOf = (sec: number) => box.x + (sec / Math.max(1, seconds)) * box.w;
  const yOf = (v: number) => box.y + box.h - (v / peak) * box.h;
  const out = [
    `<rect x="${box.x}" y="${box.y}" width="${box.w}" height="${box.h}" fill="none" stroke="#333"/>`,
    `<text x="${box.x + box.w / 2}" y="${box.y - 8}" text-anchor="middle">origin reads per second (excluding change-feed polls)</text>`,
    `<text x="${box.x + box.w / 2}" y="${box.y + box.h + 30}" text-anchor="middle">time since the run started</text>`,
  ];
  for (const t of ticks(0, seconds, false)) {
    out.push(
      `<text x="${xOf(t).toFixed(1)}" y="${box.y + box.h + 14}" text-anchor="middle">${t} s</text>`,
    );
  }
  for (const v of [0, peak]) {
    out.push(
      `<text x="${box.x - 6}" y="${yOf(v).toFixed(1)}" text-anchor="end" dominant-baseline="middle">${v}</text>`,
    );
  }
  for (const s of withLoad) {
    const color = COLORS[all.indexOf(s) % COLORS.length]!;
    const d = s
      .originLoad!.reads.map(
        (v, k) => `${k === 0 ? "M" : "L"}${xOf(k + 0.5).toFixed(1)},${yOf(v).toFixed(1)}`,
      )
      .join(" ");
    out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.5"/>`);
  }
  return out.join("\n");
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
