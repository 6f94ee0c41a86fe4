/**
 * The resolver's hit path in process, without sockets: nanoseconds per query
 * through `createHandler` (parse, zone check, cache lookup, render) over 1,000
 * cached questions of mixed types (250 names x A/AAAA/TXT/MX, EDNS, mixed case).
 * What the UDP figure of resolver-hit-pinned.ts spends beyond the bare server.
 * Usage: npx tsx bench/resolver-hit-path.ts [queries=1000000] [rounds=5]
 */
import * as packet from "dns-packet";
import { RealClock } from "../core/clock.ts";
import { ResolverCache, type Upstream } from "../resolver/cache.ts";
import { parseResolverConfig } from "../resolver/config.ts";
import { createHandler } from "../resolver/handler.ts";
import { LruStorage } from "../resolver/storage-lru.ts";
import { machine } from "./support.ts";

const N = Number(process.argv[2] ?? 1_000_000);
const rounds = Number(process.argv[3] ?? 5);
const TYPES = { 1: "A", 28: "AAAA", 16: "TXT", 15: "MX" } as const;
type Code = keyof typeof TYPES;

function answer(name: string, qtype: Code, i: number): packet.Answer {
  const base = { name, class: "IN" as const, ttl: 3600 };
  if (qtype === 1) return { ...base, type: "A", data: `192.0.2.${i % 250}` };
  if (qtype === 28) return { ...base, type: "AAAA", data: `2001:db8::${i.toString(16)}` };
  if (qtype === 16) return { ...base, type: "TXT", data: `host ${i}` };
  return { ...base, type: "MX", data: { preference: 10, exchange: `mx${i}.example.test` } };
}

/** An in-process authority for the warm-up: every name hN.example.test has all four types. */
const upstream: Upstream = async (wire, qtype) => {
  const labels: string[] = [];
  for (let p = 0; wire[p]; p += wire[p]! + 1)
    labels.push(wire.toString("latin1", p + 1, p + 1 + wire[p]!));
  const name = labels.join(".");
  const i = Number(/^h(\d+)\./.exec(name)?.[1]);
  const message = packet.encode({
    type: "response",
    id: 0,
    flags: packet.AUTHORITATIVE_ANSWER,
    questions: [{ name, type: TYPES[qtype as Code], class: "IN" }],
    answers: [answer(name, qtype as Code, i)],
  });
  return { message, age: 0 };
};

const config = parseResolverConfig({ upstream: "dns://127.0.0.1:9" });
const cache = new ResolverCache(
  "res-1",
  config,
  new RealClock(),
  upstream,
  undefined,
  new LruStorage(config.maxBytes),
);
const { handler } = createHandler(cache, {
  zones: ["example.test"],
  staleTtl: 30,
  wire: { udpPayload: 1232, nsid: Buffer.from("res-1") },
});
const queries: Buffer[] = [];
for (let i = 0; i < 250; i++)
  for (const t of Object.values(TYPES))
    queries.push(
      packet.encode({
        type: "query",
        id: i,
        flags: packet.RECURSION_DESIRED,
        questions: [{ name: `h${i}.Example.test`, type: t, class: "IN" }],
        additionals: [{ type: "OPT", name: ".", udpPayloadSize: 1232 } as packet.Answer],
      }),
    );
const info = { transport: "udp" as const, address: "127.0.0.1", port: 5353 };
for (const q of queries) await handler(q, info);
console.log(`machine: ${machine()}`);
for (let round = 1; round <= rounds; round++) {
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  for (let i = 0; i < N; i++)
    if (handler(queries[i % queries.length]!, info) instanceof Promise) throw new Error("miss");
  const wall = Number(process.hrtime.bigint() - t0) / N;
  // CPU time (user + system) is what the load of other processes disturbs least.
  const c = process.cpuUsage(c0);
  const cpu = ((c.user + c.system) * 1000) / N;
  console.log(`round ${round}: ${cpu.toFixed(0)} ns CPU per hit (${wall.toFixed(0)} ns wall)`);
}
