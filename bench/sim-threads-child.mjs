// `propagate simulate <flags>` with its report written to fd 3, for
// bench/sim-threads.mjs: its stdout carries V8's GC records.
import { writeSync } from "node:fs";
import { register } from "tsx/esm/api";

register();
const { main } = await import("../infra/cli.ts");
console.log = (...parts) => {
  writeSync(3, `${parts.join(" ")}\n`);
};
// The --json report is written to standard output in chunks
// (infra/report.ts printReportJson), not by console.log.
process.stdout.write = (chunk) => {
  writeSync(3, chunk);
  return true;
};
// The process's CPU by its own count (every thread, microseconds), after the report.
process.on("exit", () => {
  const u = process.resourceUsage();
  writeSync(3, `\n#usage ${JSON.stringify({ user: u.userCPUTime, system: u.systemCPUTime })}\n`);
});
await main(["simulate", ...process.argv.slice(2)]);
