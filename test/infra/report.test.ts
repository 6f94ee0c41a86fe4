import { describe, expect, it } from "vitest";
import { Random } from "../../core/random.ts";
import {
  type NodeSamples,
  PER_NODE_ROWS,
  progressBar,
  quantile,
  type Report,
  renderTable,
  reportJsonText,
  rows,
  selectKth,
  summarise,
  toJson,
  verdict,
  writeReportJson,
} from "../../infra/report.ts";
import { renderSvg, ticks } from "../../infra/report-svg.ts";

const node = (nodeId: string, timesMs: number[], staleSeen = 0, tier = "edge"): NodeSamples => ({
  nodeId,
  tier,
  kind: tier === "resolver" ? "resolver" : "edge",
  timesMs,
  staleSeen,
});

const report: Report = {
  title: "two nodes <test>",
  series: [
    {
      label: "invalidate",
      nodes: [node("edge-1", [10, 20, 30, 40], 3), node("edge-2", [100, 200], 1)],
      boundsMs: { "edge-1": 50, "edge-2": 150 },
      predicted: {
        boundMs: 150,
        points: [
          [0, 0],
          [50, 0.5],
          [150, 1],
        ],
      },
      originLoad: { reads: [1, 4, 2], feed: [10, 10, 10] },
    },
  ],
};

