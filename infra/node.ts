/**
 * `propagate node --topology F --id X`: runs one node of a topology in this
 * process, joined to the fabric (the bus named by the topology or --bus, the
 * origin's registry, change feed and receipts). The parent's address comes
 * from the origin's registry, so nodes may start on any port.
 */
import { readFile } from "node:fs/promises";
import { RealClock } from "../core/clock.ts";
import {
  flagHelp,
  LOG_LEVEL_FLAG,
  logging,
  parseFlags,
  printReady,
  serveUntilSignal,
  UsageError,
} from "../core/flags.ts";
import { createBus } from "./bus.ts";
import {
  type NodeContext,
  type RunningNode,
  startEdgeNode,
  startOriginNode,
  startResolverNode,
} from "./nodes.ts";
import { loadTopology } from "./topology.ts";
import { DEFAULT_TOPOLOGY } from "./up.ts";

const FLAGS = {
  topology: { type: "string", help: "topology file (default infra/topologies/default.json)" },
  id: { type: "string", help: "id of the node to run" },
  bus: { type: "string", help: 'override the bus: "off" or redis://host:port' },
  data: { type: "string", help: "origin only: data directory (default: the topology's)" },
  origin: {
    type: "string",
    help: "edges and resolvers: origin URL (default: the topology's origin.http)",
  },
  "token-file": {
    type: "string",
    help: "edges and resolvers: file holding this node's own token, issued by POST /v1/nodes/{id}/token (default $PROPAGATE_NODE_TOKEN)",
  },
  token: {
    type: "string",
    help: "refused: a token on the command line shows in ps; use --token-file or $PROPAGATE_NODE_TOKEN",
  },
  "log-level": LOG_LEVEL_FLAG,
  help: { type: "boolean", help: "show this help" },
} as const;

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url).catch((err: Error) => {
    throw new Error(
      `cannot reach the origin at ${url} (${err.message}); start it first, or pass --origin`,
    );
  });
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

export async function main(argv: string[]): Promise<void> {
  const { values: v } = parseFlags(argv, FLAGS, "node");
  if (v.help) {
    console.log(flagHelp(FLAGS, "node"));
    return;
  }
  if (!v.id) throw new UsageError(`--id is required\n\n${flagHelp(FLAGS, "node")}`);
  const t = await loadTopology(v.topology ?? DEFAULT_TOPOLOGY);
  const ids = [t.origin.id, ...t.edges.map((e) => e.id), ...t.resolvers.map((r) => r.id)];
  if (!ids.includes(v.id)) {
    throw new UsageError(`node "${v.id}" is not in the topology; its nodes are ${ids.join(", ")}`);
  }
  if (v.bus) t.bus = v.bus;
  if (t.bus !== "memory" && t.bus !== "off" && !/^rediss?(\+[a-z]+)?:\/\//.test(t.bus)) {
    throw new UsageError(`--bus must be "off" or a redis:// URL, got "${t.bus}"`);
  }
  if (t.bus === "memory") {
    throw new UsageError(
      'a node in its own process needs a shared bus: --bus redis://HOST:PORT (or "off")',
    );
  }
  const clock = new RealClock();
  const bus = await createBus(t.bus, clock);
  const ctx: NodeContext = {
    topology: t,
    clock,
    bus,
    startMs: clock.now(),
    ...logging(v["log-level"], v.id),
  };

  let started: { node: RunningNode; token?: string; nodeToken?: string };
  try {
    started = await startNode(ctx, v);
  } catch (err) {
    await bus?.close();
    throw err;
  }
  const { node, token, nodeToken } = started;
  printReady({
    id: node.id,
    kind: node.kind,
    tier: node.tier,
    parent: node.parent ?? "",
    address: node.address,
    extra: JSON.stringify(node.extra),
    link: node.link,
    ...(token !== undefined && { token }),
    ...(nodeToken !== undefined && { nodeToken }),
  });
  await serveUntilSignal(`node ${node.id}`, async () => {
    await node.close();
    await bus?.close();
  });
}

type Values = ReturnType<typeof parseFlags<typeof FLAGS>>["values"];

/** The node's own token: from --token-file or the environment, never from argv (ps shows argv). */
async function nodeToken(v: Values): Promise<string> {
  if (v.token !== undefined) {
    throw new UsageError(
      "--token is refused: a secret on the command line is visible to every user in ps; put it in a file (--token-file) or in PROPAGATE_NODE_TOKEN",
    );
  }
  const token = v["token-file"]
    ? (
        await readFile(v["token-file"], "utf8").catch((err: Error) => {
          throw new UsageError(`--token-file ${v["token-file"]}: ${err.message}`);
        })
      ).trim()
    : process.env.PROPAGATE_NODE_TOKEN;
  if (!token) {
    throw new UsageError(
      "--token-file (or PROPAGATE_NODE_TOKEN) is required to join the origin: this node's own token, issued by POST /v1/nodes/{id}/token",
    );
  }
  return token;
}

async function startNode(
  ctx: NodeContext,
  v: Values,
): Promise<{ node: RunningNode; token?: string; nodeToken?: string }> {
  const t = ctx.topology;
  if (v.id === t.origin.id) {
    const started = await startOriginNode(ctx, v.data ?? t.origin.data);
    return { node: started.node, token: started.writeToken, nodeToken: started.origin.token };
  }
  const edge = t.edges.find((e) => e.id === v.id);
  const resolver = t.resolvers.find((r) => r.id === v.id);
  if (!edge && !resolver) throw new UsageError(`node "${v.id}" is not in the topology`);
  const url = v.origin ?? `http://${t.origin.http}`;
  const originToken = await nodeToken(v);
  const parentId = edge?.parent ?? resolver!.upstream;
  const { nodes } = await getJson<{ nodes: { id: string; address: string }[] }>(`${url}/v1/nodes`);
  const parentUrl = parentId === t.origin.id ? url : nodes.find((n) => n.id === parentId)?.address;
  if (parentUrl === undefined)
    throw new Error(`parent "${parentId}" is not registered with ${url} yet; start it first`);
  const { zones } = await getJson<{ zones: { zone: string }[] }>(`${url}/v1/zones`);
  const join = { ...ctx, origin: { url, token: originToken }, parentUrl };
  const node = edge
    ? await startEdgeNode(join, edge)
    : await startResolverNode(
        join,
        resolver!,
        zones.map((z) => z.zone),
      );
  return { node };
}
