/**
 * `propagate measure`: how long a change takes to reach every cache of a
 * running topology, measured from outside like a user would. For each sample
 * it writes a new unique TXT value, takes t0 at the write's acknowledgement,
 * and asks every edge (HTTP) and every resolver (real DNS over UDP) every
 * `--interval-ms` until each serves the new value, counting the old answers it
 * sees meanwhile. The nodes come from the origin's registry; the prediction
 * comes from the topology file. The receipts are read too, so the report can
 * set "the node says it is in sync" beside "the node serves it".
 */
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import dnsPacket from "dns-packet";
import { RealClock, sleep } from "../core/clock.ts";
import { queryUdp } from "../core/dns-transport.ts";
import { flagHelp, intFlag, parseFlags, UsageError } from "../core/flags.ts";
import { pooledCurve, predict, predictOptions } from "./predict.ts";
import {
  type NodeSamples,
  progressBar,
  type Report,
  renderSvg,
  renderTable,
  toJson,
} from "./report.ts";
import { loadTopology } from "./topology.ts";
import { DEFAULT_TOPOLOGY } from "./up.ts";

interface RegisteredNode {
  id: string;
  tier: string;
  address: string;
}

export interface MeasureOptions {
  originUrl: string;
  token: string;
  /** Where the token came from, for the error when the origin refuses it. */
  tokenSource?: string;
  zone: string;
  /** Owner name written by the samples (relative to the zone). */
  label: string;
  ttl: number;
  samples: number;
  intervalMs: number;
  timeoutMs: number;
  onProgress?: (done: number) => void;
}

export interface Measurement {
  nodes: (NodeSamples & { receiptMs: number[] })[];
  /** Per sample: the change id and its convergence time from the receipts (ms after t0). */
  changes: { changeId: string; serial: number; convergedMs?: number }[];
}

/** Asks one node for the TXT at `name`; returns the strings it serves, or undefined on error. */
type Probe = () => Promise<string[] | undefined>;

function probeFor(node: RegisteredNode, name: string): Probe {
  if (node.address.startsWith("http")) {
    const url = `${node.address}/resolve?name=${encodeURIComponent(name)}&type=TXT`;
    return async () => {
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
        const body = (await res.json()) as { Answer?: { type: number; data: string }[] };
        return (body.Answer ?? [])
          .filter((a) => a.type === 16)
          .map((a) => a.data.replace(/^"|"$/g, ""));
      } catch {
        return undefined;
      }
    };
  }
  const i = node.address.lastIndexOf(":");
  const host = node.address.slice(0, i).replace(/^\[|\]$/g, "");
  const port = Number(node.address.slice(i + 1));
  return async () => {
    const query = dnsPacket.encode({
      type: "query",
      id: Math.floor(Math.random() * 0xffff),
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ type: "TXT", name }],
    });
    try {
      const reply = dnsPacket.decode(await queryUdp(host, port, query, 2_000));
      return (reply.answers ?? []).flatMap((a) =>
        a.type === "TXT" ? (a.data as Buffer[]).map((b) => Buffer.from(b).toString()) : [],
      );
    } catch {
      return undefined;
    }
  };
}

