import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const BIN = fileURLToPath(new URL("../../bin/propagate.mjs", import.meta.url));
const run = async (args: string[]) => {
  try {
    await promisify(execFile)(process.execPath, [BIN, ...args], { timeout: 15_000 });
    return { code: 0, stderr: "" };
  } catch (e) {
    const err = e as { code: number; stderr: string };
    return { code: err.code, stderr: err.stderr };
  }
};

describe("propagate node: bad invocations say what to fix", () => {
  it("names the topology's nodes for an unknown id, refuses a bus it cannot share, names an unreachable origin", async () => {
    const unknown = await run(["node", "--id", "nope"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(
      /node "nope" is not in the topology; its nodes are origin, regional-1/,
    );
    expect((await run(["node", "--id", "edge-1", "--bus", "bogus://x"])).stderr).toMatch(
      /--bus must be "off" or a redis:\/\/ URL/,
    );
    expect((await run(["node", "--id", "edge-1"])).stderr).toMatch(/needs a shared bus/);
    const away = await run([
      "node",
      "--id",
      "edge-1",
      "--bus",
      "off",
      "--token",
      "node-token-123",
      "--origin",
      "http://127.0.0.1:9",
    ]);
    expect(away.stderr).toMatch(/cannot reach the origin at http:\/\/127\.0\.0\.1:9\/v1\/nodes/);
  }, 60_000);
});
