/**
 * The origin killed with -9 in a loop while 50 writers write: after each
 * restart every acknowledged write is there (the value a writer last had
 * acknowledged, or a later one it sent), serials never go back, and the
 * journal never needs more than dropping a torn tail (the origin starts every
 * time, with no JournalCorrupt).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type Running, startPropagate } from "../support/process.ts";

const WRITERS = 50;
const KILLS = 3;
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe("origin kill -9 in a loop under 50 writers", () => {
  it("loses no acknowledged write; each restart replays the journal", async () => {
    const dir = await mkdtemp(join(tmpdir(), "propagate-kill-loop-"));
    dirs.push(dir);
    const args = ["origin", "--http", "127.0.0.1:0", "--dns", "127.0.0.1:0", "--data", dir];
    let origin: Running = await startPropagate(args, 30_000);
    const token = origin.ready.token!;
    const put = (url: string, path: string, body: unknown) =>
      fetch(`${url}${path}`, {
        method: "PUT",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(5_000),
      });
    expect((await put(origin.ready.http!, "/v1/zones/k.test", {})).status).toBe(201);

    // Per writer: the last value acknowledged, and every value it sent.
    const acked = new Map<number, number>();
    const sent = new Map<number, number>();
    let lastSerial = 0;
    for (let round = 0; round <= KILLS; round++) {
      const url = origin.ready.http!;
      let stop = false;
      const writers = Array.from({ length: WRITERS }, async (_, w) => {
        while (!stop) {
          const value = (sent.get(w) ?? 0) + 1;
          sent.set(w, value);
          try {
            const res = await put(url, `/v1/zones/k.test/rrsets/w${w}/TXT`, { data: [`${value}`] });
            if (res.status !== 200) break;
            const { serial } = (await res.json()) as { serial: number };
            acked.set(w, value);
            lastSerial = Math.max(lastSerial, serial);
          } catch {
            break; // the origin died under this request
          }
        }
      });
      // Let the writers make progress (a condition, not a sleep): 200 more acknowledgements.
      const target = [...acked.values()].reduce((a, b) => a + b, 0) + 200;
      while (!stop && [...acked.values()].reduce((a, b) => a + b, 0) < target) {
        await new Promise((r) => setTimeout(r, 20));
      }
      if (round < KILLS) origin.proc.kill("SIGKILL");
      stop = true;
      await Promise.all(writers);
      if (round === KILLS) break;
      await origin.stop();
      origin = await startPropagate(args, 30_000); // throws if the journal were corrupt

      const zone = (await (await fetch(`${origin.ready.http}/v1/zones/k.test`)).json()) as {
        serial: number;
        rrsets: { name: string; data: string[] }[];
      };
      expect(zone.serial).toBeGreaterThanOrEqual(lastSerial);
      for (const [w, value] of acked) {
        const got = Number(zone.rrsets.find((s) => s.name === `w${w}.k.test`)?.data[0]);
        // The acknowledged value, or a later one whose answer the kill cut off.
        expect(got, `writer ${w}`).toBeGreaterThanOrEqual(value);
        expect(got, `writer ${w}`).toBeLessThanOrEqual(sent.get(w)!);
      }
    }
    expect(acked.size).toBe(WRITERS);
    expect(await origin.stop()).toBe(0);
  }, 120_000);
});
