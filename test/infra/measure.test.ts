import { describe, expect, it } from "vitest";
import { giveUpRule, PAST_DEADLINE_MS, watchFrom } from "../../infra/measure.ts";
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
  it("gives up on a target whose last 3 questions or more, over 2 s, got no answer", () => {
    const rule = giveUpRule(20);
    expect(rule([err(0), err(1_000)], 5_000)).toBe(false);
    expect(rule([err(0), err(1_000), err(1_999)], 1_999)).toBe(false);
    expect(rule([err(0), err(1_000), err(2_000)], 2_000)).toBe(true);
    expect(rule([err(0), err(500), ans(1_500), err(1_600), err(1_700), err(3_000)], 3_000)).toBe(
      false,
    );
  });

  it("stops following a stale target PAST_DEADLINE_MS after its deadline", () => {
    const rule = giveUpRule(20, 10_000);
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

describe("measure --watch", () => {
  it("takes NAME TYPE as two words, or one quoted value, and the new value", () => {
    expect(watchFrom({ watch: "WWW.Example.test.", expect: ["192.0.2.1"] }, ["a"])).toEqual({
      name: "www.example.test",
      type: "A",
      expect: ["192.0.2.1"],
    });
    expect(
      watchFrom({ watch: "www.example.test TXT", "expect-from": "dns://127.0.0.1:1054" }, []),
    ).toMatchObject({ type: "TXT", expectFrom: { kind: "dns", port: 1054 } });
    expect(watchFrom({}, [])).toBeUndefined();
  });

  it("refuses a missing type, a missing value, a bad --expect-from, and --expect alone", () => {
    expect(() => watchFrom({ watch: "www.example.test", expect: ["x"] }, [])).toThrow(
      /--watch expects NAME TYPE/,
    );
    expect(() => watchFrom({ watch: "www.example.test", expect: ["x"] }, ["BOGUS"])).toThrow(
      /--watch expects NAME TYPE/,
    );
    expect(() => watchFrom({ watch: "www.example.test A" }, [])).toThrow(
      /--expect VALUE or --expect-from/,
    );
    expect(() => watchFrom({ watch: "w A", "expect-from": "udp://x" }, [])).toThrow(
      /--expect-from: "udp:\/\/x" is not a target/,
    );
    expect(() => watchFrom({ expect: ["x"] }, [])).toThrow(/need --watch NAME TYPE/);
  });
});
