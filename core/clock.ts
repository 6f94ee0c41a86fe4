/**
 * The Clock: the only source of time and timers for policy code.
 * `RealClock` wraps the platform; `VirtualClock` moves only when a test or the
 * simulator advances it, firing due timers in time order.
 */

export type TimerId = number;

export interface Clock {
  /** Milliseconds since the epoch (virtual or real). */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerId;
  clearTimeout(id: TimerId): void;
}

/** Node's longest timer (2^31 - 1 ms); a longer one would fire after 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class RealClock implements Clock {
  private next = 1;
  private readonly timers = new Map<TimerId, ReturnType<typeof setTimeout>>();

  /**
   * `keepAlive`: the timers hold the process open. A server's timers must not
   * (its sockets do), but a command whose only pending work is a wait between
   * two probes must, or Node exits mid-await (code 13, nothing printed).
   */
  constructor(private readonly opts: { keepAlive?: boolean } = {}) {}

  now(): number {
    return Date.now();
  }

  setTimeout(fn: () => void, ms: number): TimerId {
    const id = this.next++;
    // Node counts a delay from the event loop's cached time, which lags the
    // moment of this call by however long the current turn has run, and
    // compares whole milliseconds: a timer can fire a millisecond or more
    // early. A modelled link delay must never be shorter than the one drawn
    // (test/e2e/delay-wire.test.ts), so an early timer is armed again for
    // what is left.
    const due = performance.now() + Math.max(0, ms);
    const arm = (wait: number) => {
      const handle = setTimeout(
        () => {
          const left = due - performance.now();
          if (left > 0) return arm(left);
          this.timers.delete(id);
          fn();
        },
        Math.min(wait, MAX_TIMER_MS),
      );
      // A server's timers must not keep its process alive on their own.
      if (!this.opts.keepAlive) (handle as { unref?: () => void }).unref?.();
      this.timers.set(id, handle);
    };
    arm(Math.max(0, ms));
    return id;
  }

  clearTimeout(id: TimerId): void {
    const handle = this.timers.get(id);
    if (handle !== undefined) clearTimeout(handle);
    this.timers.delete(id);
  }
}

interface VirtualTimer {
  id: TimerId;
  at: number;
  fn: () => void;
}

/** A min-heap of timers ordered by (at, id), so equal deadlines fire in creation order. */
class TimerHeap {
  private readonly items: VirtualTimer[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): VirtualTimer | undefined {
    return this.items[0];
  }

  push(t: VirtualTimer): void {
    const a = this.items;
    a.push(t);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }

  pop(): VirtualTimer | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(a[l]!, a[m]!)) m = l;
        if (r < a.length && this.less(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }

  private less(x: VirtualTimer, y: VirtualTimer): boolean {
    return x.at < y.at || (x.at === y.at && x.id < y.id);
  }
}

export class VirtualClock implements Clock {
  private t: number;
  private next = 1;
  private readonly heap = new TimerHeap();
  /** Ids of timers scheduled and neither fired nor cleared. */
  private readonly live = new Set<TimerId>();

  constructor(start = 0) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): TimerId {
    const id = this.next++;
    this.heap.push({ id, at: this.t + Math.max(0, ms), fn });
    this.live.add(id);
    return id;
  }

  clearTimeout(id: TimerId): void {
    this.live.delete(id);
  }

  /** Number of timers still scheduled. */
  get pending(): number {
    return this.live.size;
  }

  /** Deadline of the next live timer, if any. */
  nextAt(): number | undefined {
    this.dropCancelled();
    return this.heap.peek()?.at;
  }

  /**
   * Fires, in order, every timer due within `ms`, synchronously, then sets the
   * time to now + ms. For policy code that awaits promises, use `advance`.
   */
  advanceSync(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const next = this.popDue(end);
      if (!next) break;
      this.t = next.at;
      next.fn();
    }
    this.t = end;
  }

  /**
   * Advances time by `ms`, firing due timers in order and letting promise
   * callbacks settle after each one, so async work chained on a timer runs at
   * the virtual time it belongs to.
   */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    await flushMicrotasks();
    for (;;) {
      const next = this.popDue(end);
      if (!next) break;
      this.t = next.at;
      next.fn();
      await flushMicrotasks();
    }
    this.t = end;
    await flushMicrotasks();
  }

  /** Runs timers until none is left or `limitMs` of virtual time has passed. */
  async runAll(limitMs = 365 * 86_400_000): Promise<void> {
    const end = this.t + limitMs;
    for (;;) {
      const at = this.nextAt();
      if (at === undefined || at > end) break;
      await this.advance(at - this.t);
    }
  }

  private popDue(end: number): VirtualTimer | undefined {
    this.dropCancelled();
    const top = this.heap.peek();
    if (!top || top.at > end) return undefined;
    this.live.delete(top.id);
    return this.heap.pop();
  }

  private dropCancelled(): void {
    for (;;) {
      const top = this.heap.peek();
      if (!top || this.live.has(top.id)) return;
      this.heap.pop();
    }
  }
}

/** Lets pending promise callbacks run; several turns cover short await chains. */
export async function flushMicrotasks(turns = 20): Promise<void> {
  for (let i = 0; i < turns; i++) await Promise.resolve();
}

/** A promise that resolves after `ms` on the given clock. */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimeout(resolve, ms));
}
