/**
 * Real secondaries (Knot, BIND, NSD...) of the origin's zones. For each one:
 * a NOTIFY (RFC 1996) on every committed change of a zone it serves, through
 * its link's delay model, TSIG-signed when it has a key, retried with
 * exponential backoff until it is answered (bounded); and its receipt: it is a
 * node of tier `secondary`, in sync with a change once the SOA serial it
 * serves is at or past the change's (RFC 1982), asked after each NOTIFY answer
 * and on a timer while it lags. Timers run on the injected clock.
 */
import { randomInt } from "node:crypto";
import dnsPacket from "dns-packet";
import { z } from "zod";
import type { Clock } from "../core/clock.ts";
import { LinkDelay, linkModelSchema } from "../core/delay.ts";
import { queryUdp } from "../core/dns-transport.ts";
import { normaliseName } from "../core/names.ts";
import { hashSeed } from "../core/random.ts";
import { serialGte } from "../core/serial.ts";
import { type KeyLookup, signMessage, type TsigKey } from "../core/tsig.ts";
import { notifyAnswerProblem, notifyMessage } from "./notify.ts";
import type { Receipts } from "./receipts.ts";
import type { CommittedChange, Store } from "./store.ts";

const hostPort = z
  .string()
  .regex(/^(\[[0-9a-f:]+\]|[a-z0-9.-]+):\d{1,5}$/i, "expected HOST:PORT such as 127.0.0.1:5300");

export const secondarySchema = z.strictObject({
  id: z
    .string()
    .regex(
      /^[a-z0-9][a-z0-9_-]{0,62}$/,
      "an id is lower-case letters, digits, '-' or '_' (max 63)",
    ),
  /** Where it answers DNS and takes NOTIFY. */
  dns: hostPort,
  /** Zones it serves; absent: every zone of the origin. */
  zones: z
    .array(
      z.string().transform((s, ctx) => {
        try {
          return normaliseName(s);
        } catch (e) {
          ctx.addIssue({ code: "custom", message: (e as Error).message });
          return z.NEVER;
        }
      }),
    )
    .optional(),
  /** Name of the TSIG key (from --tsig-keys) that signs its NOTIFYs and its transfers. */
  key: z.string().optional(),
  /** The delay model NOTIFYs to it pass through. */
  link: linkModelSchema.optional(),
});
export type SecondarySpec = z.output<typeof secondarySchema>;
export type SecondaryInput = z.input<typeof secondarySchema>;

/** The wire side, injected: a UDP NOTIFY exchange and an SOA query. */
export interface SecondaryTransport {
  /** Sends one datagram and resolves with the answer; rejects on timeout. */
  exchange(host: string, port: number, msg: Buffer): Promise<Buffer>;
  /** The serial the server answers for the zone's SOA; undefined when it does not serve it. */
  soaSerial(host: string, port: number, zone: string): Promise<number | undefined>;
}

/** The real wire: UDP with a 1 s timeout (RFC 1996 §3.6 retransmits on our own timer). */
export const udpTransport: SecondaryTransport = {
  exchange: (host, port, msg) => queryUdp(host, port, msg, 1000),
  soaSerial: async (host, port, zone) => {
    const q = dnsPacket.encode({
      type: "query",
      id: 0x5e5e,
      questions: [{ name: zone, type: "SOA" }],
    });
    const r = dnsPacket.decode(await queryUdp(host, port, q, 1000));
    const soa = r.answers?.find((a) => a.type === "SOA");
    return soa && "data" in soa ? (soa.data as { serial: number }).serial : undefined;
  },
};

export interface SecondariesDeps {
  store: Store;
  receipts: Receipts;
  keys: KeyLookup;
  clock: Clock;
  transport: SecondaryTransport;
  log: (message: string) => void;
  count: (name: string, help: string, labels: string) => void;
  /** The delay model of a secondary's link (the launcher's); default: its own `link`, else none. */
  linkOf?: (spec: SecondarySpec) => LinkDelay | undefined;
  /** NOTIFY sends per change before giving up (RFC 1996 §3.6 retransmits); default 5. */
  notifyAttempts?: number;
  /** First retry after this long, doubling; default 1000 ms. */
  retryMs?: number;
  /** While it lags, its SOA is asked again after this long at most; default 1000 ms. */
  pollMaxMs?: number;
}

interface Tracked {
  spec: SecondarySpec;
  key: TsigKey | undefined;
  link: LinkDelay | undefined;
  /**
   * Per zone: the serial it must reach, the pending SOA check, and when the
   * first NOTIFY it has not caught up with was sent (for the NOTIFY->INSYNC time).
   */
  lag: Map<
    string,
    { target: number; timer?: unknown; delayMs: number; gone?: number; notifiedAt?: number }
  >;
  /** Last serial seen per zone. */
  seen: Map<string, number>;
}

/** SOA checks for a deleted zone before we stop asking whether the secondary dropped it. */
const GONE_CHECKS = 300;

