/**
 * A corpus of broken zone files (test/fixtures/zonefiles/bad/*.zone). Each
 * file's first line says what it must fail with: `; expect line N: /regex/`.
 * The parser rejects each naming that line (RFC 1035 §5.1 master files), and
 * the origin's API answers PUT /v1/zones/{zone} with text/dns 400
 * {error, field, line, reason} and creates nothing.
 */
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningOrigin, startOrigin } from "../../origin/server.ts";
import { parseZoneFile, ZoneFileError } from "../../origin/zonefile.ts";

const DIR = new URL("../fixtures/zonefiles/bad/", import.meta.url).pathname;
const TOKEN = "zonefile-corpus-token";

interface Case {
  file: string;
  text: string;
  line: number;
  reason: RegExp;
}

async function corpus(): Promise<Case[]> {
  const files = (await readdir(DIR)).filter((f) => f.endsWith(".zone")).sort();
  return Promise.all(
    files.map(async (file) => {
      const text = await readFile(join(DIR, file), "utf8");
      const m = /^; expect line (\d+): \/(.*)\/([a-z]*)$/m.exec(text.split("\n")[0]!);
      if (!m) throw new Error(`${file}: the first line must be "; expect line N: /regex/"`);
      return { file, text, line: Number(m[1]), reason: new RegExp(m[2]!, m[3]) };
    }),
  );
}

const cases = await corpus();
let dir: string;
let origin: RunningOrigin;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "propagate-zonefile-corpus-"));
  origin = await startOrigin(
    {
      http: { host: "127.0.0.1", port: 0 },
      dns: { host: "127.0.0.1", port: 0 },
      dataDir: dir,
      token: TOKEN,
    },
    { log: () => {} },
  );
});
afterAll(async () => {
  await origin?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("broken zone files", () => {
  it("the corpus is there", () => {
    expect(cases.length).toBeGreaterThanOrEqual(20);
  });

  it.each(cases)("$file: rejected naming its line", ({ text, line, reason }) => {
    let err: unknown;
    try {
      parseZoneFile(text, { origin: "example.test" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ZoneFileError);
    expect((err as ZoneFileError).line).toBe(line);
    expect((err as Error).message).toMatch(reason);
    expect((err as Error).message).toMatch(new RegExp(`^line ${line}: `));
  });

  it.each(cases)("$file: the API answers 400 with the line and creates nothing", async (c) => {
    const res = await fetch(`${origin.httpUrl}/v1/zones/example.test`, {
      method: "PUT",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "text/dns" },
      body: c.text,
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as {
      error: string;
      field: string;
      line: number;
      reason: string;
    };
    expect(body).toMatchObject({ error: "invalid zone file", field: "body", line: c.line });
    expect(body.reason).toMatch(c.reason);
    const zone = await fetch(`${origin.httpUrl}/v1/zones/example.test`);
    expect(zone.status).toBe(404);
    await zone.arrayBuffer();
  });
});
