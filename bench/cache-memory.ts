/**
 * Memory per cached entry, beyond the bytes it stores: one resolver storage
 * holding N RRsets (the stored answer wire bytes are the payload), and one
 * edge storage holding M responses (body and stored header bytes are the
 * payload). RSS and heap are read after a full GC before and after filling.
 * Usage: npx tsx bench/cache-memory.ts [resolverEntries=1000000] [edgeEntries=200000]
 * (re-runs itself under --expose-gc and a heap large enough for the fill).
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { entryFromResponse } from "../edge/entry.ts";
import { LruStorage as EdgeLru } from "../edge/storage-lru.ts";
import { storeAnswer } from "../resolver/answer.ts";
import { DEFAULT_CACHE, newEntry } from "../resolver/policy.ts";
import { LruStorage as ResolverLru } from "../resolver/storage-lru.ts";
import { machine } from "./support.ts";

const gc = (globalThis as { gc?: () => void }).gc;
const R = Number(process.argv[2] ?? 1_000_000);
const E = Number(process.argv[3] ?? 200_000);
// Each tier in a fresh process, so one's garbage never shows in the other's figure.
if (!gc) {
  console.log(`machine: ${machine()}`);
  const self = fileURLToPath(import.meta.url);
  for (const tier of ["resolver", "edge"]) {
    const r = spawnSync(
      process.execPath,
      [
        "--expose-gc",
        "--max-old-space-size=8192",
        "--import",
        "tsx",
        self,
        String(R),
        String(E),
        tier,
      ],
      { stdio: "inherit" },
    );
    if (r.status !== 0) process.exit(r.status ?? 1);
  }
  process.exit(0);
}
const collect = gc!;
const tier = process.argv[4];

function settle(): { rss: number; heap: number } {
  for (let i = 0; i < 3; i++) collect();
  const m = process.memoryUsage();
  // `external` already includes `arrayBuffers` (the slabs and typed arrays).
  return { rss: m.rss, heap: m.heapUsed + m.external };
}

/** hN.example.test in wire form. */
function wireName(i: number): Buffer {
  const label = Buffer.from(`h${i}`);
  return Buffer.concat([Buffer.of(label.length), label, Buffer.from("\x07example\x04test\x00")]);
}

/** An upstream answer: header, the question, one A record (owner 0xc00c), TTL 3600. */
function response(name: Buffer, i: number): Buffer {
  const out = Buffer.alloc(12 + name.length + 4 + 16);
  out.writeUInt16BE(0x8400, 2); // QR AA
  out.writeUInt16BE(1, 4);
  out.writeUInt16BE(1, 6);
  name.copy(out, 12);
  let at = 12 + name.length;
  out.writeUInt16BE(1, at); // A
  out.writeUInt16BE(1, at + 2); // IN
  at += 4;
  out.writeUInt16BE(0xc00c, at);
  out.writeUInt16BE(1, at + 2);
  out.writeUInt16BE(1, at + 4);
  out.writeUInt32BE(3600, at + 6);
  out.writeUInt16BE(4, at + 10);
  out.writeUInt32BE(0xc0000200 + (i & 0xff), at + 12);
  return out;
}

const policy = { minTtl: 0, maxTtl: 86_400, maxNegativeTtl: 3_600 };
if (tier === "resolver") {
  const storage = new ResolverLru(Number.MAX_SAFE_INTEGER);
  const before = settle();
  let payload = 0;
  const now = Date.now();
  for (let i = 0; i < R; i++) {
    const name = wireName(i);
    const answer = storeAnswer(response(name, i), name, 1, 0, policy);
    payload += answer.wire.length;
    const presentation = `h${i}.example.test`;
    storage.set(
      newEntry(
        { key: `${name.toString("latin1")}/1`, name: presentation, wireName: name, qtype: 1 },
        answer,
        1,
        now,
        DEFAULT_CACHE,
      ),
    );
  }
  const after = settle();
  if (storage.stats().entries !== R) throw new Error(`stored ${storage.stats().entries} of ${R}`);
  report("resolver", R, payload, before, after);
}
if (tier === "edge") {
  const storage = new EdgeLru(Number.MAX_SAFE_INTEGER);
  const before = settle();
  let payload = 0;
  const now = Date.now();
  const request = new Headers();
  for (let i = 0; i < E; i++) {
    const body = new TextEncoder().encode(JSON.stringify({ name: `h${i}.example.test`, i }));
    const response = new Response(body, {
      headers: {
        "content-type": "application/json",
        "cache-control": "max-age=3600",
        "surrogate-key": `h${i}.example.test`,
        date: new Date(now).toUTCString(),
      },
    });
    const entry = entryFromResponse(`http://edge/v1/h${i}`, request, {
      requestTime: now,
      responseTime: now,
      response,
      body,
    });
    payload += body.byteLength;
    for (const [k, v] of entry.headers) payload += k.length + v.length;
    storage.set(entry);
  }
  const after = settle();
  if (storage.stats().entries !== E) throw new Error(`stored ${storage.stats().entries} of ${E}`);
  report("edge", E, payload, before, after);
}

function report(
  tier: string,
  n: number,
  payload: number,
  before: { rss: number; heap: number },
  after: { rss: number; heap: number },
): void {
  const rss = (after.rss - before.rss - payload) / n;
  const heap = (after.heap - before.heap - payload) / n;
  console.log(
    `${tier}: ${n} entries, ${(payload / n).toFixed(0)} B stored per entry; beyond it ${rss.toFixed(0)} B RSS, ${heap.toFixed(0)} B heap per entry`,
  );
}
