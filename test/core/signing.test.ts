import { describe, expect, it } from "vitest";
import { decodePurgeEvent } from "../../core/bus.ts";
import type { PurgeEvent } from "../../core/purge.ts";
import { canonicalJson, EventSigner, eventVerifier } from "../../core/signing.ts";

const event: PurgeEvent = {
  changeId: "chg_1",
  zone: "example.test",
  serial: 7,
  keys: ["www.example.test"],
  mode: "push",
  ts: 1_700_000_000_000,
  rrsets: [{ name: "www.example.test", type: "TXT", ttl: 60, data: [["a", "b"]] }],
};

describe("signed purge events (Ed25519)", () => {
  const signer = new EventSigner(EventSigner.generate());
  const verify = eventVerifier(signer.publicKey);

  it("encodes canonically: sorted keys at every level, no undefined members", () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { f: 2, e: undefined }], c: "x" } })).toBe(
      '{"a":{"c":"x","d":[1,{"f":2}]},"b":1}',
    );
  });

  it("verifies what the origin signed, whatever the field order on the wire", () => {
    const signed = signer.sign(event);
    expect(verify(signed)).toBe(true);
    const reordered = JSON.parse(JSON.stringify(Object.entries(signed).reverse()));
    expect(verify(decodePurgeEvent(JSON.stringify(Object.fromEntries(reordered))))).toBe(true);
  });

  it("refuses an unsigned event, another key's signature and any altered field", () => {
    expect(verify(event)).toBe(false);
    expect(verify(new EventSigner(EventSigner.generate()).sign(event))).toBe(false);
    const signed = signer.sign(event);
    expect(verify({ ...signed, serial: 999999 })).toBe(false);
    expect(verify({ ...signed, explicit: true })).toBe(false);
    expect(verify({ ...signed, rrsets: [{ ...event.rrsets![0]!, data: [["evil"]] }] })).toBe(false);
    expect(verify({ ...signed, sig: "%%%" })).toBe(false);
  });

  it("remembers a good signature only with the exact bytes it covered", () => {
    const signed = signer.sign({ ...event, changeId: "chg_memo" });
    // One verifier per key in a process: every node of it shares what was verified.
    expect(eventVerifier(signer.publicKey)).toBe(verify);
    expect(verify(signed)).toBe(true);
    expect(verify(signed)).toBe(true); // from the memo
    expect(verify({ ...signed, serial: 8 })).toBe(false);
    expect(verify({ ...signed, keys: ["evil.example.test"] })).toBe(false);
    expect(verify({ ...signed, rrsets: undefined })).toBe(false);
    // A forgery first seen is not remembered either: the good event still verifies.
    const forged = { ...signed, changeId: "chg_forged" };
    expect(verify(forged)).toBe(false);
    expect(verify(forged)).toBe(false);
    expect(verify(signed)).toBe(true);
  });

  it("refuses a key that is not Ed25519", () => {
    expect(() => eventVerifier(Buffer.from("nope").toString("base64"))).toThrow();
  });
});
