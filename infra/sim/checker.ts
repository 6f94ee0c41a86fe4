/**
 * The simulator's invariants, checked as the run goes (TigerBeetle's state
 * checker is the model): the first violation stops the run, and the report
 * names the rule, the node, the virtual instant and the seed that replays it.
 *
 * - monotonic reads: after a node served version N it never serves an older
 *   one, except a documented stale answer (RFC 8767 serve-stale, RFC 5861
 *   stale-if-error), which the engines mark;
 * - true receipts: once a node acked serial S it never serves a version
 *   older than the name's version at S (same exception);
 * - convergence within the bound: checked per change by the run (run.ts),
 *   against infra/predict.ts.
 *
 * Node restarts (restart.ts): a node's history is kept across a restart;
 * both rules hold for the node, not for one incarnation of it. The reasons:
 * the origin's receipts keep what the node acked before the crash (a
 * registry entry survives re-registration), so serving an older version
 * afterwards makes that receipt false; and a client of the node cannot tell
 * a restart from a cache miss. A restarted node lost its cache but not the
 * right answer: it fills from upstream, and its NodeSync raises its version
 * floor to the zone's serial at start (core/sync.ts `floorAtStart`), so a
 * parent still holding an older version is refused (X-Min-Serial) and the
 * fill goes around it to the origin. A stale parent is therefore no excuse;
 * only a marked stale answer is (the same exception as above: an origin
 * that cannot be reached leaves stale-if-error, which the engines mark).
 * Without that floor the fuzz found a restarted node under a partitioned
 * parent serving the version before the one it had acked
 * (test/infra/simulate-fuzz-restart.test.ts).
 */

export type Rule = "monotonic-reads" | "true-receipts" | "bound";

export interface Violation {
  rule: Rule;
  nodeId: string;
  /** Virtual ms since the run's start. */
  atMs: number;
  /** The counterexample, in words. */
  detail: string;
}

export class Checker {
  /** Per node: highest version served (non-stale), and when. */
  private readonly maxServed: Float64Array;
  private readonly maxServedAt: Float64Array;
  /** Per node: highest serial acked, the name's version at it, and when. */
  private readonly ackedSerial: Float64Array;
  private readonly ackedVersion: Float64Array;
  private readonly ackedAt: Float64Array;
  /** Serials of the commits that changed the name, ascending. */
  private readonly versions: number[] = [];
  violation: Violation | undefined;

  constructor(
    size: number,
    private readonly idOf: (index: number) => string,
    private readonly now: () => number,
  ) {
    this.maxServed = new Float64Array(size).fill(-1);
    this.maxServedAt = new Float64Array(size);
    this.ackedSerial = new Float64Array(size).fill(-1);
    this.ackedVersion = new Float64Array(size).fill(-1);
    this.ackedAt = new Float64Array(size);
  }

  /** A commit at `serial` changed the name. */
  changed(serial: number): void {
    this.versions.push(serial);
  }

  served(index: number, version: number | undefined, stale: boolean): void {
    if (version === undefined || index < 0 || stale) return;
    const prior = this.maxServed[index]!;
    if (version < prior) {
      this.fail(
        "monotonic-reads",
        index,
        `served version ${version} after serving version ${prior} at ${fmt(this.maxServedAt[index]!)}`,
      );
    } else if (version > prior) {
      this.maxServed[index] = version;
      this.maxServedAt[index] = this.now();
    }
    if (version < this.ackedVersion[index]!) {
      this.fail(
        "true-receipts",
        index,
        `served version ${version} after acking serial ${this.ackedSerial[index]} (version ${this.ackedVersion[index]}) at ${fmt(this.ackedAt[index]!)}`,
      );
    }
  }

  acked(index: number, serial: number): void {
    if (serial > this.ackedSerial[index]!) {
      this.ackedSerial[index] = serial;
      this.ackedVersion[index] = this.versionAt(serial);
      this.ackedAt[index] = this.now();
    }
  }

  /** A violation found outside the answer stream (the bound). */
  fail(rule: Rule, index: number, detail: string): void {
    this.violation ??= { rule, nodeId: this.idOf(index), atMs: this.now(), detail };
  }

  /** The name's version at zone serial `serial`: the last change at or before it. */
  private versionAt(serial: number): number {
    let v = -1;
    for (const s of this.versions) {
      if (s > serial) break;
      v = s;
    }
    return v;
  }
}

function fmt(ms: number): string {
  return `${ms.toFixed(3)} ms`;
}
