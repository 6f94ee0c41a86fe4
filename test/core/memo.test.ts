/** core/memo.ts: a string function computed once per argument, bounded in entries and length. */
import { describe, expect, it } from "vitest";
import { memoized } from "../../core/memo.ts";

describe("memoized", () => {
  it("computes once per argument, starts over past its bound, never keeps a long argument", () => {
    const calls: string[] = [];
    const f = memoized(
      (s) => {
        calls.push(s);
        return s.length;
      },
      2,
      5,
    );
    expect([f("a"), f("a"), f("bb")]).toEqual([1, 1, 2]);
    expect(calls).toEqual(["a", "bb"]);
    // A third argument starts the memo over: "a" is computed again afterwards.
    expect([f("ccc"), f("a")]).toEqual([3, 1]);
    expect(calls).toEqual(["a", "bb", "ccc", "a"]);
    // Longer than the limit: computed every time.
    expect([f("dddddd"), f("dddddd")]).toEqual([6, 6]);
    expect(calls.filter((c) => c === "dddddd")).toHaveLength(2);
  });

  it("keeps a null result (a target not served) as a result", () => {
    let n = 0;
    const f = memoized(() => {
      n++;
      return null;
    }, 8);
    expect([f("x"), f("x")]).toEqual([null, null]);
    expect(n).toBe(1);
  });

  it("keeps no undefined result: computed again each time, and taking no place", () => {
    const calls: string[] = [];
    const f = memoized((s) => {
      calls.push(s);
      return s === "bad" ? undefined : s;
    }, 1);
    expect([f("ok"), f("bad"), f("bad"), f("ok")]).toEqual(["ok", undefined, undefined, "ok"]);
    // "bad" neither was kept nor pushed "ok" out of the one place there is.
    expect(calls).toEqual(["ok", "bad", "bad"]);
  });
});
