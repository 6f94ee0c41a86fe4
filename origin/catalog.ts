/**
 * A catalog zone (RFC 9432, schema version 2) of the origin's zones, kept as
 * an ordinary zone of the store: every change to it is journaled, gets a
 * serial, is NOTIFYed and sent by IXFR like any other, so a secondary that
 * consumes the catalog (Knot `catalog-role: interpret`, BIND `catalog-zones`)
 * adds and drops member zones without being reconfigured.
 *
 *   <catalog>                   SOA, NS invalid.     (§4: the NS is a placeholder)
 *   version.<catalog>           TXT "2"              (§4.2.1)
 *   <id>.zones.<catalog>        PTR <member>.        (§4.2.2; id stable per member name)
 */
import { createHash } from "node:crypto";
import { isInZone } from "../core/names.ts";
import type { RRsetOp } from "./plan.ts";
import type { CommittedChange, Store } from "./store.ts";

/** §4.1: the unique label of a member: stable for a name, so re-adding it keeps its id. */
export function memberId(zone: string): string {
  return createHash("sha256").update(zone).digest("hex").slice(0, 16);
}

export class Catalog {
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Store,
    readonly name: string,
    private readonly log: (m: string) => void,
  ) {}

  /** Creates the catalog zone when absent and brings its member list up to date. */
  async start(): Promise<void> {
    const existing = this.store.findState(this.name);
    if (existing?.zone.name !== this.name) {
      await this.store.createZone({
        name: this.name,
        config: { ttl: 0 },
        soa: { mname: "invalid", rname: "invalid", refresh: 3600, retry: 600, minimum: 0 },
        rrsets: [
          { name: "@", type: "NS", ttl: 0, data: ["invalid."] },
          { name: "version", type: "TXT", ttl: 0, data: [["2"]] },
        ],
      });
      this.log(`catalog: created catalog zone ${this.name} (RFC 9432 version 2)`);
    }
    await this.reconcile();
  }

  /** store.onCommit listener: a zone created or deleted changes the member list. */
  readonly onCommit = (change: CommittedChange): void => {
    if (change.zone === this.name || change.op === "update") return;
    this.chain = this.chain
      .then(() => this.reconcile())
      .catch((err: Error) => this.log(`catalog: ${this.name} not updated: ${err.message}`));
  };

  /** Waits for pending member updates (tests, shutdown). */
  settled(): Promise<void> {
    return this.chain;
  }

  private async reconcile(): Promise<void> {
    const state = this.store.findState(this.name);
    if (state?.zone.name !== this.name) return;
    const suffix = `zones.${this.name}`;
    const want = new Map(
      this.store
        .zones()
        .map((s) => s.zone.name)
        .filter((z) => z !== this.name && !isInZone(z, this.name))
        .map((z) => [`${memberId(z)}.${suffix}`, z]),
    );
    const ops: RRsetOp[] = [];
    for (const set of state.zone.all()) {
      if (set.type !== "PTR" || !set.name.endsWith(`.${suffix}`)) continue;
      const member = want.get(set.name);
      if (member && (set.data as string[])[0]?.replace(/\.$/, "") === member) want.delete(set.name);
      else ops.push({ name: `${set.name}.`, type: "PTR", changetype: "DELETE" });
    }
    for (const [owner, zone] of want)
      ops.push({
        name: `${owner}.`,
        type: "PTR",
        ttl: 0,
        changetype: "REPLACE",
        data: [`${zone}.`],
      });
    if (ops.length === 0) return;
    const r = await this.store.update(this.name, ops);
    this.log(
      `catalog: ${this.name} at serial ${r.serial}: ${want.size} added, ${ops.length - want.size} removed`,
    );
  }
}
