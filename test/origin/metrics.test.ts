/** GET /metrics: every counter moved by real writes, real dig queries and real HTTP reads. */
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import dnsPacket from "dns-packet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryUdp } from "../../core/dns-transport.ts";
import { type RunningOrigin, startOrigin } from "../../origin/server.ts";
import { dig } from "../support/dig.ts";
import { scrape as scrapeUrl } from "../support/prom.ts";

let origin: RunningOrigin;
const TOKEN = "metrics-token-123456";

beforeAll(async () => {
  origin = await startOrigin(
    {
      http: { host: "127.0.0.1", port: 0 },
      dns: { host: "127.0.0.1", port: 0 },
      dataDir: await mkdtemp(join(tmpdir(), "propagate-metrics-")),
      token: TOKEN,
    },
    { log: () => {} },
  );
});
afterAll(() => origin.close());

function write(method: string, path: string, body?: unknown, token = TOKEN) {
  return fetch(`${origin.httpUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
}

/** The exposition as `name{labels}` -> value; every sample carries node="origin". */
async function scrape(): Promise<Map<string, number>> {
  const e = await scrapeUrl(`${origin.httpUrl}/metrics`);
  expect([...e.nodes]).toEqual(["origin"]);
  return e.samples;
}

const ask = (...args: string[]) => {
  const [host, port] = origin.dnsAddr.split(":") as [string, string];
  return dig([`@${host}`, "-p", port, "+time=2", "+tries=1", ...args]);
};

describe("GET /metrics", () => {
  it("counts committed writes, write errors by class, the journal, snapshots, zones and RRsets", async () => {
    expect((await write("PUT", "/v1/zones/m.test", {})).status).toBe(201);
    const puts = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        write("PUT", `/v1/zones/m.test/rrsets/h${i}/A`, { data: [`192.0.2.${i}`] }),
      ),
    );
    expect(puts.map((r) => r.status)).toEqual(Array(10).fill(200));
    expect((await write("DELETE", "/v1/zones/m.test/rrsets/h0/A")).status).toBe(200);
    expect(
      (await write("PUT", "/v1/zones/m.test/rrsets/x/A", { data: ["300.0.0.1"] })).status,
    ).toBe(400);
    expect((await write("DELETE", "/v1/zones/m.test", undefined, "wrong-token-0000")).status).toBe(
      403,
    );
    expect((await write("PUT", "/v1/zones/m.test", {})).status).toBe(409);
    await origin.data.snapshot();

    const m = await scrape();
    expect(m.get('origin_writes_committed_total{op="create"}')).toBe(1);
    expect(m.get('origin_writes_committed_total{op="update"}')).toBe(11);
    expect(m.get('origin_write_errors_total{class="4xx"}')).toBe(3);
    expect(m.get('origin_write_errors_total{class="5xx"}')).toBe(0);
    expect(m.get("origin_journal_records_total")).toBe(12);
    expect(m.get("origin_journal_fsyncs_total")).toBe(origin.data.stats.batches);
    expect(m.get("origin_journal_fsyncs_total")).toBeLessThanOrEqual(12);
    expect(m.get("origin_snapshots_total")).toBe(1);
    expect(m.get("origin_zones")).toBe(1);
    expect(m.get("origin_rrsets")).toBe(1 + 9); // the SOA and h1..h9
  });

  it("counts DNS queries by transport and rcode, from real dig queries", async () => {
    const before = await scrape();
    await ask("h1.m.test", "A");
    await ask("h1.m.test", "A");
    await ask("+tcp", "nope.m.test", "A");
    await ask("www.elsewhere.test", "A");
    await ask("+edns=1", "+noednsneg", "h1.m.test", "A");
    const [host, port] = origin.dnsAddr.split(":") as [string, string];
    // A header alone, opcode 2 (STATUS): NOTIMP, an answer without a resolution.
    const notimp = Buffer.from([0, 7, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const reply = await queryUdp(host, Number(port), notimp);
    expect(reply.readUInt8(3) & 0x0f).toBe(4);
    const after = await scrape();
    const delta = (key: string) => (after.get(key) ?? 0) - (before.get(key) ?? 0);
    expect(delta('origin_dns_queries_total{transport="udp",rcode="NOERROR"}')).toBe(2);
    expect(delta('origin_dns_queries_total{transport="tcp",rcode="NXDOMAIN"}')).toBe(1);
    expect(delta('origin_dns_queries_total{transport="udp",rcode="REFUSED"}')).toBe(1);
    expect(delta('origin_dns_queries_total{transport="udp",rcode="BADVERS"}')).toBe(1);
    expect(delta('origin_dns_queries_total{transport="udp",rcode="NOTIMP"}')).toBe(1);
  });

  it("counts DoH and JSON reads by status code, 304 revalidations apart", async () => {
    const before = await scrape();
    const q = dnsPacket.encode({
      type: "query",
      id: 0,
      questions: [{ name: "h1.m.test", type: "A" }],
    });
    const doh = await fetch(`${origin.httpUrl}/dns-query?dns=${q.toString("base64url")}`);
    expect(doh.status).toBe(200);
    const url = `${origin.httpUrl}/resolve?name=h1.m.test&type=A`;
    const first = await fetch(url);
    const again = await fetch(url, { headers: { "if-none-match": first.headers.get("etag")! } });
    expect(again.status).toBe(304);
    expect((await fetch(`${origin.httpUrl}/resolve`)).status).toBe(400);
    const after = await scrape();
    const delta = (key: string) => (after.get(key) ?? 0) - (before.get(key) ?? 0);
    expect(delta('origin_http_reads_total{api="doh",code="200"}')).toBe(1);
    expect(delta('origin_http_reads_total{api="json",code="200"}')).toBe(1);
    expect(delta('origin_http_reads_total{api="json",code="304"}')).toBe(1);
    expect(delta('origin_http_reads_total{api="json",code="400"}')).toBe(1);
  });
});
