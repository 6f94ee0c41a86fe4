/**
 * Bare Hono on @hono/node-server answering every GET with one JSON body held in
 * memory (the edge's cache-hit reference in bench/edge-hit-pinned.ts); with a
 * second argument, a JSON object of header fields sent with it (the edge's own
 * fields, to compare like with like).
 * Usage: npx tsx bench/hono-json.ts '<json body>' ['{"field": "value", ...}'];
 * prints `ready {"http":..., "pid":...}`.
 */
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { printReady } from "../core/flags.ts";

const body = process.argv[2] ?? "{}";
const fields: Record<string, string> = JSON.parse(
  process.argv[3] ?? '{"content-type": "application/json"}',
);
const app = new Hono();
app.get("*", (c) => c.body(body, 200, fields));
const server = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, (info) =>
  printReady({ http: `http://127.0.0.1:${(info as AddressInfo).port}`, pid: String(process.pid) }),
);
process.once("SIGTERM", () => server.close(() => process.exit(0)));
