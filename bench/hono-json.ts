/**
 * Bare Hono on @hono/node-server answering every GET with one JSON body held in
 * memory (the edge's cache-hit reference in bench/edge-hit-pinned.ts).
 * Usage: npx tsx bench/hono-json.ts '<json body>'; prints `ready {"http":..., "pid":...}`.
 */
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { printReady } from "../core/flags.ts";

const body = process.argv[2] ?? "{}";
const app = new Hono();
app.get("*", (c) => c.body(body, 200, { "content-type": "application/json" }));
const server = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, (info) =>
  printReady({ http: `http://127.0.0.1:${(info as AddressInfo).port}`, pid: String(process.pid) }),
);
process.once("SIGTERM", () => server.close(() => process.exit(0)));
