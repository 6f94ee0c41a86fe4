/**
 * Configuration and admin errors: one readable line naming the field (the
 * flag, on the command line), and JSON `{error, field?, reason}` bodies.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { RealClock } from "../../core/clock.ts";
import { FabricMetrics, TextRegistry } from "../../core/metrics.ts";
import { adminApp } from "../../resolver/admin.ts";
import { ResolverCache } from "../../resolver/cache.ts";
import { parseResolverConfig, ResolverConfigError } from "../../resolver/config.ts";
import { DEFAULT_CACHE } from "../../resolver/policy.ts";
import { FakeAuthority } from "./fake-authority.ts";

const BIN = fileURLToPath(new URL("../../bin/propagate.mjs", import.meta.url));
const TOKEN = "admin-token-1";
const clock = new RealClock();
const cache = new ResolverCache("res-t", DEFAULT_CACHE, clock, new FakeAuthority(clock).upstream);
const registry = new TextRegistry("res-t");
const app = adminApp(cache, TOKEN, {
  registry,
  fabric: new FabricMetrics(registry, clock),
  inspect: () => [],
});

function post(body: string, token = TOKEN): Promise<Response> {
  const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
  return Promise.resolve(app.request("/purge", { method: "POST", headers, body }));
}

describe("configuration errors", () => {
  it("name the field in one line", () => {
    const bad = (input: object) => () =>
      parseResolverConfig({ upstream: "dns://127.0.0.1:53", ...input });
    expect(bad({ token: "short" })).toThrow(
      new ResolverConfigError("token", "must be at least 8 characters"),
    );
    expect(bad({ token: "short" })).toThrow(/^token must be at least 8 characters$/);
    expect(bad({ zones: [] })).toThrow(/^zones must be at least 1 entry$/);
    expect(bad({ zones: ["a..b"] })).toThrow(/^zones\[0\] has an invalid name: .*empty label/);
    expect(bad({ dns: { host: "127.0.0.1", port: 70000 } })).toThrow(
      /^dns\.port must be at most 65535$/,
    );
    expect(() => parseResolverConfig({ upstream: "ftp://x" })).toThrow(
      /^upstream must be http:\/\/host:port \(DoH\) or dns:\/\/host:port$/,
    );
  });

  it("name the flag on the command line, without a zod dump", async () => {
    const run = promisify(execFile)(process.execPath, [
      BIN,
      "resolver",
      "--upstream",
      "http://127.0.0.1:9",
      "--dns",
      "127.0.0.1:0",
      "--token",
      "abc",
    ]);
    const err = await run.then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(err?.code).toBe(2);
    expect(err?.stderr).toBe("propagate resolver: --token must be at least 8 characters\n");
  });
});

describe("admin error bodies", () => {
  it("are JSON {error, reason}, with the field for bad requests", async () => {
    const unauthorized = await post("{}", "wrong-token");
    expect(unauthorized.status).toBe(401);
    expect(await unauthorized.json()).toEqual({
      error: "unauthorized",
      reason: "wrong token; use the resolver's --token",
    });
    const notJson = await post("name=www");
    expect(notJson.status).toBe(400);
    expect(await notJson.json()).toMatchObject({ error: "bad purge request", field: "body" });
    expect(await (await post('{"name": "a..b"}')).json()).toEqual({
      error: "bad purge request",
      field: "name",
      reason: 'name "a..b" has an empty label',
    });
    expect(await (await post('{"mode": "soft"}')).json()).toEqual({
      error: "bad purge request",
      field: "body",
      reason: 'give exactly one of "name", "zone" or "all": true',
    });
    const missing = await app.request("/nope", { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: "not found" });
    expect(await (await post('{"all": true}')).json()).toEqual({ purged: 0, mode: "hard" });
    const huge = await post(JSON.stringify({ all: true, pad: "x".repeat(100_000) }));
    expect(huge.status).toBe(413);
    expect(await huge.json()).toMatchObject({ error: "payload too large", field: "body" });
  });
});
