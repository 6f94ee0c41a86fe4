/**
 * A Worker fleet behind one registration: two Worker isolates (two workers in
 * one workerd, each with its own module globals and so its own cache) bound
 * to one fleet-floor Durable Object. The origin's relay reaches only the
 * first; the second learns from the Durable Object. The same scenario with
 * the binding left out shows the old design's failure: the receipt says
 * INSYNC while the second isolate still serves the old answer.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryBus } from "../../core/bus.ts";
import { type RunningOrigin, startOrigin } from "../../origin/server.ts";
import { cacheStatusOf } from "../support/cache-status.ts";
import { waitFor } from "../support/wait.ts";
import { bundleWorker } from "../support/worker.ts";

const TOKEN = "fleet-origin-token";
const NODE_TOKEN = "fleet-node-token";
/** The isolates' local cache of the floor; the relay's 2xx is held this long. */
const FLOOR_CACHE_MS = 100;
const www = "http://edge.test/resolve?name=www.example.test&type=A";

let dir: string;
let script: string;
let origin: RunningOrigin;
const logs: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "worker-fleet-"));
  script = await bundleWorker(dir);
  origin = await startOrigin(
    {
      http: { host: "127.0.0.1", port: 0 },
      dns: { host: "127.0.0.1", port: 0 },
      dataDir: join(dir, "origin"),
      sample: true,
      token: TOKEN,
      nodeToken: NODE_TOKEN,
    },
    { log: (m) => logs.push(m), bus: new MemoryBus() },
  );
}, 60_000);

afterAll(async () => {
  await origin?.close();
  await rm(dir, { recursive: true, force: true });
});

interface Fleet {
  mf: Miniflare;
  /** Each isolate's fetch; [0] is the one the relay reaches. */
  isolates: ((url: string) => Promise<Response>)[];
  url: URL;
}

/** Two workers from one bundle; with `floor`, both bound to the FleetFloor object of the first. */
async function startFleet(id: string, floor: boolean): Promise<Fleet> {
  const worker = (name: string, first: boolean) => ({
    name,
    modules: true,
    scriptPath: script,
    modulesRoot: dir,
    compatibilityDate: "2026-04-01",
    bindings: {
      PARENT: origin.httpUrl,
      EDGE_ID: id,
      TOKEN: NODE_TOKEN,
      FLOOR_CACHE_MS: String(FLOOR_CACHE_MS),
    },
    ...(floor && {
      durableObjects: {
        FLOOR: { className: "FleetFloor", useSQLite: true, ...(!first && { scriptName: "a" }) },
      },
    }),
  });
  const mf = new Miniflare({ workers: [worker("a", true), worker("b", false)] });
  const url = await mf.ready;
  // The second isolate is reached through its service binding only: the relay never sees it.
  const b = (await mf.getWorker("b")) as unknown as { fetch(u: string): Promise<Response> };
  return {
    mf,
    url,
    isolates: [(u) => mf.dispatchFetch(u) as unknown as Promise<Response>, (u) => b.fetch(u)],
  };
}

