/** A bare Hono hello-world on @hono/node-server: the baseline for bench/edge-hit.ts. */
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { printReady } from "../core/flags.ts";

const app = new Hono();
app.get("*", (c) => c.text("hello"));
const server = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, (info) =>
  printReady({ http: `http://127.0.0.1:${(info as AddressInfo).port}` }),
);
process.once("SIGTERM", () => server.close(() => process.exit(0)));
