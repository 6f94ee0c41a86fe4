/**
 * DNS over UDP and TCP (RFC 1035 §4.2, RFC 7766) for Node: one handler serves
 * both. TCP messages are length-prefixed; a connection may carry many queries
 * and each answer is written as soon as it is ready (RFC 7766 §6.2.1.1,
 * pipelining with out-of-order replies). Node-only: Workers never import this.
 */
import dgram from "node:dgram";
import dns from "node:dns";
import net from "node:net";

export type Transport = "udp" | "tcp";

export interface QueryInfo {
  transport: Transport;
  address: string;
  port: number;
}

/**
 * Returns the response bytes, or undefined to send nothing (e.g. a response packet was
 * received). Over TCP an array is several messages answering one query, written in order
 * (a zone transfer, RFC 5936 §2.2); over UDP only its first message is sent.
 */
export type DnsReply = Buffer | readonly Buffer[] | undefined;
export type DnsHandler = (query: Buffer, info: QueryInfo) => DnsReply | Promise<DnsReply>;

export interface DnsServer {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

export interface DnsServerOptions {
  host: string;
  /** 0 picks a free port shared by UDP and TCP. */
  port: number;
  /** RFC 7766 §6.2.3: idle TCP connections are closed after this long. */
  tcpIdleMs?: number;
  /** Open TCP connections at most; more are closed at once (RFC 7766 §10). Default 1024. */
  maxTcpConnections?: number;
  /** Queries in progress per TCP connection before it stops reading (backpressure). Default 64. */
  maxTcpPipeline?: number;
  onError?: (err: unknown) => void;
}

export async function startDnsServer(
  opts: DnsServerOptions,
  handler: DnsHandler,
): Promise<DnsServer> {
  const onError = opts.onError ?? ((err) => console.error("dns:", err));
  for (let attempt = 0; ; attempt++) {
    const udp = await bindUdp(opts.host, opts.port);
    const port = udp.address().port;
    try {
      const tcp = await listenTcp(opts.host, port, handler, {
        idleMs: opts.tcpIdleMs ?? 10_000,
        maxConnections: opts.maxTcpConnections ?? 1024,
        maxPipeline: opts.maxTcpPipeline ?? 64,
        onError,
      });
      serveUdp(udp, handler, onError);
      return {
        host: opts.host,
        port,
        close: () =>
          new Promise<void>((resolve) => {
            udp.close();
            for (const s of tcp.sockets) s.destroy();
            tcp.server.close(() => resolve());
          }),
      };
    } catch (err) {
      udp.close();
      // With port 0 the TCP side of a free UDP port may be taken: try another.
      if (opts.port !== 0 || attempt > 10) throw err;
    }
  }
}

/**
 * The server socket's address lookup: a reply goes to the address a datagram
 * came from, always an IP literal, answered at once. Node's default lookup
 * answers a literal too, but a tick later (dns.lookup's process.nextTick):
 * one deferred callback per reply, a visible share of a cache hit's cost.
 */
const literalLookup = (
  hostname: string,
  options: dns.LookupOneOptions,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void => {
  const family = net.isIP(hostname);
  if (family !== 0) callback(null, hostname, family);
  else dns.lookup(hostname, options, callback);
};

function bindUdp(host: string, port: number): Promise<dgram.Socket> {
  const sock = dgram.createSocket({
    type: net.isIPv6(host) ? "udp6" : "udp4",
    lookup: literalLookup,
  });
  return new Promise((resolve, reject) => {
    sock.once("error", reject);
    sock.bind(port, host, () => {
      sock.off("error", reject);
      resolve(sock);
    });
  });
}

function serveUdp(sock: dgram.Socket, handler: DnsHandler, onError: (e: unknown) => void): void {
  sock.on("error", onError);
  sock.on("message", (msg, rinfo) => {
    const info: QueryInfo = { transport: "udp", address: rinfo.address, port: rinfo.port };
    try {
      const result = handler(msg, info);
      // A closure only for answers that wait: a synchronous answer (a cache hit)
      // allocates none, which shows at tens of thousands of queries per second.
      if (result instanceof Promise)
        result.then((r) => sendUdp(sock, r, rinfo.port, rinfo.address), onError);
      else sendUdp(sock, result, rinfo.port, rinfo.address);
    } catch (err) {
      onError(err);
    }
  });
}

function sendUdp(sock: dgram.Socket, reply: DnsReply, port: number, address: string): void {
  const out = Array.isArray(reply) ? reply[0] : (reply as Buffer | undefined);
  if (out) sock.send(out, port, address);
}

interface TcpLimits {
  idleMs: number;
  maxConnections: number;
  maxPipeline: number;
  onError: (e: unknown) => void;
}

function listenTcp(
  host: string,
  port: number,
  handler: DnsHandler,
  limits: TcpLimits,
): Promise<{ server: net.Server; sockets: Set<net.Socket> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    if (sockets.size >= limits.maxConnections) {
      sock.destroy();
      return;
    }
    sockets.add(sock);
    sock.setTimeout(limits.idleMs, () => sock.destroy());
    sock.on("close", () => sockets.delete(sock));
    sock.on("error", () => sock.destroy());
    const info: QueryInfo = {
      transport: "tcp",
      address: sock.remoteAddress ?? "",
      port: sock.remotePort ?? 0,
    };
    let pending = Buffer.alloc(0);
    let inFlight = 0;
    const write = (reply: DnsReply) => {
      inFlight--;
      const messages = Array.isArray(reply) ? reply : reply ? [reply as Buffer] : [];
      for (const out of messages) {
        if (sock.destroyed) break;
        const frame = Buffer.allocUnsafe(2 + out.length);
        frame.writeUInt16BE(out.length, 0);
        out.copy(frame, 2);
        sock.write(frame);
      }
      serve();
    };
    // Takes queries off the buffer while fewer than maxPipeline are open, and stops
    // reading the socket while that limit holds or answers wait for a slow reader.
    const serve = () => {
      while (inFlight < limits.maxPipeline && pending.length >= 2) {
        const len = pending.readUInt16BE(0);
        if (pending.length < 2 + len) break;
        const msg = Buffer.from(pending.subarray(2, 2 + len));
        pending = pending.subarray(2 + len);
        inFlight++;
        try {
          const result = handler(msg, info);
          if (result instanceof Promise) {
            result.then(write, (err) => {
              limits.onError(err);
              write(undefined);
            });
          } else write(result);
        } catch (err) {
          limits.onError(err);
          write(undefined);
        }
      }
      const busy = inFlight >= limits.maxPipeline || sock.writableNeedDrain;
      if (busy && !sock.isPaused()) sock.pause();
      else if (!busy && sock.isPaused()) sock.resume();
    };
    sock.on("drain", serve);
    sock.on("data", (chunk) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      serve();
    });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve({ server, sockets });
    });
  });
}

/** Sends one query over UDP and waits for the reply (a client for tests and upstream use). */
export function queryUdp(
  host: string,
  port: number,
  msg: Buffer,
  timeoutMs = 2000,
): Promise<Buffer> {
  const sock = dgram.createSocket(net.isIPv6(host) ? "udp6" : "udp4");
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sock.close();
      reject(new Error(`no DNS reply from ${host}:${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.on("message", (reply) => {
      clearTimeout(timer);
      sock.close();
      resolve(reply);
    });
    sock.on("error", (err) => {
      clearTimeout(timer);
      sock.close();
      reject(err);
    });
    sock.send(msg, port, host);
  });
}

/** Sends one query over TCP and waits for the reply. */
export function queryTcp(
  host: string,
  port: number,
  msg: Buffer,
  timeoutMs = 2000,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, host);
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no DNS reply over TCP from ${host}:${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.on("connect", () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(msg.length, 0);
      sock.write(Buffer.concat([len, msg]));
    });
    sock.on("data", (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        clearTimeout(timer);
        sock.destroy();
        resolve(buf.subarray(2, 2 + buf.readUInt16BE(0)));
      }
    });
    sock.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
