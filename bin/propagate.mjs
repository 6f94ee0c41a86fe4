#!/usr/bin/env node
// Entry point of the `propagate` command: loads the TypeScript sources through tsx.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../infra/cli.ts");
await main(process.argv.slice(2));
