import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const BIN = fileURLToPath(new URL("../../bin/propagate.mjs", import.meta.url));
const run = async (args: string[], env: Record<string, string> = {}) => {
  try {
    await promisify(execFile)(process.execPath, [BIN, ...args], {
      timeout: 15_000,
      env: { ...process.env, ...env },
    });
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
    const join = ["node", "--id", "edge-1", "--bus", "off", "--origin", "http://127.0.0.1:9"];
    // A secret in argv is visible to every user in ps: refused, and the fix named.
    const inArgv = await run([...join, "--token", "node-token-123"]);
    expect(inArgv.code).toBe(2);
    expect(inArgv.stderr).toMatch(/--token is refused.*--token-file.*PROPAGATE_NODE_TOKEN/);
    expect((await run(join, { PROPAGATE_NODE_TOKEN: "" })).stderr).toMatch(
      /--token-file \(or PROPAGATE_NODE_TOKEN\) is required/,
    );
    const away = await run(join, { PROPAGATE_NODE_TOKEN: "node-token-123" });
    expect(away.stderr).toMatch(/cannot reach the origin at http:\/\/127\.0\.0\.1:9\/v1\/nodes/);
  }, 60_000);
});
