import { describe, expect, it } from "vitest";
import { giveUpRule, PAST_DEADLINE_MS } from "../../infra/measure.ts";
import type { Observation } from "../../infra/targets.ts";
import { graceMs } from "../../infra/targets-judge.ts";
import { tryLines } from "../../infra/up.ts";

const err = (at: number): Observation => ({ ok: false, at, error: "timeout" });
const ans = (at: number): Observation => ({
  ok: true,
  at,
  rcode: "NOERROR",
  values: ['"x"'],
  ttl: 1,
});

describe("measure: when to stop asking a target", () => {
  it("gives up on a target silent for max(3 timeouts, 2 s), not on one that answers again", () => {
    const rule = giveUpRule(300, 20);
    expect(rule([err(0)], 1_999)).toBe(false);
    expect(rule([err(0), err(1_000)], 2_000)).toBe(true);
    expect(rule([err(0), ans(1_500), err(1_600)], 2_000)).toBe(false);
    expect(giveUpRule(2_000, 20)([err(0)], 5_999)).toBe(false);
  });

  it("stops following a stale target PAST_DEADLINE_MS after its deadline", () => {
    const rule = giveUpRule(300, 20, 10_000);
    const end = 10_000 + graceMs(20) + PAST_DEADLINE_MS;
    expect(rule([ans(end)], end)).toBe(false);
    expect(rule([ans(end + 1)], end + 1)).toBe(true);
  });
});

describe("up: what to try", () => {
  it("prints the exact measure command, with the origin and the data dir holding the token", () => {
    const lines = tryLines([{ kind: "resolver", tier: "resolver", address: "127.0.0.1:1053" }], {
      originUrl: "http://127.0.0.1:8053",
      dataDir: "/tmp/run/origin",
    });
    expect(lines).toContain(
      "       npx propagate measure --origin http://127.0.0.1:8053 --data /tmp/run/origin",
    );
  });
});
