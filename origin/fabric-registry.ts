/**
 * The node registry, journaled like zone changes: every registration and
 * deregistration is appended to DATA/registry/ (a journal plus snapshots, the
 * same DataDir as the zones) and fsynced before it is answered. After a
 * restart the origin knows its nodes at once, so receipts of new changes
 * name every node, not only those that happened to register again. Leases
 * are not journaled (a renewal per node every few seconds would dominate the
 * journal): every recovered node starts a fresh lease, and one that does not
 * renew within it turns LOST.
 */
import { join } from "node:path";
import type { NodeInfo, Receipts } from "./receipts.ts";
import { DataDir } from "./snapshot.ts";

type RegistryRecord = { op: "register"; node: NodeInfo } | { op: "deregister"; id: string };
interface RegistrySnapshot {
  nodes: NodeInfo[];
}

export class Registry {
  private constructor(
    private readonly data: DataDir<RegistryRecord, RegistrySnapshot>,
    private readonly receipts: Receipts,
  ) {}

  /** Opens DATA/registry and registers every node it holds with `receipts`. */
  static async open(
    dataDir: string,
    receipts: Receipts,
    warn: (message: string) => void,
  ): Promise<Registry> {
    const { data, recovered } = await DataDir.open<RegistryRecord, RegistrySnapshot>(
      join(dataDir, "registry"),
      { snapshotEvery: 1000, warn },
    );
    for (const node of recovered.snapshot?.nodes ?? []) receipts.register(node);
    for (const r of recovered.records) {
      if (r.op === "register") receipts.register(r.node);
      else receipts.deregister(r.id);
    }
    data.snapshotWith(() => ({ nodes: receipts.nodes() }));
    return new Registry(data, receipts);
  }

  /** Registers (or updates) a node once the record is durable. */
  register(node: NodeInfo): Promise<void> {
    const record: NodeInfo = {
      id: node.id,
      tier: node.tier,
      address: node.address,
      ...(node.parent !== undefined && { parent: node.parent }),
    };
    return this.data.append({ op: "register", node: record }, () => this.receipts.register(record));
  }

  /** Forgets a node once the record is durable; false when it was not registered. */
  async deregister(id: string): Promise<boolean> {
    if (!this.receipts.node(id)) return false;
    await this.data.append({ op: "deregister", id }, () => this.receipts.deregister(id));
    return true;
  }

  close(): Promise<void> {
    return this.data.close();
  }
}