function api(path: string, body: unknown, method = "POST") {
  return fetch(`${origin.httpUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

async function register(id: string, fleet: Fleet) {
  const reg = await api("/v1/nodes", {
    id,
    tier: "edge",
    address: fleet.url.href,
    purgeUrl: new URL("/purge", fleet.url).href,
  });
  expect(reg.status).toBe(201);
}

async function put(address: string) {
  const res = await api(
    "/v1/zones/example.test/rrsets/www/A",
    { ttl: 300, data: [address] },
    "PUT",
  );
  expect(res.status).toBe(200);
  return (await res.json()) as { changeId: string; serial: number };
}

async function converged(changeId: string) {
  return waitFor(
    `change ${changeId} to converge (relay: ${logs.slice(-3).join("; ")})`,
    async () => {
      const s = (await (await fetch(`${origin.httpUrl}/v1/changes/${changeId}`)).json()) as {
        status: string;
        nodes: { id: string; status: string; latencyMs?: number }[];
      };
      return s.status === "INSYNC" && s;
    },
    15_000,
    10,
  );
}

/** What an isolate answers for www, and its own Cache-Status member. */
async function ask(isolate: (u: string) => Promise<Response>, id: string) {
  const res = await isolate(www);
  const body = (await res.json()) as { Answer: { data: string }[] };
  return { data: body.Answer[0]?.data, status: cacheStatusOf(res, id) };
}

async function warm(fleet: Fleet, id: string, data: string) {
  for (const isolate of fleet.isolates) {
    await ask(isolate, id);
    expect(await ask(isolate, id)).toMatchObject({ data, status: expect.stringMatching(/hit/) });
  }
}

describe("a Worker fleet with its fleet floor (Durable Object)", () => {
  let fleet: Fleet;
  beforeAll(async () => {
    fleet = await startFleet("fleet-1", true);
    await register("fleet-1", fleet);
  }, 60_000);
  afterAll(async () => {
    await api("/v1/nodes/fleet-1", {}, "DELETE");
    await fleet?.mf.dispose();
  });

  it("a change relayed to one isolate is refused by both once the receipt says INSYNC", async () => {
    await put("192.0.2.70").then((c) => converged(c.changeId));
    await warm(fleet, "fleet-1", "192.0.2.70");
    const { changeId } = await put("192.0.2.71");
    const s = await converged(changeId);
    expect(s.nodes).toEqual([expect.objectContaining({ id: "fleet-1", status: "INSYNC" })]);
    // At the receipt, neither isolate serves the old entry: both refill the new one.
    for (const isolate of fleet.isolates) {
      expect(await ask(isolate, "fleet-1")).toMatchObject({
        data: "192.0.2.71",
        status: expect.stringMatching(/^fleet-1; fwd=/),
      });
    }
  });

  it("measures relay -> every isolate refuses the old entry over 20 changes", async () => {
    const refused: number[] = [];
    const receipts: number[] = [];
    for (let k = 0; k < 20; k++) {
      const address = `192.0.2.${100 + k}`;
      const t0 = Date.now();
      const { changeId } = await put(address);
      // Both isolates are asked, again and again, until each answers the new address.
      await waitFor(
        `both isolates to answer ${address}`,
        async () => {
          const answers = await Promise.all(fleet.isolates.map((i) => ask(i, "fleet-1")));
          return answers.every((a) => a.data === address);
        },
        15_000,
        5,
      );
      refused.push(Date.now() - t0);
      const s = await converged(changeId);
      receipts.push(s.nodes[0]?.latencyMs ?? Number.NaN);
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    console.log(
      `worker fleet (2 isolates, FLOOR_CACHE_MS=${FLOOR_CACHE_MS}): commit -> both isolates serve the new answer: median ${median(refused)} ms, max ${Math.max(...refused)} ms; receipt latency: median ${median(receipts)} ms, max ${Math.max(...receipts)} ms`,
    );
    // The receipt is held until every isolate refuses: it never comes before FLOOR_CACHE_MS.
    expect(Math.min(...receipts)).toBeGreaterThanOrEqual(FLOOR_CACHE_MS);
  }, 60_000);
});

describe("the old design: no fleet floor", () => {
  let fleet: Fleet;
  beforeAll(async () => {
    fleet = await startFleet("solo-1", false);
    await register("solo-1", fleet);
  }, 60_000);
  afterAll(async () => {
    await api("/v1/nodes/solo-1", {}, "DELETE");
    await fleet?.mf.dispose();
  });

  it("the receipt says INSYNC while the isolate the relay missed serves the old answer", async () => {
    await put("192.0.2.80").then((c) => converged(c.changeId));
    await warm(fleet, "solo-1", "192.0.2.80");
    const { changeId } = await put("192.0.2.81");
    await converged(changeId);
    const [reached, missed] = fleet.isolates;
    expect(await ask(reached!, "solo-1")).toMatchObject({ data: "192.0.2.81" });
    expect(await ask(missed!, "solo-1")).toMatchObject({
      data: "192.0.2.80",
      status: expect.stringMatching(/^solo-1; hit/),
    });
  });
});
