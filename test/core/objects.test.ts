import { describe, expect, it } from "vitest";
import { extend } from "../../core/objects.ts";

describe("extend", () => {
  it("is the spread it replaces: base's properties in order, then new ones, later wins", () => {
    const base = { fwdStatus: 304, detail: "old", hit: undefined };
    const fields = { stored: true, detail: "new", ttl: 0 };
    const got = extend(base, fields);
    const spread = { ...base, ...fields };
    expect(got).toEqual(spread);
    expect(Object.keys(got)).toEqual(Object.keys(spread));
    expect(Object.getPrototypeOf(got)).toBe(Object.prototype);
    // A new object; neither argument is changed.
    expect(got).not.toBe(base);
    expect(base).toEqual({ fwdStatus: 304, detail: "old", hit: undefined });
    expect(fields).toEqual({ stored: true, detail: "new", ttl: 0 });
  });

  it("copies own enumerable properties only, symbols included, as a spread does", () => {
    const tag = Symbol("tag");
    const proto = { inherited: 1 };
    const base = Object.assign(Object.create(proto) as Record<string | symbol, unknown>, {
      own: 2,
      [tag]: 3,
    });
    Object.defineProperty(base, "hidden", { value: 4, enumerable: false });
    const got = extend(base, { more: 5 });
    expect(got).toEqual({ ...base, more: 5 });
    expect(Reflect.ownKeys(got)).toEqual(Reflect.ownKeys({ ...base, more: 5 }));
    expect("inherited" in got).toBe(false);
    expect(Object.hasOwn(got, "hidden")).toBe(false);
  });
});
