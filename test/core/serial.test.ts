import { describe, expect, it } from "vitest";
import {
  maxSerial,
  olderThan,
  serialAdd,
  serialCompare,
  serialGt,
  serialLt,
  serialMax,
  serialNext,
} from "../../core/serial.ts";

describe("RFC 1982 serial arithmetic", () => {
  it("adds modulo 2^32", () => {
    expect(serialAdd(2 ** 32 - 1, 1)).toBe(0);
    expect(serialNext(41)).toBe(42);
    expect(() => serialAdd(1, 2 ** 31)).toThrow(/2\^31 - 1/);
    expect(() => serialAdd(-1, 1)).toThrow(/unsigned/);
  });

  it("compares across wrap-around", () => {
    expect(serialLt(2 ** 32 - 1, 0)).toBe(true);
    expect(serialGt(0, 2 ** 32 - 1)).toBe(true);
    expect(serialLt(1, 2)).toBe(true);
    expect(serialCompare(5, 5)).toBe(0);
    expect(serialGt(5 + 2 ** 31 - 1, 5)).toBe(true); // 2^31 - 1 ahead: still greater
    expect(serialLt(5 + 2 ** 31 + 1, 5)).toBe(true); // past half-way: behind
  });

  it("is undefined exactly half-way (RFC 1982 §3.2)", () => {
    expect(serialCompare(0, 2 ** 31)).toBeUndefined();
    expect(serialLt(0, 2 ** 31)).toBe(false);
    expect(serialGt(0, 2 ** 31)).toBe(false);
  });

  it("serialMax picks the later serial", () => {
    expect(serialMax(2 ** 32 - 2, 3)).toBe(3);
    expect(serialMax(10, 9)).toBe(10);
  });

  it("maxSerial takes the latest of optional serials", () => {
    expect(maxSerial()).toBeUndefined();
    expect(maxSerial(undefined, 4, undefined)).toBe(4);
    expect(maxSerial(2 ** 32 - 2, 3, 1)).toBe(3);
  });

  it("olderThan is true only when both serials are known and the first is older", () => {
    expect(olderThan(3, 4)).toBe(true);
    expect(olderThan(4, 4)).toBe(false);
    expect(olderThan(2 ** 32 - 1, 0)).toBe(true);
    expect(olderThan(undefined, 4)).toBe(false);
    expect(olderThan(3, undefined)).toBe(false);
  });
});