export class Secondaries {
  private readonly all = new Map<string, Tracked>();
  private closed = false;
  /** Told, in seconds, how long a secondary took from a change's NOTIFY to serving it. */
  onInsync: ((seconds: number) => void) | undefined;

  constructor(private readonly deps: SecondariesDeps) {}

  /** Adds (or replaces) a secondary; throws when its key is unknown. */
  add(input: SecondaryInput): SecondarySpec {
    const spec = secondarySchema.parse(input);
    const key =
      spec.key === undefined
        ? undefined
        : this.deps.keys(spec.key.toLowerCase().replace(/\.$/, ""));
    if (spec.key !== undefined && !key)
      throw new Error(
        `secondary ${spec.id}: key "${spec.key}" is not in the TSIG key file (--tsig-keys)`,
      );
    this.remove(spec.id);
    this.all.set(spec.id, {
      spec,
      key,
      link:
        this.deps.linkOf?.(spec) ??
        (spec.link && new LinkDelay(spec.link, hashSeed("secondary", spec.id), this.deps.clock)),
      lag: new Map(),
      seen: new Map(),
    });
    this.deps.receipts.register({
      id: spec.id,
      tier: "secondary",
      address: spec.dns,
      ...(spec.zones && { zones: spec.zones }),
    });
    return spec;
  }

  remove(id: string): boolean {
    const t = this.all.get(id);
    if (!t) return false;
    for (const l of t.lag.values()) if (l.timer) this.deps.clock.clearTimeout(l.timer as never);
    this.all.delete(id);
    this.deps.receipts.deregister(id);
    return true;
  }

  list(): (SecondarySpec & { serials: Record<string, number> })[] {
    return [...this.all.values()].map((t) => ({ ...t.spec, serials: Object.fromEntries(t.seen) }));
  }

  /**
   * Per secondary and zone it answered for: the zone's serial minus the serial
   * it served last, as an RFC 1982 distance (negative if it is ahead of us).
   */
  serialLags(): { secondary: string; zone: string; lag: number }[] {
    const out: { secondary: string; zone: string; lag: number }[] = [];
    for (const t of this.all.values())
      for (const [zone, seen] of t.seen) {
        const state = this.deps.store.findState(zone);
        if (state?.zone.name !== zone) continue;
        const d = (state.zone.serial - seen + 2 ** 32) % 2 ** 32;
        out.push({ secondary: t.spec.id, zone, lag: d < 2 ** 31 ? d : d - 2 ** 32 });
      }
    return out;
  }

  /** The key a secondary uses, by its address, for transfers (its key may transfer its zones). */
  allowedKeys(zone: string): string[] {
    return [...this.all.values()]
      .filter((t) => t.key && serves(t.spec, zone))
      .map((t) => t.key!.name);
  }

  /** store.onCommit listener: NOTIFY every secondary of the zone. */
  readonly onCommit = (change: CommittedChange): void => {
    if (this.closed) return;
    for (const t of this.all.values()) {
      if (!serves(t.spec, change.zone)) continue;
      if (change.op === "delete") {
        // No NOTIFY for a zone that is gone: in sync once the secondary stops serving it
        // (a catalog consumer drops it, RFC 9432 §5.4); one configured by hand keeps it.
        t.lag.set(change.zone, { target: change.serial, delayMs: 0, gone: GONE_CHECKS });
        this.checkSoon(t, change.zone, 10);
        continue;
      }
      const lag = t.lag.get(change.zone);
      t.lag.set(change.zone, {
        ...(lag ?? { delayMs: 0 }),
        target: change.serial,
        notifiedAt: lag?.notifiedAt ?? this.deps.clock.now(),
      });
      this.sendNotify(t, change.zone, change.serial, 1);
    }
  };

  /** A transfer reached a client: check its secondaries soon instead of on the slow timer. */
  transferred(zone: string): void {
    for (const t of this.all.values()) if (t.lag.has(zone)) this.checkSoon(t, zone, 20);
  }

  close(): void {
    this.closed = true;
    for (const t of this.all.values())
      for (const l of t.lag.values()) if (l.timer) this.deps.clock.clearTimeout(l.timer as never);
  }

