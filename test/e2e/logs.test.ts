/**
 * Structured logs follow one change across nodes: `propagate up --log-level
 * info` (a real process, stderr not a terminal: JSON lines) logs the commit
 * and the receipts at the origin and the apply at every cache node, each line
 * with its node and the change id. Quiet by default under vitest; a bad
 * level is refused.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger, logLevel, prettyLine } from "../../core/log.ts";
import { type Running, startPropagate } from "../support/process.ts";

let dir: string;
let file: string;
let up: Running;
const any = "127.0.0.1:0";

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "propagate-logs-"));
  file = join(dir, "topology.json");
  await writeFile(
    file,
    JSON.stringify({
      name: "logs",
      origin: { http: any, dns: any, sample: true },
      edges: [
        { id: "regional-1", tier: "regional", parent: "origin", http: any },
        { id: "edge-1", parent: "regional-1", http: any },
      ],
      resolvers: [{ id: "res-1", upstream: "edge-1", dns: any, admin: any }],
    }),
  );
  up = await startPropagate([
    "up",
    "--topology",
    file,
    "--data",
    join(dir, "origin"),
    "--log-level",
    "info",
  ]);
}, 30_000);

afterAll(async () => {
  await up?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** The JSON log records printed so far (the node table and ready line are not JSON). */
function records(): Record<string, unknown>[] {
  return up
    .output()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe("logs", () => {
  it("grep for a change id finds its commit, every node's apply and every receipt", async () => {
    const put = await fetch(`${up.ready.origin}/v1/zones/example.test/rrsets/www/A`, {
      method: "PUT",
      headers: { authorization: `Bearer ${up.ready.token}`, "content-type": "application/json" },
      body: JSON.stringify({ ttl: 60, data: ["192.0.2.44"] }),
    });
    const { changeId } = (await put.json()) as { changeId: string };
    const nodes = ["regional-1", "edge-1", "res-1"];
    const deadline = Date.now() + 15_000;
    let lines: Record<string, unknown>[] = [];
    for (;;) {
      lines = records().filter((r) => r.changeId === changeId);
      const receipts = lines.filter((r) => r.msg === "receipt").map((r) => r.from);
      if (nodes.every((n) => receipts.includes(n)) || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(lines).toContainEqual(
      expect.objectContaining({ node: "origin", msg: "committed", zone: "example.test" }),
    );
    for (const n of nodes) {
      expect(lines, n).toContainEqual(
        expect.objectContaining({ node: n, msg: "applied", mode: "invalidate" }),
      );
      expect(lines, n).toContainEqual(
        expect.objectContaining({ node: "origin", msg: "receipt", from: n }),
      );
    }
    for (const r of lines) {
      expect(r.level).toBe(30);
      expect(typeof r.time).toBe("string");
    }
    // The raw text, as grep sees it: one line per record, each naming the change.
    const grep = up
      .output()
      .split("\n")
      .filter((l) => l.includes(changeId));
    expect(grep.length).toBe(lines.length);
  });

  it("the level comes from the flag, then PROPAGATE_LOG_LEVEL; silent under vitest", () => {
    expect(logLevel(undefined, { VITEST: "true" })).toBe("silent");
    expect(logLevel(undefined, {})).toBe("info");
    expect(logLevel(undefined, { PROPAGATE_LOG_LEVEL: "debug", VITEST: "true" })).toBe("debug");
    expect(logLevel("warn", { PROPAGATE_LOG_LEVEL: "debug" })).toBe("warn");
    expect(() => logLevel("loud", {})).toThrow(/log level must be one of fatal, .*got "loud"/);
  });

  it("a level filters records; a terminal gets one readable line each", () => {
    const out: string[] = [];
    const logger = createLogger({ level: "warn", destination: { write: (l) => out.push(l) } });
    logger.child({ node: "edge-1" }).info({ changeId: "chg_x" }, "applied");
    logger.child({ node: "edge-1" }).warn({ changeId: "chg_y", zone: "a.test" }, "late");
    expect(out).toHaveLength(1);
    expect(prettyLine(out[0]!)).toMatch(
      /^\d\d:\d\d:\d\d\.\d{3} WARN {2}edge-1 late changeId=chg_y zone=a\.test\n$/,
    );
  });

  it("refuses an unknown --log-level", async () => {
    await expect(
      startPropagate(["up", "--topology", file, "--log-level", "loud"], 10_000),
    ).rejects.toThrow(/--log-level: log level must be one of/);
  });
});
