/**
 * The report's SVG charts: the CDF of time-to-fresh per series (measured
 * solid, predicted dashed, bound dotted) with origin load below, and the
 * timeline of a measure with targets (per target: old until, new from, its
 * deadline). Hand-written SVG, no dependency.
 */
import { formatMs, type NodeSamples, type Report, type ReportSeries } from "./report.ts";
import type { TargetReport } from "./report-targets.ts";

export const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf"];

export function esc(s: string): string {
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
export function tickLabel(ms: number): string {
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

interface Row {
  label: string;
  /** Old answers until here (ms after the change); the new value from here, unless never. */
  freshMs?: number;
  /** The end of the run, for a row that never turned fresh. */
  endMs: number;
  /** The target's deadline, or the node's predicted bound. */
  deadlineMs?: number;
  deadlineKind: "deadline" | "bound";
  late: boolean;
}

/**
 * One row per target (its worst sample: the latest fresh) and per registered
 * node (its slowest sample): red while it served the old answer, green from
 * the new value on, a black tick at its deadline (dashed at a node's bound).
 */
export function renderTimelineSvg(
  title: string,
  r: TargetReport & { nodes: NodeSamples[] },
  boundsMs: Record<string, number>,
): string {
  const rows: Row[] = [];
  for (const t of r.targets) {
    if (t.error || t.samples.length === 0) continue;
    const worst = [...t.samples].sort(
      (a, b) => (b.freshMs ?? Number.POSITIVE_INFINITY) - (a.freshMs ?? Number.POSITIVE_INFINITY),
    )[0]!;
    rows.push({
      label: t.label,
      ...(worst.freshMs !== undefined && { freshMs: worst.freshMs }),
      endMs: Math.max(worst.freshMs ?? 0, worst.deadlineMs ?? 0),
      ...(worst.deadlineMs !== undefined && { deadlineMs: worst.deadlineMs }),
      deadlineKind: "deadline",
      late: worst.kept === false,
    });
  }
  for (const n of r.nodes) {
    const slowest = n.timesMs.length > 0 ? Math.max(...n.timesMs) : undefined;
    const bound = boundsMs[n.nodeId];
    rows.push({
      label: n.nodeId,
      ...(slowest !== undefined && (n.unconverged ?? 0) === 0 && { freshMs: slowest }),
      endMs: Math.max(slowest ?? 0, bound ?? 0),
      ...(bound !== undefined && { deadlineMs: bound }),
      deadlineKind: "bound",
      late: (n.unconverged ?? 0) > 0 || (bound !== undefined && (slowest ?? 0) > bound),
    });
  }
  const hi = Math.max(1000, ...rows.map((x) => x.endMs)) * 1.1;
  const W = 1000;
  const rowH = 26;
  const plot = { x: 170, y: 60, w: 760 };
  const H = plot.y + rows.length * rowH + 70;
  const xOf = (t: number) => plot.x + (Math.min(t, hi) / hi) * plot.w;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`,
    `<text x="${W / 2}" y="44" text-anchor="middle">${esc(`${r.name} ${r.type}: red old answer, green new answer, black tick the deadline (dashed: a node's predicted bound)`)}</text>`,
  ];
  const bottom = plot.y + rows.length * rowH;
  for (const t of ticks(0, hi, false)) {
    const x = xOf(t).toFixed(1);
    parts.push(
      `<line x1="${x}" y1="${plot.y}" x2="${x}" y2="${bottom}" stroke="#e5e5e5"/>`,
      `<text x="${x}" y="${bottom + 16}" text-anchor="middle">${esc(tickLabel(t))}</text>`,
    );
  }
  parts.push(
    `<text x="${plot.x + plot.w / 2}" y="${bottom + 36}" text-anchor="middle">time after the change</text>`,
  );
  rows.forEach((row, i) => {
    const y = plot.y + i * rowH;
    const fresh = row.freshMs ?? hi;
    parts.push(
      `<text x="${plot.x - 8}" y="${y + rowH / 2}" text-anchor="end" dominant-baseline="middle"${row.late ? ' fill="#d62728" font-weight="bold"' : ""}>${esc(row.label)}</text>`,
      `<rect x="${plot.x}" y="${y + 5}" width="${(xOf(fresh) - plot.x).toFixed(1)}" height="${rowH - 10}" fill="#f4a6a6"><title>${esc(`${row.label}: old until ${row.freshMs === undefined ? "the end (never fresh)" : formatMs(fresh)}`)}</title></rect>`,
    );
    if (row.freshMs !== undefined) {
      parts.push(
        `<rect x="${xOf(fresh).toFixed(1)}" y="${y + 5}" width="${(plot.x + plot.w - xOf(fresh)).toFixed(1)}" height="${rowH - 10}" fill="#9fd89f"><title>${esc(`${row.label}: new from ${formatMs(fresh)}`)}</title></rect>`,
      );
    }
    if (row.deadlineMs !== undefined) {
      const x = xOf(row.deadlineMs).toFixed(1);
      parts.push(
        `<line x1="${x}" y1="${y + 1}" x2="${x}" y2="${y + rowH - 1}" stroke="black" stroke-width="2"${row.deadlineKind === "bound" ? ' stroke-dasharray="3 2"' : ""}><title>${esc(`${row.label}: ${row.deadlineKind} ${formatMs(row.deadlineMs)}`)}</title></line>`,
      );
    }
  });
  parts.push("</svg>");
  return `${parts.join("\n")}\n`;
}
