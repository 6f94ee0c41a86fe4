/** core/memo.ts: a string function computed once per argument, bounded in entries and length. */
import { describe, expect, it } from "vitest";
import { memoized, RecentBytes } from "../../core/memo.ts";

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

describe("RecentBytes", () => {
  it("finds a value by equal bytes, keeps the last `kept`, copies its keys, keeps no undefined", () => {
    const r = new RecentBytes<string>(2);
    const a = Buffer.from("abc");
    r.set(a, "A");
    expect(r.get(Buffer.from("abc"))).toBe("A");
    expect(r.get(new Uint8Array([97, 98, 99]))).toBe("A");
    expect(r.get(Buffer.from("ab"))).toBeUndefined();
    expect(r.get(Buffer.from("abd"))).toBeUndefined();
    // The caller's buffer changed in place is not the key kept.
    a[0] = 120;
    expect(r.get(a)).toBeUndefined();
    expect(r.get(Buffer.from("abc"))).toBe("A");
    r.set(Buffer.from("b"), "B");
    r.set(Buffer.from("c"), "C");
    expect(r.get(Buffer.from("abc"))).toBeUndefined();
    expect([r.get(Buffer.from("b")), r.get(Buffer.from("c"))]).toEqual(["B", "C"]);
    r.set(Buffer.from("d"), undefined as unknown as string);
    expect(r.get(Buffer.from("b"))).toBe("B");
    r.clear();
    expect(r.get(Buffer.from("c"))).toBeUndefined();
  });
});