describe("report", () => {
  it("takes nearest-rank quantiles", () => {
    const s = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    expect(quantile(s, 0.5)).toBe(5);
    expect(quantile(s, 0.9)).toBe(9);
    expect(quantile(s, 0.99)).toBe(10);
    expect(quantile([], 0.5)).toBeNaN();
  });

  it("selects the k-th smallest as a sort would place it, whatever the order and ties", () => {
    // Seeded, so a failure replays.
    const random = new Random(12345);
    const next = () => random.next();
    const shapes: [string, (n: number) => number[]][] = [
      ["random", (n) => Array.from({ length: n }, () => next() * 1000)],
      ["few values", (n) => Array.from({ length: n }, () => Math.floor(next() * 3))],
      ["sorted", (n) => Array.from({ length: n }, (_, i) => i)],
      ["reversed", (n) => Array.from({ length: n }, (_, i) => n - i)],
      ["all equal", (n) => Array<number>(n).fill(7)],
      ["organ pipe", (n) => Array.from({ length: n }, (_, i) => Math.min(i, n - i))],
    ];
    for (const [shape, make] of shapes) {
      for (const n of [1, 2, 3, 5, 10, 101, 1000]) {
        const values = make(n);
        const sorted = Float64Array.from(values).sort();
        for (const k of new Set([0, 1, n >> 1, n - 2, n - 1].filter((i) => i >= 0 && i < n))) {
          const a = Float64Array.from(values);
          expect(selectKth(a, k), `${shape} n=${n} k=${k}`).toBe(sorted[k]);
          // Nothing larger before it, nothing smaller after it.
          for (let i = 0; i < k; i++) expect(a[i]! <= a[k]!).toBe(true);
          for (let i = k + 1; i < n; i++) expect(a[i]! >= a[k]!).toBe(true);
        }
      }
    }
  });

  it("takes a summary's quantiles and maximum as a sort of every sample would", () => {
    const random = new Random(99);
    const next = () => random.next();
    const shapes: [string, (k: number, n: number) => number][] = [
      ["random", () => Math.round(next() * 500)],
      ["few values", () => Math.floor(next() * 4)],
      ["reversed", (k, n) => n - k],
      ["sorted", (k) => k],
    ];
    for (const [shape, value] of shapes) {
      // Every size up to 300 (where the ranks fall together or apart), and a large one.
      for (const n of [...Array.from({ length: 301 }, (_, i) => i), 5000]) {
        const nodes = Array.from({ length: Math.max(1, n >> 3) }, (_, i) =>
          node(`n${i}`, [], 0, "resolver"),
        );
        for (let k = 0; k < n; k++) nodes[k % nodes.length]!.timesMs.push(value(k, n));
        const all = Float64Array.from(nodes.flatMap((d) => d.timesMs)).sort();
        const s = summarise("all", nodes);
        expect([s.p50, s.p90, s.p99, s.max], `${shape} n=${n}`).toEqual([
          quantile(all, 0.5),
          quantile(all, 0.9),
          quantile(all, 0.99),
          n === 0 ? Number.NaN : all[n - 1],
        ]);
      }
    }
    // A NaN among the samples: the sort's answer (NaN last).
    const odd = summarise("odd", [node("a", [3, Number.NaN, 1, 2])]);
    expect([odd.p50, odd.p90, odd.max]).toEqual([2, Number.NaN, Number.NaN]);
  });

  it("summarises samples against each node's own bound", () => {
    const s = summarise("all", report.series[0]!.nodes, report.series[0]!.boundsMs);
    expect(s).toMatchObject({ samples: 6, p50: 30, max: 200, staleSeen: 4, boundMs: 150 });
    // 200 ms is above edge-2's 150 ms bound; 40 ms is within edge-1's 50 ms.
    expect(s.exceeded).toBe(1);
  });

  it("prints a row per node with the verdict, and the origin load", () => {
    const text = renderTable(report);
    expect(text).toMatch(/edge-1\s+4\s+20 ms\s+40 ms\s+40 ms\s+40 ms\s+3\s+0\s+50 ms\s+yes/);
    expect(text).toMatch(/edge-2 .* NO \(1 over\)/);
    expect(text).toContain("origin load: 7 reads (peak 4/s, mean 2.3/s), 30 change-feed polls");
  });

  it("never calls a node that did not converge within, whatever its samples", () => {
    const stuck: NodeSamples = { ...node("edge-3", [10], 0), unconverged: 2 };
    const r = summarise("edge-3", [stuck], { "edge-3": 50 });
    expect(r.exceeded).toBe(0);
    expect(verdict(r)).toBe("NO (2 unconverged)");
    expect(verdict({ ...r, exceeded: 1 })).toBe("NO (1 over, 2 unconverged)");
    expect(verdict({ ...r, boundMs: Number.NaN })).toBe("-");
    const text = renderTable({
      title: "t",
      series: [{ label: "live", nodes: [stuck], boundsMs: { "edge-3": 50 } }],
    });
    expect(text).toMatch(/edge-3 .* NO \(2 unconverged\)/);
  });

  it("groups rows by tier beyond the per-node limit", () => {
    const many = Array.from({ length: PER_NODE_ROWS + 1 }, (_, i) =>
      node(`res-${i}`, [i], 0, "resolver"),
    );
    const r = rows({ label: "ttl", nodes: [...many, node("edge-1", [5])] });
    expect(r.map((x) => x.label)).toEqual([`resolver (${PER_NODE_ROWS + 1})`, "edge (1)"]);
  });

  it("has a JSON form with summaries and per-node bounds", () => {
    const json = JSON.parse(JSON.stringify(toJson(report)));
    expect(json.series[0].summary.samples).toBe(6);
    expect(json.series[0].nodes[1]).toMatchObject({ nodeId: "edge-2", boundMs: 150 });
  });

  it("writes its JSON indented, each node's row on one line", () => {
    const json = toJson({
      ...report,
      series: [...report.series, { label: "none", nodes: [] }],
    }) as { series: unknown[] };
    const value = { ...json, populations: { invalidate: [{ label: "edges", nodes: 2 }] } };
    const text = reportJsonText(value);
    expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(value)));
    // Every row a line of its own, one level deeper than its array.
    const lines = text.split("\n");
    const open = lines.indexOf('      "nodes": [');
    expect(open).toBeGreaterThan(0);
    const nodes = report.series[0]!.nodes;
    expect(lines.slice(open + 1, open + 1 + nodes.length)).toEqual(
      nodes.map((n, i) => {
        const row = { ...n, boundMs: report.series[0]!.boundsMs?.[n.nodeId] ?? null };
        return `        ${JSON.stringify(row)}${i < nodes.length - 1 ? "," : ""}`;
      }),
    );
    expect(lines[open + 1 + nodes.length]).toBe("      ]");
    expect(text).toContain('      "nodes": []');
    // The rest as JSON.stringify indents it: a count named nodes is no row.
    expect(text).toContain('        "nodes": 2');
    expect(text.startsWith('{\n  "title": ')).toBe(true);
    expect(reportJsonText({ a: [1] })).toBe(JSON.stringify({ a: [1] }, null, 2));
  });

  it("writes the JSON a chunk at a time, a thousand rows in each, as the one text", () => {
    const nodes = Array.from({ length: 2_500 }, (_, i) => ({ nodeId: `r${i}`, times: [i, i + 1] }));
    const value = {
      title: "t",
      series: [
        { label: "a", nodes },
        { label: "b", nodes: [] },
      ],
      n: 1,
    };
    const chunks: string[] = [];
    writeReportJson(value, (c) => chunks.push(c));
    // What comes before the rows, three chunks of rows, up to the empty array, the rest.
    expect(chunks).toHaveLength(6);
    expect(chunks.slice(1, 4).map((c) => c.split("\n").length)).toEqual([1_001, 1_001, 501]);
    const text = chunks.join("");
    expect(text).toBe(reportJsonText(value));
    expect(JSON.parse(text)).toEqual(value);
    const lines = text.split("\n");
    const open = lines.indexOf('      "nodes": [');
    expect(lines[open + 1]).toBe(`        ${JSON.stringify(nodes[0])},`);
    expect(lines[open + 1_000]).toBe(`        ${JSON.stringify(nodes[999])},`);
    expect(lines[open + 1_001]).toBe(`        ${JSON.stringify(nodes[1_000])},`);
    expect(lines[open + 2_500]).toBe(`        ${JSON.stringify(nodes[2_499])}`);
    expect(lines[open + 2_501]).toBe("      ]");
  });

  it("draws an SVG with axes, legend, both curves and escaped text", () => {
    const svg = renderSvg(report);
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg).toContain("two nodes &lt;test&gt;");
    expect(svg).toContain("time to fresh after the change");
    expect(svg).toContain("fraction of samples (CDF)");
    expect(svg).toContain("invalidate: measured");
    expect(svg).toContain('stroke-dasharray="7 4"');
    expect(svg).toContain("origin reads per second");
    expect(svg.trim().endsWith("</svg>")).toBe(true);
  });

  it("makes 1-2-5 ticks, linear or log", () => {
    expect(ticks(0, 100, false)).toEqual([0, 20, 40, 60, 80, 100]);
    expect(ticks(10, 1000, true)).toEqual([10, 20, 50, 100, 200, 500, 1000]);
    expect(ticks(1, 100_000, true)).toEqual([1, 10, 100, 1000, 10_000, 100_000]);
  });

  it("draws no progress bar when stderr is not a terminal", () => {
    const written: string[] = [];
    const stream = {
      isTTY: false,
      write: (s: string) => written.push(s),
    } as unknown as NodeJS.WriteStream;
    const bar = progressBar("x", 3, stream);
    bar.update(2);
    bar.finish();
    expect(written).toEqual([]);
    const tty = {
      isTTY: true,
      write: (s: string) => written.push(s),
    } as unknown as NodeJS.WriteStream;
    progressBar("run", 4, tty).update(2);
    expect(written.at(-1)).toBe(`\rrun [${"#".repeat(15)}${".".repeat(15)}] 2/4`);
  });
});
