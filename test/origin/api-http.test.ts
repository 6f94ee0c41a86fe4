/**
 * The write API over real HTTP, where JSON bodies are read straight from
 * Node's request stream (api.ts readJson): a declared length over the limit
 * is 413, a chunked one too, bad JSON is 400 naming the body, and a good
 * write (fixed length or chunked) is acknowledged.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Running, startOriginProcess } from "../support/process.ts";

const TOKEN = "http-token-0123456789";
let dir = "";
let origin: Running;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "propagate-api-http-"));
  origin = await startOriginProcess(join(dir, "data"), TOKEN, ["--sample", "--max-body", "2000"]);
}, 20_000);
afterAll(async () => {
  await origin?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A PUT with the body in `chunks`; chunked transfer encoding when `chunked`. */
function put(
  path: string,
  chunks: string[],
  chunked: boolean,
): Promise<{ status: number; body: string }> {
  const url = new URL(path, origin.ready.http);
  const length = chunks.reduce((n, c) => n + Buffer.byteLength(c), 0);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: "PUT",
        headers: {
          authorization: `Bearer ${TOKEN}`,
          "content-type": "application/json",
          ...(chunked ? {} : { "content-length": String(length) }),
        },
      },
      (res) => {
        let body = "";
        res.on("data", (c: Buffer) => {
          body += c.toString();
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", reject);
    for (const c of chunks) req.write(c);
    req.end();
  });
}

describe("write bodies over HTTP", () => {
  const path = "/v1/zones/example.test/rrsets/www/A";

  it("acknowledges a write sent with a length and one sent chunked", async () => {
    const fixed = await put(path, ['{"ttl":60,', '"data":["192.0.2.7"]}'], false);
    expect(fixed.status, fixed.body).toBe(200);
    const chunked = await put(path, ['{"ttl":60,', '"data":["192.0.2.8"]}'], true);
    expect(chunked.status, chunked.body).toBe(200);
    const set = await (await fetch(`${origin.ready.http}${path}`)).json();
    expect(set).toMatchObject({ data: ["192.0.2.8"] });
  });

  it("answers 413 over the limit, with or without a declared length", async () => {
    const big = JSON.stringify({ ttl: 60, data: Array.from({ length: 200 }, () => "192.0.2.1") });
    expect(big.length).toBeGreaterThan(2000);
    for (const chunked of [false, true]) {
      const res = await put(path, [big], chunked);
      expect(res.status).toBe(413);
      expect(JSON.parse(res.body)).toMatchObject({ error: "payload too large" });
    }
  });

  it("answers 400 naming the body for JSON that does not parse", async () => {
    const res = await put(path, ['{"ttl": 60, "data": ['], false);
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toMatchObject({ field: "body" });
  });
});
