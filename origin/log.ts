/**
 * The origin's structured log lines about changes: each commit, each purge
 * an operator asked for, and each node's receipt, all with the change id
 * (core/log.ts). Hooks on the store and on the receipts' public methods.
 */
import type { Logger } from "../core/log.ts";
import type { Receipts } from "./receipts.ts";
import type { Store } from "./store.ts";

export function logChanges(store: Store, receipts: Receipts, logger: Logger): void {
  store.onCommit((c) =>
    logger.info({ changeId: c.changeId, zone: c.zone, serial: c.serial, op: c.op }, "committed"),
  );
  /** zone\tserial -> change id, for acks that name a serial; bounded like the receipts. */
  const ids = new Map<string, string>();
  const track = receipts.track.bind(receipts);
  receipts.track = (change) => {
    if (change.explicit) {
      logger.info({ changeId: change.changeId, zone: change.zone }, "purge");
    } else {
      ids.set(`${change.zone}\t${change.serial}`, change.changeId);
      if (ids.size > 10_000) ids.delete(ids.keys().next().value!);
    }
    track(change);
  };
  const ack = receipts.ack.bind(receipts);
  receipts.ack = (nodeId, zone, serial, at) => {
    const ok = ack(nodeId, zone, serial, at);
    const changeId = ids.get(`${zone}\t${serial}`);
    // Not `{ ...(changeId && { changeId }), from, ... }`: a literal that starts
    // with a spread and adds fields is V8's slow path on Node 20 (core/objects.ts).
    if (ok)
      logger.info(
        changeId ? { changeId, from: nodeId, zone, serial } : { from: nodeId, zone, serial },
        "receipt",
      );
    return ok;
  };
  const ackChange = receipts.ackChange.bind(receipts);
  receipts.ackChange = (nodeId, changeId, at) => {
    const ok = ackChange(nodeId, changeId, at);
    if (ok) logger.info({ changeId, from: nodeId }, "receipt");
    return ok;
  };
}