  private sendNotify(t: Tracked, zone: string, serial: number, attempt: number): void {
    const { clock, count, log } = this.deps;
    const attempts = this.deps.notifyAttempts ?? 5;
    const retry = () => {
      if (this.closed || this.all.get(t.spec.id) !== t) return;
      const lag = t.lag.get(zone);
      // A newer change sent its own NOTIFY; this one is superseded.
      if (!lag || lag.target !== serial) return;
      if (attempt >= attempts) {
        count(
          "origin_notify_out_total",
          "NOTIFY sent to secondaries, by result",
          `result="gave-up"`,
        );
        log(
          `notify: ${t.spec.id} never answered the NOTIFY for ${zone} serial ${serial} after ${attempts} attempts; its SOA is still checked every ${this.deps.pollMaxMs ?? 1000} ms`,
        );
        this.checkSoon(t, zone, this.deps.pollMaxMs ?? 1000);
        return;
      }
      this.sendNotify(t, zone, serial, attempt + 1);
    };
    const backoff = (this.deps.retryMs ?? 1000) * 2 ** (attempt - 1);
    const sample = t.link?.sample() ?? { dropped: false as const, delayMs: 0 };
    if (sample.dropped) {
      // Lost on the link: like a datagram that never arrives, only the retry timer fires.
      count(
        "origin_notify_out_total",
        "NOTIFY sent to secondaries, by result",
        `result="lost-${sample.reason}"`,
      );
      clock.setTimeout(retry, backoff);
      this.checkSoon(t, zone, this.deps.pollMaxMs ?? 1000);
      return;
    }
    clock.setTimeout(() => {
      if (this.closed) return;
      const state = this.deps.store.findState(zone);
      if (!state || state.zone.name !== zone) return;
      const id = randomInt(0, 0x10000);
      let msg = notifyMessage(id, zone, state.zone.soa);
      let signed: { key: TsigKey; mac: Buffer; now: number } | undefined;
      if (t.key) {
        const now = clock.now() / 1000;
        const s = signMessage(msg, t.key, { now });
        msg = s.wire;
        signed = { key: t.key, mac: s.mac, now };
      }
      const { host, port } = splitHostPort(t.spec.dns);
      const sentAt = clock.now();
      this.deps.transport.exchange(host, port, msg).then(
        (reply) => {
          const problem = notifyAnswerProblem(
            reply,
            id,
            signed && { ...signed, now: clock.now() / 1000 },
          );
          if (problem) {
            count(
              "origin_notify_out_total",
              "NOTIFY sent to secondaries, by result",
              `result="bad-answer"`,
            );
            log(`notify: ${t.spec.id} (${t.spec.dns}) answered the NOTIFY for ${zone}: ${problem}`);
            clock.setTimeout(retry, backoff);
            return;
          }
          count(
            "origin_notify_out_total",
            "NOTIFY sent to secondaries, by result",
            `result="answered"`,
          );
          log(
            `notify: ${t.spec.id} answered the NOTIFY for ${zone} serial ${serial} in ${clock.now() - sentAt} ms`,
          );
          this.checkSoon(t, zone, 10);
        },
        (err: Error) => {
          count(
            "origin_notify_out_total",
            "NOTIFY sent to secondaries, by result",
            `result="timeout"`,
          );
          log(
            `notify: no answer from ${t.spec.id} (${t.spec.dns}) to the NOTIFY for ${zone} (attempt ${attempt}): ${err.message}`,
          );
          clock.setTimeout(retry, backoff);
        },
      );
    }, sample.delayMs);
  }

  /** Asks the secondary's SOA after `delayMs` (unless a check is due sooner), until it is in sync. */
  private checkSoon(t: Tracked, zone: string, delayMs: number): void {
    const lag = t.lag.get(zone);
    if (!lag || this.closed) return;
    if (lag.timer) this.deps.clock.clearTimeout(lag.timer as never);
    lag.delayMs = delayMs;
    lag.timer = this.deps.clock.setTimeout(() => {
      lag.timer = undefined;
      void this.check(t, zone);
    }, delayMs);
  }

  private async check(t: Tracked, zone: string): Promise<void> {
    const { host, port } = splitHostPort(t.spec.dns);
    const serial = await this.deps.transport.soaSerial(host, port, zone).catch(() => undefined);
    if (this.closed || this.all.get(t.spec.id) !== t) return;
    const lag = t.lag.get(zone);
    if (lag?.gone !== undefined) {
      if (serial === undefined) {
        t.seen.delete(zone);
        this.deps.receipts.ack(t.spec.id, zone, lag.target);
        t.lag.delete(zone);
      } else if (--lag.gone <= 0) {
        this.deps.log(
          `secondaries: ${t.spec.id} still serves deleted zone ${zone}; no longer asking`,
        );
        t.lag.delete(zone);
      } else if (!lag.timer) this.checkSoon(t, zone, this.deps.pollMaxMs ?? 1000);
      return;
    }
    if (serial !== undefined) {
      t.seen.set(zone, serial);
      this.deps.receipts.ack(t.spec.id, zone, serial);
    }
    if (!lag || lag.timer) return;
    if (serial !== undefined && serialGte(serial, lag.target)) {
      t.lag.delete(zone);
      if (lag.notifiedAt !== undefined)
        this.onInsync?.((this.deps.clock.now() - lag.notifiedAt) / 1000);
      return;
    }
    // Still behind: ask again, backing off to pollMaxMs.
    this.checkSoon(t, zone, Math.min(Math.max(lag.delayMs * 2, 20), this.deps.pollMaxMs ?? 1000));
  }
}

function serves(spec: SecondarySpec, zone: string): boolean {
  return spec.zones === undefined || spec.zones.includes(zone);
}

function splitHostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(":");
  return { host: s.slice(0, i).replace(/^\[|\]$/g, ""), port: Number(s.slice(i + 1)) };
}
