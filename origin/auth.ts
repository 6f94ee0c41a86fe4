/**
 * Bearer tokens for writes (RFC 6750). Writes are never open: with no token
 * configured the origin makes one and keeps it in its data directory.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { getConnInfo } from "@hono/node-server/conninfo";
import type { Context, MiddlewareHandler } from "hono";
import type { RateLimiter } from "../core/rate-limit.ts";
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
  // The "pt_" prefix: a base64url token starts with "-" one time in 64, and
  // `propagate measure --token <it>` (any getopt-style parser) then takes it
  // for an option and refuses it as "ambiguous".
  const token = `pt_${randomBytes(24).toString("base64url")}`;
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

/** The bearer token of an Authorization header (RFC 6750 §2.1), if there is one. */
export function bearerOf(header: string | undefined): string | undefined {
  return /^Bearer\s+(\S+)\s*$/i.exec(header ?? "")?.[1];
}

/** True when `given` equals one of `expected`; constant time in content and length. */
export function tokenMatches(given: string, expected: readonly string[]): boolean {
  const g = digest(given);
  // Every candidate is compared, so the time does not tell which one matched.
  return expected.map((e) => timingSafeEqual(g, digest(e))).includes(true);
}

interface CredentialState {
  /** Per node id, the generation of its current token (1 for the first one issued). */
  generations: Record<string, number>;
  revoked: string[];
}

/**
 * Per-node credentials: each cache node gets its own token, issued by the
 * origin (`POST /v1/nodes/{id}/token`) and revoked with `DELETE
 * /v1/nodes/{id}`. A token is HMAC-SHA256(master, id, generation), so the
 * origin stores no token, only a generation per node (DATA/node-credentials.json);
 * issuing again or revoking makes every earlier token of that node fail. One
 * node's token registers and acks for that node only.
 */
export class NodeCredentials {
  private readonly state: CredentialState;

  constructor(
    private readonly master: string,
    private readonly file: string,
  ) {
    this.state = { generations: {}, revoked: [] };
    try {
      Object.assign(this.state, JSON.parse(readFileSync(file, "utf8")) as CredentialState);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
        throw new Error(
          `${file}: ${(err as Error).message}; fix or remove it (nodes then need new tokens)`,
        );
      }
    }
  }

  /** A new token for `id`; earlier ones stop working. */
  issue(id: string): string {
    const gen = (this.state.generations[id] ?? 0) + 1;
    this.state.generations[id] = gen;
    this.state.revoked = this.state.revoked.filter((r) => r !== id);
    this.save();
    return this.tokenOf(id, gen);
  }

  /** Every token of `id` stops working; false when it never had one. */
  revoke(id: string): boolean {
    if (this.state.generations[id] === undefined) return false;
    if (!this.state.revoked.includes(id)) this.state.revoked.push(id);
    this.save();
    return true;
  }

  /** True when `token` is the current, unrevoked token of node `id`. */
  valid(id: string, token: string): boolean {
    const gen = this.state.generations[id];
    if (gen === undefined || this.state.revoked.includes(id)) return false;
    return tokenMatches(token, [this.tokenOf(id, gen)]);
  }

  private tokenOf(id: string, gen: number): string {
    const mac = createHmac("sha256", this.master).update(`node-token\n${id}\n${gen}`);
    return `nt_${mac.digest("base64url")}`;
  }

  /** Written whole then renamed, so a crash leaves the old file or the new one. */
  private save(): void {
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.state), { mode: 0o600 });
    renameSync(tmp, this.file);
  }
}

/**
 * Hono middleware: a token bucket per client address; over it, 429 with
 * Retry-After (RFC 6585 §4) and a reason.
 */
export function perClientLimit(limiter: RateLimiter): MiddlewareHandler {
  return async (c, next) => {
    const client = getConnInfo(c).remote.address ?? "unknown";
    if (!limiter.allow(client)) {
      const wait = Math.max(1, limiter.retryAfter(client));
      c.header("Retry-After", String(wait));
      return c.json(
        {
          error: "too many requests",
          reason: `more than ${limiter.burst} requests at once or ${limiter.perSecond}/s from ${client}; retry in ${wait} s`,
        },
        429,
      );
    }
    await next();
  };
}

/**
 * Hono middleware: 401 without a bearer token, 403 with a wrong one; compared in
 * constant time. `also` may accept other tokens for this request (a node's own).
 */
export function requireBearer(
  token: string | string[],
  also?: (c: Context, given: string) => boolean | Promise<boolean>,
): MiddlewareHandler {
  const tokens = Array.isArray(token) ? token : [token];
  return async (c, next) => {
    const given = bearerOf(c.req.header("authorization"));
    if (given === undefined) {
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
    if (!tokenMatches(given, tokens) && !(also && (await also(c, given)))) {
      return c.json(
        { error: "forbidden", reason: "the bearer token is not this origin's token" },
        403,
      );
    }
    await next();
  };
}
