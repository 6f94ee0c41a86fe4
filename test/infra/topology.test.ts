import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  depths,
  edgesInStartOrder,
  loadTopology,
  parseTopology,
  TopologyError,
} from "../../infra/topology.ts";
import { DEFAULT_TOPOLOGY } from "../../infra/up.ts";

describe("topology files", () => {
  it("the default topology is valid: 2 regional edges, 4 edges, 2 resolvers", async () => {
    const t = await loadTopology(DEFAULT_TOPOLOGY);
    expect(t.edges.filter((e) => e.tier === "regional")).toHaveLength(2);
    expect(t.edges.filter((e) => e.tier === "edge")).toHaveLength(4);
    expect(t.resolvers).toHaveLength(2);
    expect(depths(t).get("res-1")).toBe(3);
  });

  it("lists every schema problem with its field", () => {
    const bad = {
      bus: "kafka://x",
      defaults: { link: { latency: { kind: "lognormal", medianMs: -1, sigma: 0.5 } } },
      edges: [{ id: "Edge 1", parent: "origin", http: "nowhere" }],
    };
    let message = "";
    try {
      parseTopology(bad, "t.json");
    } catch (e) {
      expect(e).toBeInstanceOf(TopologyError);
      message = (e as Error).message;
    }
    expect(message).toMatch(/^t\.json is not a valid topology/);
    expect(message).toMatch(/bus: bus is "memory", "off" or a redis:\/\/ URL/);
    expect(message).toMatch(/defaults\.link\.latency\.medianMs/);
    expect(message).toMatch(/edges\[0\]\.id/);
    expect(message).toMatch(/edges\[0\]\.http: expected HOST:PORT/);
  });

  it("checks parents, duplicate ids and cycles", () => {
    const problems = (spec: unknown) => {
      try {
        parseTopology(spec);
        return "";
      } catch (e) {
        return (e as Error).message;
      }
    };
    expect(problems({ edges: [{ id: "a", parent: "ghost" }] })).toMatch(
      /edges\.0\.parent: "ghost" is neither/,
    );
    expect(problems({ resolvers: [{ id: "r", upstream: "ghost" }] })).toMatch(
      /resolvers\.0\.upstream/,
    );
    expect(
      problems({
        edges: [{ id: "a", parent: "origin" }],
        resolvers: [{ id: "a", upstream: "origin" }],
      }),
    ).toMatch(/node "a" .* is defined twice/);
    expect(
      problems({
        edges: [
          { id: "a", parent: "b" },
          { id: "b", parent: "a" },
        ],
      }),
    ).toMatch(/cycle: a -> b -> a/);
  });

  it("orders edges so parents start first", () => {
    const t = parseTopology({
      edges: [
        { id: "leaf", parent: "mid" },
        { id: "mid", parent: "origin" },
      ],
    });
    expect(edgesInStartOrder(t).map((e) => e.id)).toEqual(["mid", "leaf"]);
  });

  it("names an unreadable or non-JSON file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "topo-"));
    try {
      await writeFile(join(dir, "bad.json"), "{ nope");
      await expect(loadTopology(join(dir, "bad.json"))).rejects.toThrow(
        /bad\.json is not valid JSON/,
      );
      await expect(loadTopology(join(dir, "missing.json"))).rejects.toThrow(
        /cannot read topology file/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
