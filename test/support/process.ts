/**
 * Starts `propagate <command>` as a real child process and waits for its
 * `ready {...}` line, so wire tests run against the same binary users run.
 */
export { type Child as Running, startPropagate } from "../../infra/processes.ts";
