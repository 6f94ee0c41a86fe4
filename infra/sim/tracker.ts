/**
 * What each node served during one change: the first time it answered with
 * the new version (time-to-fresh), and how many answers carried an older one.
 */
import { serialLt } from "../../core/serial.ts";

export class Tracker {
  /** Per node, ms from t0 to its first answer with the new version; NaN until then. */
  firstNew: Float64Array;
  /** Per node, answers with an older version since t0 (all changes so far). */
  readonly stale: Uint32Array;
  /** Answers seen by the tracker, fresh or not (a measure of simulated work). */
  answers = 0;
  failures = 0;
  lastFailure: unknown;
  /** When the last failure happened (virtual ms). */
  lastFailureAt = Number.NaN;
  private serial: number | undefined;
  private t0 = 0;
  private open = 0;

  constructor(
    private readonly size: number,
    private readonly now: () => number,
  ) {
    this.firstNew = new Float64Array(size).fill(Number.NaN);
    this.stale = new Uint32Array(size);
  }

  /** Nodes that have not served the new version yet. */
  get pending(): number {
    return this.open;
  }

  /** Starts tracking a change committed now at `serial`. */
  begin(serial: number): void {
    this.serial = serial;
    this.t0 = this.now();
    this.firstNew = new Float64Array(this.size).fill(Number.NaN);
    this.open = this.size;
  }

  /** Ends the change: returns each node's time-to-fresh (NaN: not fresh within the window). */
  end(): Float64Array {
    this.serial = undefined;
    return this.firstNew;
  }

  isFresh(index: number): boolean {
    return !Number.isNaN(this.firstNew[index]!);
  }

  served(index: number, version: number | undefined): void {
    this.servedTimes(index, version, 1);
  }

  /** `n` answers with `version` in this instant, as `n` calls of `served`. */
  servedTimes(index: number, version: number | undefined, n: number): void {
    this.answers += n;
    if (this.serial === undefined || version === undefined) return;
    if (serialLt(version, this.serial)) {
      this.stale[index]! += n;
    } else if (Number.isNaN(this.firstNew[index]!)) {
      this.firstNew[index] = this.now() - this.t0;
      this.open--;
    }
  }

  /** A query that got no answer (the engines counted and reported why). */
  failed(_index: number, err: unknown): void {
    this.failures++;
    this.lastFailure = err;
    this.lastFailureAt = this.now();
  }
}
