import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { type DnsServer, queryTcp, queryUdp, startDnsServer } from "../../core/dns-transport.ts";

let server: DnsServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** Answers each message with itself, QR set: enough to see framing and order. */
const echo = (q: Buffer) => {
  const out = Buffer.from(q);
  out[2] = (out[2] ?? 0) | 0x80;
  return out;
};

function frame(id: number): Buffer {
  const msg = Buffer.alloc(12);
  msg.writeUInt16BE(id, 0);
  const len = Buffer.alloc(2);
  len.writeUInt16BE(msg.length, 0);
  return Buffer.concat([len, msg]);
}

/** Sends `ids` on one TCP connection at once and collects the reply IDs. */
function pipeline(port: number, ids: number[]): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, "127.0.0.1");
    const got: number[] = [];
    let buf = Buffer.alloc(0);
    sock.on("connect", () => sock.write(Buffer.concat(ids.map(frame))));
    sock.on("data", (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        got.push(buf.readUInt16BE(2));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
      if (got.length === ids.length) {
        sock.destroy();
        resolve(got);
      }
    });
    sock.on("error", reject);
  });
}

describe("DNS transport", () => {
  it("serves UDP and TCP on one port", async () => {
    server = await startDnsServer({ host: "127.0.0.1", port: 0 }, echo);
    const q = frame(7).subarray(2);
    expect((await queryUdp("127.0.0.1", server.port, q)).readUInt16BE(0)).toBe(7);
    expect((await queryTcp("127.0.0.1", server.port, q)).readUInt16BE(0)).toBe(7);
  });

  it("answers pipelined queries out of order, as each is ready (RFC 7766 §6.2.1.1)", async () => {
    const delays: Record<number, number> = { 1: 60, 2: 0, 3: 30 };
    server = await startDnsServer({ host: "127.0.0.1", port: 0 }, async (q) => {
      await new Promise((r) => setTimeout(r, delays[q.readUInt16BE(0)] ?? 0));
      return echo(q);
    });
    expect(await pipeline(server.port, [1, 2, 3])).toEqual([2, 3, 1]);
  });

  it("stops reading past the pipeline limit and resumes: every query is answered", async () => {
    let open = 0;
    let most = 0;
    server = await startDnsServer({ host: "127.0.0.1", port: 0, maxTcpPipeline: 4 }, async (q) => {
      open++;
      most = Math.max(most, open);
      await new Promise((r) => setTimeout(r, 5));
      open--;
      return echo(q);
    });
    const ids = Array.from({ length: 40 }, (_, i) => i + 1);
    expect((await pipeline(server.port, ids)).sort((a, b) => a - b)).toEqual(ids);
    expect(most).toBe(4);
  });

  it("closes connections beyond the limit at once", async () => {
    server = await startDnsServer({ host: "127.0.0.1", port: 0, maxTcpConnections: 2 }, echo);
    const port = server.port;
    const connect = () =>
      new Promise<net.Socket>((resolve) => {
        const s = net.connect(port, "127.0.0.1", () => resolve(s));
      });
    const kept = [await connect(), await connect()];
    // The server has accepted both once each has answered a query on its connection.
    await Promise.all(
      kept.map(
        (s, i) =>
          new Promise<void>((resolve) => {
            s.once("data", () => resolve());
            s.write(frame(i + 1));
          }),
      ),
    );
    const third = await connect();
    const closed = await new Promise<boolean>((resolve) => {
      third.on("close", () => resolve(true));
      setTimeout(() => resolve(false), 2_000);
    });
    expect(closed).toBe(true);
    expect(kept.every((s) => !s.destroyed)).toBe(true);
    for (const s of kept) s.destroy();
  });
});
