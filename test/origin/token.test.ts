/**
 * The write token the origin generates (origin/auth.ts loadOrCreateToken).
 * It is passed on command lines (`propagate measure --token T`), so it must
 * never look like an option: a base64url token starts with "-" one time in
 * 64, and the measure CLI test failed once that way ("Option '--token'
 * argument is ambiguous").
 */
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { loadOrCreateToken } from "../../origin/auth.ts";

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe("generated write token", () => {
  it("never starts with '-', so a flag parser takes it as the option's value", async () => {
    const dir = await mkdtemp(join(tmpdir(), "token-"));
    dirs.push(dir);
    // 300 tokens: with a bare base64url token, one would start with "-" 99 % of the time.
    for (let i = 0; i < 300; i++) {
      const { token, created } = await loadOrCreateToken(dir, undefined, `token-${i}`);
      expect(created).toBe(true);
      expect(token).toMatch(/^pt_[A-Za-z0-9_-]{32}$/);
      const { values } = parseArgs({
        args: ["--token", token],
        options: { token: { type: "string" } },
      });
      expect(values.token).toBe(token);
    }
  });

  it("is written mode 0600 and read back on the next start", async () => {
    const dir = await mkdtemp(join(tmpdir(), "token-"));
    dirs.push(dir);
    const first = await loadOrCreateToken(dir);
    expect((await stat(join(dir, "token"))).mode & 0o777).toBe(0o600);
    expect((await readFile(join(dir, "token"), "utf8")).trim()).toBe(first.token);
    expect(await loadOrCreateToken(dir)).toEqual({ token: first.token, created: false });
  });
});