async function api<T>(o: MeasureOptions, path: string, init?: RequestInit): Promise<T> {
  const res = await fetch(new URL(path, o.originUrl), {
    ...init,
    headers: { authorization: `Bearer ${o.token}`, "content-type": "application/json" },
  }).catch((err: Error) => {
    throw new Error(
      `cannot reach the origin at ${o.originUrl} (${err.message}); is "npm start" running?`,
    );
  });
  const text = await res.text();
  if (res.status === 401 || res.status === 403) {
    throw new Error(
      `the origin refused the write token from ${o.tokenSource ?? "the options"} (HTTP ${res.status}); pass the token it printed at start with --token`,
    );
  }
  if (!res.ok)
    throw new Error(`${init?.method ?? "GET"} ${path}: HTTP ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

function writeValue(o: MeasureOptions, value: string) {
  return api<{ serial: number; changeId: string }>(o, `/v1/zones/${o.zone}/rrsets/${o.label}/TXT`, {
    method: "PUT",
    body: JSON.stringify({ ttl: o.ttl, data: [value] }),
  });
}

/** Polls every node until each serves `value`; returns per node the time (ms after t0) and old answers seen. */
async function follow(
  probes: Map<string, Probe>,
  value: string,
  t0: number,
  o: MeasureOptions,
  clock: RealClock,
): Promise<Map<string, { ms?: number; stale: number }>> {
  const out = new Map<string, { ms?: number; stale: number }>();
  await Promise.all(
    [...probes].map(async ([id, probe]) => {
      const r: { ms?: number; stale: number } = { stale: 0 };
      out.set(id, r);
      while (clock.now() - t0 < o.timeoutMs) {
        const answer = await probe();
        if (answer?.includes(value)) {
          r.ms = clock.now() - t0;
          return;
        }
        if (answer !== undefined && answer.length > 0) r.stale++;
        await sleep(clock, o.intervalMs);
      }
    }),
  );
  return out;
}

export async function measure(o: MeasureOptions): Promise<Measurement> {
  // Between two probes nothing but this timer is pending: it must hold the
  // process open, or `propagate measure` exits mid-run with code 13.
  const clock = new RealClock({ keepAlive: true });
  const { nodes } = await api<{ nodes: RegisteredNode[] }>(o, "/v1/nodes");
  if (nodes.length === 0) {
    throw new UsageError(
      `no cache node is registered with ${o.originUrl}; start a topology with "propagate up"`,
    );
  }
  const name = `${o.label}.${o.zone}`;
  const probes = new Map(nodes.map((n) => [n.id, probeFor(n, name)]));
  const results = new Map(
    nodes.map((n) => [
      n.id,
      { times: [] as number[], stale: 0, missed: 0, receipts: [] as number[] },
    ]),
  );
  const changes: Measurement["changes"] = [];

  // Warm up: every cache holds the current value before the first sample.
  let value = `propagate-measure ${randomBytes(6).toString("hex")} warm-up`;
  let t0 = clock.now();
  await writeValue(o, value);
  await follow(probes, value, t0, o, clock);

  for (let k = 0; k < o.samples; k++) {
    value = `propagate-measure ${randomBytes(6).toString("hex")} sample ${k + 1}`;
    const ack = await writeValue(o, value);
    t0 = clock.now();
    const seen = await follow(probes, value, t0, o, clock);
    for (const [id, r] of seen) {
      const acc = results.get(id)!;
      if (r.ms === undefined) acc.missed++;
      else acc.times.push(r.ms);
      acc.stale += r.stale;
    }
    const status = await api<{
      committedAt: number;
      convergedAt?: number;
      nodes: { id: string; latencyMs?: number }[];
    }>(o, `/v1/changes/${ack.changeId}`);
    for (const n of status.nodes)
      if (n.latencyMs !== undefined) results.get(n.id)?.receipts.push(n.latencyMs);
    changes.push({
      changeId: ack.changeId,
      serial: ack.serial,
      ...(status.convergedAt !== undefined && {
        convergedMs: status.convergedAt - status.committedAt,
      }),
    });
    o.onProgress?.(k + 1);
  }
  return {
    changes,
    nodes: nodes.map((n) => {
      const r = results.get(n.id)!;
      return {
        nodeId: n.id,
        tier: n.tier,
        kind: n.address.startsWith("http") ? ("edge" as const) : ("resolver" as const),
        timesMs: r.times,
        staleSeen: r.stale,
        unconverged: r.missed,
        receiptMs: r.receipts,
      };
    }),
  };
}

const FLAGS = {
  origin: { type: "string", help: "origin URL (default http://127.0.0.1:8053)" },
  token: {
    type: "string",
    help: "write token (default: $PROPAGATE_TOKEN, else .data/origin/token)",
  },
  topology: {
    type: "string",
    help: "topology file for the prediction (default: the default topology)",
  },
  zone: { type: "string", help: "zone to write in (default example.test)" },
  name: {
    type: "string",
    help: "owner name written, relative to the zone (default _propagate-measure)",
  },
  ttl: { type: "string", help: "TTL of the written record, seconds (default 60)" },
  samples: { type: "string", help: "changes to follow (default 5)" },
  "interval-ms": { type: "string", help: "how often each node is asked (default 20)" },
  "timeout-ms": {
    type: "string",
    help: "give up on a node after this long per sample (default: 2 x TTL + 30 s)",
  },
  json: { type: "boolean", help: "print the report as JSON" },
  svg: { type: "string", help: "write an SVG chart (CDF, measured and predicted) to this file" },
  help: { type: "boolean", help: "show this help" },
} as const;

async function tokenFrom(given: string | undefined): Promise<{ token: string; source: string }> {
  if (given) return { token: given, source: "--token" };
  if (process.env.PROPAGATE_TOKEN)
    return { token: process.env.PROPAGATE_TOKEN, source: "$PROPAGATE_TOKEN" };
  try {
    const token = (await readFile(".data/origin/token", "utf8")).trim();
    return { token, source: ".data/origin/token" };
  } catch {
    throw new UsageError(
      "no write token: pass --token T, set PROPAGATE_TOKEN, or run where .data/origin/token exists",
    );
  }
}

export async function main(argv: string[]): Promise<void> {
  const { values: v } = parseFlags(argv, FLAGS, "measure");
  if (v.help) {
    console.log(flagHelp(FLAGS, "measure"));
    return;
  }
  const ttl = intFlag(v.ttl, "ttl", { min: 1, default: 60 });
  const samples = intFlag(v.samples, "samples", { min: 1, default: 5 });
  const intervalMs = intFlag(v["interval-ms"], "interval-ms", { min: 1, default: 20 });
  const topology = await loadTopology(v.topology ?? DEFAULT_TOPOLOGY);
  const bar = progressBar("measuring", samples);
  const m = await measure({
    originUrl: v.origin ?? "http://127.0.0.1:8053",
    ...(await tokenFrom(v.token).then(({ token, source }) => ({ token, tokenSource: source }))),
    zone: v.zone ?? "example.test",
    label: v.name ?? "_propagate-measure",
    ttl,
    samples,
    intervalMs,
    timeoutMs: intFlag(v["timeout-ms"], "timeout-ms", { min: 1, default: 2 * ttl * 1000 + 30_000 }),
    onProgress: (d) => bar.update(d),
  });
  bar.finish();
  const preds = predict(topology, predictOptions(topology, { ttlSec: ttl, probeMs: intervalMs }));
  const report: Report = {
    title: `propagate measure: ${samples} changes, mode ${topology.defaults.mode}, TTL ${ttl} s, asked every ${intervalMs} ms`,
    series: [
      {
        label: "live",
        nodes: m.nodes,
        boundsMs: Object.fromEntries(preds.map((p) => [p.nodeId, p.boundMs])),
        predicted: pooledCurve(preds),
      },
    ],
    notes: [
      `receipts (node says INSYNC), ms after commit: ${m.nodes
        .map((n) => `${n.nodeId} ${n.receiptMs.length ? Math.max(...n.receiptMs) : "-"}`)
        .join(", ")} (max per node)`,
      `converged per receipts: ${m.changes.map((c) => c.convergedMs ?? "pending").join(", ")} ms`,
    ],
  };
  if (v.svg) await writeFile(v.svg, renderSvg(report));
  console.log(v.json ? JSON.stringify(toJson(report), null, 2) : renderTable(report));
  if (v.svg && !v.json) console.log(`chart written to ${v.svg}`);
}
