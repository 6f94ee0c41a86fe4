/**
 * The public HTTP cache test suite (`http-cache-tests`, the suite behind
 * cache-tests.fyi) against an edge: the suite's server is the origin, the
 * edge is the reverse proxy in front of it, and the suite's own CLI is the
 * client. Its server is run here on 127.0.0.1 (its `server.mjs` binds every
 * interface on a fixed port), with the package's own request handlers.
 */
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const SUITE_DIR = fileURLToPath(
  new URL("../../node_modules/http-cache-tests/", import.meta.url),
);

type Handler = (segs: string[], req: IncomingMessage, res: ServerResponse) => void;

async function handler(name: string): Promise<Handler> {
  const mod = (await import(join(SUITE_DIR, "server", `handle-${name}.mjs`))) as {
    default: Handler;
  };
  return mod.default;
}

export interface SuiteOrigin {
  url: string;
  close(): Promise<void>;
}

/** The suite's origin server (its /config, /test and /state routes) on a free loopback port. */
export async function startSuiteOrigin(): Promise<SuiteOrigin> {
  const routes: Record<string, Handler> = {
    config: await handler("config"),
    test: await handler("test"),
    state: await handler("state"),
  };
  const server = createServer((req, res) => {
    // One request per connection: some tests answer with broken framing on
    // purpose (an unknown Transfer-Encoding, status 999), which leaves a
    // pooled connection unusable for whichever test's request comes next.
    res.shouldKeepAlive = false;
    const segs = new URL(req.url ?? "/", "http://origin.invalid").pathname.split("/").slice(1);
    const route = routes[segs.shift() ?? ""];
    if (route) return route(segs, req, res);
    res.writeHead(404, { "content-type": "text/plain" }).end("not a suite path\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** test id -> true, or [error kind, message], as the suite's CLI prints them. */
export type SuiteResults = Record<string, true | [string, string]>;

/**
 * Runs every test of the suite through `base` with the suite's own client
 * (cache-tests-client.mjs), in a child process (its runner keeps
 * module-level state), bounded by `timeoutMs`.
 */
export function runSuite(base: string, timeoutMs = 120_000): Promise<SuiteResults> {
  return new Promise((resolve, reject) => {
    const client = fileURLToPath(new URL("./cache-tests-client.mjs", import.meta.url));
    const child = spawn(process.execPath, ["--no-warnings", client, SUITE_DIR, base], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`the cache test suite did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(out) as SuiteResults);
      } catch {
        reject(
          new Error(`cache test suite exited ${code}: ${err.slice(0, 2000)}${out.slice(0, 500)}`),
        );
      }
    });
  });
}

interface SuiteTest {
  id: string;
  kind?: "required" | "optimal" | "check";
  browser_only?: boolean;
}

/** The suite's test definitions (tests/index.mjs: every suite but Surrogate-Control). */
export async function suiteTests(): Promise<SuiteTest[]> {
  const mod = (await import(join(SUITE_DIR, "tests", "index.mjs"))) as {
    default: { tests: SuiteTest[] }[];
  };
  return mod.default.flatMap((s) => s.tests);
}

export interface Score {
  required: number;
  optimal: number;
  check: number;
}

export interface Scored {
  passed: Score;
  /** How many tests of each kind the suite defines (browser-only ones included, as on cache-tests.fyi). */
  total: Score;
  /** Required tests that did not pass: "id (why)". */
  failedRequired: string[];
}

/**
 * Counts passes per kind the way the issue and the shipped results were
 * compared: a test passes when its result is `true`, dependencies not
 * consulted; totals include the browser-only tests a proxy never runs.
 */
export function score(tests: SuiteTest[], results: SuiteResults): Scored {
  const passed: Score = { required: 0, optimal: 0, check: 0 };
  const total: Score = { required: 0, optimal: 0, check: 0 };
  const failedRequired: string[] = [];
  for (const t of tests) {
    const kind = t.kind ?? "required";
    total[kind]++;
    if (results[t.id] === true) passed[kind]++;
    else if (kind === "required" && !t.browser_only) {
      const r = results[t.id];
      failedRequired.push(`${t.id} (${r === undefined || r === true ? "not run" : r[1]})`);
    }
  }
  return { passed, total, failedRequired };
}

/** The results shipped in the package (Squid, httpd, ATS, ...): file name -> results. */
export function shippedResults(): Record<string, SuiteResults> {
  const dir = join(SUITE_DIR, "results");
  const out: Record<string, SuiteResults> = {};
  for (const f of readdirSync(dir).filter((f) => f.endsWith(".json"))) {
    out[f.replace(/\.json$/, "")] = JSON.parse(readFileSync(join(dir, f), "utf8")) as SuiteResults;
  }
  return out;
}
