/**
 * A bare Hono server on @hono/node-server answering every GET with one JSON
 * body held in memory (an RFC 8427-style answer like the edge's): the
 * baseline for bench/edge-hit.ts.
 */
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { printReady } from "../core/flags.ts";

const body = {
  Status: 0,
  TC: false,
  RD: true,
  RA: false,
  AD: false,
  CD: false,
  Question: [{ name: "h1.example.test.", type: 1 }],
  Answer: [{ name: "h1.example.test.", type: 1, TTL: 3600, data: "192.0.2.1" }],
};
const app = new Hono();
app.get("*", (c) => c.json(body, 200, { "cache-control": "max-age=3600" }));
const server = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, (info) =>
  printReady({ http: `http://127.0.0.1:${(info as AddressInfo).port}` }),
);
process.once("SIGTERM", () => server.close(() => process.exit(0)));
