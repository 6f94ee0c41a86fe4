/**
 * Reads a Prometheus text exposition (format 0.0.4) strictly: every line is
 * a HELP, a TYPE or a sample, or the parse fails the test. Samples are keyed
 * `name{labels}` with the `node` label taken out (and checked).
 */
import { expect } from "vitest";

const SAMPLE =
  /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*)\})? (-?[0-9.e+-]+|[Nn]a[Nn]|[+-]Inf)$/;

export interface Exposition {
  /** `name{labels without node}` -> value. */
  samples: Map<string, number>;
  /** Metric family name -> TYPE. */
  types: Map<string, string>;
  /** Every node label value seen. */
  nodes: Set<string>;
}

export function parseExposition(text: string): Exposition {
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  const nodes = new Set<string>();
  for (const line of text.trimEnd().split("\n")) {
    // Empty lines are ignored by the format; prom-client puts one between families.
    if (line === "" || line.startsWith("# HELP ")) continue;
    if (line.startsWith("# TYPE ")) {
      const [, , name, type] = line.split(" ");
      types.set(name!, type!);
      continue;
    }
    const m = SAMPLE.exec(line);
    expect(m, `not an exposition line: ${line}`).not.toBeNull();
    const labels = [...(m![2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)];
    const node = labels.find((l) => l[1] === "node");
    expect(node, `no node label: ${line}`).toBeDefined();
    nodes.add(node![2]!);
    const rest = labels.filter((l) => l[1] !== "node").map((l) => `${l[1]}="${l[2]}"`);
    samples.set(`${m![1]}${rest.length ? `{${rest.join(",")}}` : ""}`, Number(m![3]));
  }
  return { samples, types, nodes };
}

/** GET `url` and parse it; expects 200 and the 0.0.4 text content type. */
export async function scrape(url: string, init?: RequestInit): Promise<Exposition> {
  const res = await fetch(url, init);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
}

/** The sum of a family's samples over all their labels (0 when it has none). */
export function total(samples: Map<string, number>, name: string): number {
  let n = 0;
  for (const [key, v] of samples) if (key === name || key.startsWith(`${name}{`)) n += v;
  return n;
}
