/**
 * The standalone commands log like `propagate up`: `propagate origin`, `edge`
 * and `resolver` take `--log-level`, print JSON records on stderr (not a
 * terminal here), each naming its node, the ones about a change naming its
 * change id; quiet by default under vitest; a bad level is refused.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dig } from "../support/dig.ts";
import { freePort } from "../support/net.ts";
import { type Running, startPropagate } from "../support/process.ts";
import { waitFor } from "../support/wait.ts";

const TOKEN = "standalone-logs-token";
const any = "127.0.0.1:0";
let dir: string;
const started: Running[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "propagate-standalone-logs-"));
});

afterAll(async () => {
  await Promise.all(started.map((c) => c.stop()));
  await rm(dir, { recursive: true, force: true });
});

async function start(args: string[]): Promise<Running> {
  const child = await startPropagate(args, 30_000);
  started.push(child);
  return child;
}

/** The JSON log records a child printed so far (its other lines are not JSON). */
function records(c: Running): Record<string, unknown>[] {
  return c
    .output()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe("standalone commands' logs", () => {
  it("origin, edge and resolver log JSON records with their node id, a change with its id", async () => {
    const origin = await start([
      ...["origin", "--http", any, "--dns", any, "--data", join(dir, "origin")],
      ...["--sample", "--token", TOKEN, "--nsid", "origin-s", "--log-level", "info"],
    ]);
    const put = await fetch(`${origin.ready.http}/v1/zones/example.test/rrsets/logs/A`, {
      method: "PUT",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ ttl: 60, data: ["192.0.2.9"] }),
    });
    expect(put.status).toBe(200);
    const { changeId } = (await put.json()) as { changeId: string };
    const committed = await waitFor("the origin's commit record", () =>
      records(origin).find((r) => r.msg === "committed" && r.changeId === changeId),
    );
    expect(committed).toMatchObject({ node: "origin-s", level: 30, zone: "example.test" });

    const edge = await start([
      ...["edge", "--http", any, "--parent", origin.ready.http!, "--id", "edge-s"],
      ...["--token", TOKEN, "--log-level", "info"],
    ]);
    const event = {
      changeId,
      zone: "example.test",
      serial: 2,
      keys: ["*"],
      mode: "invalidate",
      ts: 0,
    };
    const relayed = await fetch(`${edge.ready.http}/purge`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ event }),
    });
    expect(relayed.status).toBe(200);
    const applied = await waitFor("the edge's apply record", () =>
      records(edge).find((r) => r.msg === "applied" && r.changeId === changeId),
    );
    expect(applied).toMatchObject({ node: "edge-s", zone: "example.test", mode: "invalidate" });

    // An upstream nobody listens on: the failure is a warning naming the resolver.
    const closed = await freePort();
    const resolver = await start([
      ...["resolver", "--dns", any, "--admin", any, "--id", "res-s"],
      ...["--upstream", `dns://127.0.0.1:${closed}`, "--upstream-timeout", "500"],
      ...["--log-level", "warn"],
    ]);
    const [host, port] = resolver.ready.dns!.split(":") as [string, string];
    await dig([`@${host}`, "-p", port, "+time=3", "+tries=1", "www.example.test", "A"]);
    const failed = await waitFor("the resolver's upstream warning", () =>
      records(resolver).find((r) => r.msg === "upstream failed"),
    );
    expect(failed).toMatchObject({ node: "res-s", level: 40, name: "www.example.test" });
    for (const c of [origin, edge, resolver])
      for (const r of records(c)) expect(typeof r.node, JSON.stringify(r)).toBe("string");
  });

  it("prints no records by default under vitest (the upstream warning above stays quiet)", async () => {
    const closed = await freePort();
    const resolver = await start([
      ...["resolver", "--dns", any, "--admin", any, "--id", "res-quiet"],
      ...["--upstream", `dns://127.0.0.1:${closed}`, "--upstream-timeout", "500"],
    ]);
    const [host, port] = resolver.ready.dns!.split(":") as [string, string];
    const out = await dig([`@${host}`, "-p", port, "+time=3", "+tries=1", "www.example.test", "A"]);
    expect(out).toMatch(/status: SERVFAIL/);
    expect(records(resolver)).toEqual([]);
  });

  it("refuses a bad --log-level with a usage error", async () => {
    await expect(
      startPropagate(
        ["resolver", "--upstream", "dns://127.0.0.1:9", "--log-level", "loud"],
        30_000,
      ),
    ).rejects.toThrow(/--log-level: log level must be one of fatal, error, warn, info/);
  });
});
