/**
 * Starts `propagate <command>` as a real child process and waits for its
 * `ready {...}` line, so wire tests run against the same binary users run.
 */
import { type Child, startPropagate } from "../../infra/processes.ts";

export { type Child as Running, startPropagate } from "../../infra/processes.ts";

/** `propagate origin` on free loopback ports, its data in `dataDir`, writes under `token`. */
export function startOriginProcess(
  dataDir: string,
  token: string,
  extra: string[] = [],
): Promise<Child> {
  const ports = ["--http", "127.0.0.1:0", "--dns", "127.0.0.1:0"];
  return startPropagate(["origin", ...ports, "--data", dataDir, "--token", token, ...extra]);
}
