/**
 * infra/sim/world.ts `firstAddress`: how the simulator reads a resolver's
 * version (the value of its A record), from a stored answer or from a
 * buffer it reuses, where only the first `n` octets are the message.
 */
import * as packet from "dns-packet";
import { describe, expect, it } from "vitest";
import { appendCacheStatus, formatCacheStatus } from "../../edge/key.ts";
import {
  addressNumber,
  etagVersion,
  firstAddress,
  firstAddressAt,
  staleIfError,
} from "../../infra/sim/world.ts";

const answer = (answers: packet.Answer[]) =>
  packet.encode({
    type: "response",
    id: 0,
    flags: packet.RECURSION_AVAILABLE,
    questions: [{ name: "www.example.test", type: "A", class: "IN" }],
    answers,
  });

describe("firstAddress", () => {
  it("reads the first A record of the answer section, past a CNAME", () => {
    const wire = answer([
      { name: "www.example.test", type: "CNAME", class: "IN", ttl: 60, data: "b.example.test" },
      { name: "b.example.test", type: "A", class: "IN", ttl: 60, data: "192.0.2.7" },
      { name: "b.example.test", type: "A", class: "IN", ttl: 60, data: "192.0.2.8" },
    ]);
    expect(firstAddress(wire, wire.length)).toBe("192.0.2.7");
  });

  it("ignores what a reused buffer holds after the message", () => {
    const old = answer([
      { name: "www.example.test", type: "A", class: "IN", ttl: 60, data: "192.0.2.1" },
    ]);
    const nodata = answer([]);
    // The shorter NODATA answer copied over the older A answer: its tail is still there.
    const scratch = Buffer.from(old);
    nodata.copy(scratch);
    expect(firstAddress(scratch, nodata.length)).toBeUndefined();
    const fresh = answer([
      { name: "www.example.test", type: "A", class: "IN", ttl: 5, data: "192.0.2.2" },
    ]);
    const big = Buffer.alloc(512, 0xff);
    fresh.copy(big);
    expect(firstAddress(big, fresh.length)).toBe("192.0.2.2");
  });

  it("finds the same four octets as a number, and maps only the text dns-packet decodes to", () => {
    for (const data of ["192.0.2.7", "0.0.0.0", "255.255.255.255", "10.1.0.200"]) {
      const wire = answer([
        { name: "www.example.test", type: "CNAME", class: "IN", ttl: 60, data: "b.example.test" },
        { name: "b.example.test", type: "A", class: "IN", ttl: 60, data },
      ]);
      const at = firstAddressAt(wire, wire.length);
      expect(at).toBeGreaterThan(0);
      expect(wire.readUInt32BE(at)).toBe(addressNumber(firstAddress(wire, wire.length)!));
    }
    const nodata = answer([]);
    expect(firstAddressAt(nodata, nodata.length)).toBe(-1);
    expect(addressNumber("192.0.2.7")).toBe(0xc0000207);
    for (const text of [
      "010.0.0.1",
      "1.2.3",
      "1.2.3.4.5",
      "256.0.0.1",
      "",
      " 1.2.3.4",
      "1.2.3.x",
      "1.2.3.-0",
    ])
      expect(addressNumber(text)).toBe(-1);
  });
});

describe("etagVersion", () => {
  it("reads the serial of a strong or weak ETag of digits, as the pattern it replaces", () => {
    const pattern = (etag: string | null) => {
      const m = etag ? /^(?:W\/)?"(\d+)"$/.exec(etag) : null;
      return m ? Number(m[1]) : undefined;
    };
    const cases = [
      null,
      "",
      '"12"',
      'W/"12"',
      '"0"',
      '""',
      'W/""',
      '"1a"',
      "12",
      '"12',
      '12"',
      'w/"12"',
      '"4294967295"',
      '"12345678901234567890"',
      ' "12"',
      '"-1"',
      'W/"7"x',
    ];
    for (const etag of cases) expect(etagVersion(etag)).toBe(pattern(etag));
    expect(etagVersion('W/"42"')).toBe(42);
  });
});

describe("staleIfError", () => {
  const said = (cacheStatus: string) =>
    staleIfError(new Response(null, { headers: { "cache-status": cacheStatus } }));

  it("reads the edge's own member's detail, not a name or a key that holds the words", () => {
    expect(
      said("regional-1; fwd=miss, edge-1; fwd-status=503; ttl=-4; detail=stale-if-error"),
    ).toBe(true);
    // The parent's stale-if-error, passed on by a fresh edge: not this edge's.
    expect(said("regional-1; detail=stale-if-error, edge-1; hit; ttl=30")).toBe(false);
    // An edge named so (a token), and a quoted key with a comma in it.
    expect(said("edge-stale-if-error; hit; ttl=30")).toBe(false);
    expect(said('edge-1; hit; key="http://a/?q=1,stale-if-error"')).toBe(false);
    expect(staleIfError(new Response(null))).toBe(false);
  });

  it("reads the member the edge writes (edge/key.ts), after its parent's", () => {
    const own = (detail?: string) =>
      formatCacheStatus("edge-1", {
        fwd: "stale",
        fwdStatus: 503,
        ttl: -4,
        key: "http://edge-1/dns-query?dns=AAAB",
        ...(detail !== undefined ? { detail } : {}),
      });
    expect(said(appendCacheStatus("regional-1; fwd=miss", own("stale-if-error")))).toBe(true);
    expect(said(appendCacheStatus("regional-1; detail=stale-if-error", own()))).toBe(false);
  });
});
