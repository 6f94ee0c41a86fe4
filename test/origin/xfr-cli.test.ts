/** `propagate origin` as users run it, with the primary's flags. */
import { execFile } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseTsigKeys } from "../../core/tsig.ts";
import { main } from "../../origin/main.ts";
import { kdigText } from "../support/dns-daemons.ts";
import { type Running, startOriginProcess } from "../support/process.ts";

const run = promisify(execFile);
let dir = "";
let keys = "";
let y = "";
let origin: Running;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "propagate-xfr-cli-"));
  keys = join(dir, "keys.conf");
  const text = (await run("tsig-keygen", ["-a", "hmac-sha256", "cli-key"])).stdout;
  await writeFile(keys, text);
  const k = parseTsigKeys(text)[0]!;
  y = `${k.algorithm}:${k.name}:${k.secret.toString("base64")}`;
  origin = await startOriginProcess(join(dir, "data"), "cli-token-123456", [
    "--sample",
    "--tsig-keys",
    keys,
    "--allow-transfer",
    "example.test=key:cli-key",
    "--catalog",
    "catalog.test",
    "--secondary",
    "id=s1,dns=127.0.0.1:9,key=cli-key,zones=example.test",
  ]);
}, 20_000);
afterAll(() => origin?.stop());

describe("propagate origin --tsig-keys --allow-transfer --catalog --secondary", () => {
  it("transfers to the key, refuses others, lists the secondary and the catalog", async () => {
    const [host, port] = origin.ready.dns!.split(":") as [string, string];
    const signed = await kdigText([`@${host}`, "-p", port, "-y", y, "example.test", "AXFR"]);
    expect(signed).toMatch(/example\.test\.\s+\d+\s+IN\s+SOA/);
    expect(signed).not.toMatch(/WARNING|REFUSED/);
    expect(await kdigText([`@${host}`, "-p", port, "example.test", "AXFR"])).toMatch(/REFUSED/);
    // The catalog is a zone too: transfers follow the "*" list (none here), so only its secondaries' keys.
    expect(await kdigText([`@${host}`, "-p", port, "-y", y, "catalog.test", "SOA"])).toMatch(
      /NOERROR/,
    );
    const list = (await (await fetch(`${origin.ready.http}/v1/secondaries`)).json()) as {
      secondaries: { id: string; dns: string; zones: string[] }[];
    };
    expect(list.secondaries).toMatchObject([
      { id: "s1", dns: "127.0.0.1:9", zones: ["example.test"] },
    ]);
  });

  it("refuses bad flags with a reason", async () => {
    // In-process: a usage error is thrown before anything listens.
    const start = (extra: string[]) =>
      main(["--data", join(dir, "bad"), "--http", "127.0.0.1:0", "--dns", "127.0.0.1:0", ...extra]);
    await expect(start(["--allow-transfer", "300.1.2.3"])).rejects.toThrow(
      /"300\.1\.2\.3" is neither an IP address/,
    );
    await expect(start(["--secondary", "id=x"])).rejects.toThrow(
      /--secondary expects id=ID,dns=HOST:PORT/,
    );
    await expect(
      start(["--tsig-keys", keys, "--secondary", "id=x,dns=127.0.0.1:9,key=nope"]),
    ).rejects.toThrow(/key "nope" is not in the TSIG key file/);
    await expect(start(["--tsig-keys", join(dir, "missing.conf")])).rejects.toThrow(/ENOENT/);
  });
});
