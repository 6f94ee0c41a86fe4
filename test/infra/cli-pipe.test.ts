import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);
const bin = fileURLToPath(new URL("../../bin/propagate.mjs", import.meta.url));
const internet = fileURLToPath(new URL("../../infra/topologies/internet.json", import.meta.url));

describe("a report read only in part", () => {
  it("ends the command quietly and successfully when its reader stops (… --json | head)", async () => {
    // ~210 KB of rows through a real pipe (64 KB): the command is still writing when head has gone.
    const quoted = (path: string) => `'${path.replaceAll("'", "'\\''")}'`;
    const command = [
      quoted(process.execPath),
      quoted(bin),
      "simulate",
      `--topology ${quoted(internet)}`,
      "--edges 10 --resolvers 1000 --changes 1 --workers 1 --json",
    ].join(" ");
    const { stdout, stderr } = await run("bash", [
      "-c",
      `${command} | head -c 2 > /dev/null; echo "\${PIPESTATUS[0]}"`,
    ]);
    expect(stderr).toBe("");
    expect(stdout.trim()).toBe("0");
  }, 60_000);
});
