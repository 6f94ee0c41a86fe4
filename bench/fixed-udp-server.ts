/**
 * The ceiling for a Node UDP DNS server: answers every datagram with one fixed
 * packet (an A answer for www.example.test), only the query's ID copied in so
 * load generators can match replies. No parsing, no cache, no policy.
 * Usage: npx tsx bench/fixed-udp-server.ts [port=0]; prints `ready {"dns":"127.0.0.1:P"}`.
 */
import dgram from "node:dgram";
import * as packet from "dns-packet";

const fixed = packet.encode({
  type: "response",
  id: 0,
  flags: packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE,
  questions: [{ name: "www.example.test", type: "A", class: "IN" }],
  answers: [{ name: "www.example.test", type: "A", class: "IN", ttl: 60, data: "192.0.2.10" }],
});

const sock = dgram.createSocket("udp4");
sock.on("message", (msg, rinfo) => {
  if (msg.length < 2) return;
  const out = Buffer.from(fixed);
  out[0] = msg[0]!;
  out[1] = msg[1]!;
  sock.send(out, rinfo.port, rinfo.address);
});
sock.bind(Number(process.argv[2] ?? 0), "127.0.0.1", () => {
  console.log(`ready ${JSON.stringify({ dns: `127.0.0.1:${sock.address().port}` })}`);
});
process.once("SIGTERM", () => sock.close(() => process.exit(0)));
