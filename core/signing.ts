/**
 * Signed purge events. The origin signs every event it publishes with an
 * Ed25519 key (RFC 8032); nodes hold only the public key, so a node that is
 * compromised, or anyone who can write to the bus (one XADD into the Redis
 * stream), cannot make another cache forget or rewrite anything. HMAC-SHA256
 * would need the same secret on every node, which any one node could then
 * use to forge. Node-only (node:crypto), like dns-transport.ts.
 *
 * The signature covers a canonical encoding of the event: JSON with object
 * keys sorted and no whitespace, every field but `sig` itself, so the bytes
 * signed do not depend on how a bus or a JSON library orders fields.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from "node:crypto";
import type { PurgeEvent } from "./purge.ts";

/** The bytes an event's signature covers: canonical JSON of the event without `sig`. */
export function canonicalEvent(event: PurgeEvent): Buffer {
  const { sig: _sig, ...rest } = event;
  return Buffer.from(canonicalJson(rest));
}

/** JSON with object keys sorted at every level and `undefined` members left out. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v ?? null)).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/** The origin's side: signs events with its private key. */
export class EventSigner {
  private readonly key: KeyObject;
  /** The public key as base64 DER (SubjectPublicKeyInfo), what nodes are given. */
  readonly publicKey: string;

  constructor(privateKeyPem: string) {
    this.key = createPrivateKey(privateKeyPem);
    if (this.key.asymmetricKeyType !== "ed25519") {
      throw new Error(`the purge signing key must be Ed25519, not ${this.key.asymmetricKeyType}`);
    }
    this.publicKey = createPublicKey(this.key)
      .export({ format: "der", type: "spki" })
      .toString("base64");
  }

  /** A new Ed25519 private key, PEM (PKCS #8). */
  static generate(): string {
    return generateKeyPairSync("ed25519")
      .privateKey.export({ format: "pem", type: "pkcs8" })
      .toString();
  }

  /** The event with its signature (base64) in `sig`. */
  sign(event: PurgeEvent): PurgeEvent {
    const sig = sign(null, canonicalEvent(event), this.key).toString("base64");
    return { ...event, sig };
  }
}

/** Verifiers by public key, so nodes of one process that trust one origin share one memo. */
const verifiers = new Map<string, (event: PurgeEvent) => boolean>();
/** Signatures remembered per verifier (and keys per process): a bus burst, not a history. */
const MEMO = 1024;

/**
 * A node's side: true only for an event the origin's key signed, unchanged.
 * With 100 nodes in one process every node checks the same event: an Ed25519
 * verify costs ~100x the canonical encoding, so each verifier remembers the
 * exact bytes each good signature covered. A hit needs the same signature
 * over byte-identical canonical text, so it is as true as the verify it
 * saves; a failed verify is never remembered.
 */
export function eventVerifier(publicKey: string): (event: PurgeEvent) => boolean {
  const known = verifiers.get(publicKey);
  if (known) return known;
  const key = createPublicKey({
    key: Buffer.from(publicKey, "base64"),
    format: "der",
    type: "spki",
  });
  if (key.asymmetricKeyType !== "ed25519") {
    throw new Error(`the origin's purge key must be Ed25519, not ${key.asymmetricKeyType}`);
  }
  /** Signature -> the canonical text it verified. */
  const verified = new Map<string, string>();
  const check = (event: PurgeEvent): boolean => {
    if (typeof event.sig !== "string" || event.sig.length === 0) return false;
    const { sig: _sig, ...rest } = event;
    const text = canonicalJson(rest);
    if (verified.get(event.sig) === text) return true;
    try {
      if (!verify(null, Buffer.from(text), key, Buffer.from(event.sig, "base64"))) return false;
    } catch {
      return false;
    }
    verified.set(event.sig, text);
    if (verified.size > MEMO) verified.delete(verified.keys().next().value!);
    return true;
  };
  if (verifiers.size >= 16) verifiers.delete(verifiers.keys().next().value!);
  verifiers.set(publicKey, check);
  return check;
}
