/**
 * Bearer tokens for writes (RFC 6750). Writes are never open: with no token
 * configured the origin makes one and keeps it in its data directory.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { MiddlewareHandler } from "hono";
import { EventSigner } from "../core/signing.ts";

/** The configured token, else DATA/token, else a new one written there with mode 0600. */
export async function loadOrCreateToken(
  dataDir: string,
  given?: string,
  file = "token",
): Promise<{ token: string; created: boolean }> {
  if (given !== undefined) {
    if (given.length < 8) throw new Error("--token must be at least 8 characters");
    return { token: given, created: false };
  }
  const path = join(dataDir, file);
  try {
    const token = (await readFile(path, "utf8")).trim();
    if (token) return { token, created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const token = randomBytes(24).toString("base64url");
  await writeFile(path, `${token}\n`, { mode: 0o600 });
  return { token, created: true };
}

/**
 * The origin's Ed25519 purge-signing key (core/signing.ts): DATA/purge-key
 * (PKCS #8 PEM, mode 0600), created on first start. Kept across restarts, so
 * nodes that hold its public key keep accepting events.
 */
export async function loadOrCreateSigningKey(dataDir: string): Promise<EventSigner> {
  const path = join(dataDir, "purge-key");
  try {
    return new EventSigner(await readFile(path, "utf8"));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const pem = EventSigner.generate();
  await writeFile(path, pem, { mode: 0o600 });
  return new EventSigner(pem);
}

const digest = (s: string) => createHash("sha256").update(s).digest();

/** Hono middleware: 401 without a bearer token, 403 with a wrong one; compared in constant time. */
export function requireBearer(token: string | string[]): MiddlewareHandler {
  const expected = (Array.isArray(token) ? token : [token]).map(digest);
  return async (c, next) => {
    const header = c.req.header("authorization") ?? "";
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) {
      c.header("WWW-Authenticate", 'Bearer realm="propagate"');
      return c.json(
        {
          error: "unauthorized",
          reason:
            "writes need an Authorization: Bearer <token> header (the origin printed its token at start)",
        },
        401,
      );
    }
    // Hashing first gives equal lengths, so timingSafeEqual leaks neither content nor length.
    const given = digest(m[1]!);
    // Every candidate is compared, so the time does not tell which one matched.
    const ok = expected.map((e) => timingSafeEqual(given, e)).includes(true);
    if (!ok) {
      return c.json(
        { error: "forbidden", reason: "the bearer token is not this origin's token" },
        403,
      );
    }
    await next();
  };
}
