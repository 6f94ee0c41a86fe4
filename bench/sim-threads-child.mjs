// `propagate simulate <flags>` with its report written to fd 3, for
// bench/sim-threads.mjs: its stdout carries V8's GC records.
import { writeSync } from "node:fs";
import { register } from "tsx/esm/api";

register();
const { main } = await import("../infra/cli.ts");
console.log = (...parts) => {
  writeSync(3, `${parts.join(" ")}\n`);
};
await main(["simulate", ...process.argv.slice(2)]);
