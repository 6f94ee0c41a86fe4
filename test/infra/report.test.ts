import { describe, expect, it } from "vitest";
import {
  type NodeSamples,
  PER_NODE_ROWS,
  progressBar,
  quantile,
  type Report,
  renderTable,
  rows,
  summarise,
  toJson,
  verdict,
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
