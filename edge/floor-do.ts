/**
 * The fleet floor: one Durable Object per Worker fleet holding the purge
 * events the origin relayed to it, in order, so every isolate of the fleet
 * applies every event, not only the one isolate the relay's POST reached.
 *
 * A Durable Object is a single instance per id with strongly consistent
 * storage: the relay's POST lands on one isolate, which appends the event
 * here and answers 2xx only once the append is stored (the output gate holds
 * the DO's reply until the write is durable). Every isolate, before serving
 * from its cache, asks for the events after the last one it applied
 * (edge/fleet.ts), at most every FLOOR_CACHE_MS.
 *
 * Storage: `seq` (the last event's number), `first` (the oldest kept),
 * `zones` (zone -> highest serial relayed, for isolates that fell behind the
 * log) and one key per event, `ev:<seq>` zero-padded so keys list in order.
 * The log keeps the last MAX_LOG events (FLOOR_LOG); an isolate behind that resyncs by
 * zone (a zone-wide invalidate at each zone's serial), as a bus subscriber
 * that lost events does. Web-standard only (it runs in workerd).
 */
import type { PurgeEvent } from "../core/purge.ts";
import { serialGt } from "../core/serial.ts";

/** Events the log keeps (the FLOOR_LOG var overrides it); an isolate further behind resyncs by zone. */
export const MAX_LOG = 1000;
/** Events per answer to GET /since; `more` says to ask again. */
export const PAGE = 200;

/** The parts of the Durable Object storage API used here (KV-style; works on SQLite-backed objects). */
export interface FloorStorage {
  get<T>(key: string): Promise<T | undefined>;
  put(entries: Record<string, unknown>): Promise<void>;
  delete(keys: string[]): Promise<number>;
  list<T>(o: { start?: string; end?: string; limit?: number }): Promise<Map<string, T>>;
}

export interface FloorState {
  storage: FloorStorage;
  blockConcurrencyWhile<T>(f: () => Promise<T>): Promise<T>;
}

/** GET /since?after=N: the events after N, or a gap and each zone's highest serial. */
export interface SinceAnswer {
  seq: number;
  events?: { seq: number; event: PurgeEvent }[];
  more?: boolean;
  gap?: true;
  zones?: Record<string, number>;
}

function evKey(seq: number): string {
  return `ev:${String(seq).padStart(12, "0")}`;
}

export class FleetFloor {
  private seq = 0;
  private first = 1;
  private zones: Record<string, number> = {};
  private readonly maxLog: number;

  constructor(
    private readonly state: FloorState,
    env: { FLOOR_LOG?: string },
  ) {
    const n = Number(env.FLOOR_LOG ?? MAX_LOG);
    this.maxLog = Number.isSafeInteger(n) && n > 0 ? n : MAX_LOG;
    void state.blockConcurrencyWhile(async () => {
      this.seq = (await state.storage.get<number>("seq")) ?? 0;
      this.first = (await state.storage.get<number>("first")) ?? 1;
      this.zones = (await state.storage.get<Record<string, number>>("zones")) ?? {};
    });
  }

  async fetch(req: Request): Promise<Response> {
    const url = new URL(req.url);
    if (req.method === "POST" && url.pathname === "/events") return this.append(req);
    if (req.method === "GET" && url.pathname === "/since") {
      const after = Number(url.searchParams.get("after") ?? "0");
      if (!Number.isSafeInteger(after) || after < 0) {
        return Response.json(
          { error: "bad since", field: "after", reason: "after must be a whole number" },
          { status: 400 },
        );
      }
      return Response.json(await this.since(after));
    }
    return Response.json(
      { error: "not found", reason: "POST /events or GET /since?after=N" },
      { status: 404 },
    );
  }

  /** Appends one event; the reply (its seq) leaves only once the write is stored. */
  private async append(req: Request): Promise<Response> {
    const event = (await req.json()) as PurgeEvent;
    if (typeof event?.zone !== "string" || typeof event.serial !== "number") {
      return Response.json(
        { error: "bad event", field: "event", reason: "a purge event with zone and serial" },
        { status: 400 },
      );
    }
    // State changes before the first await: the input gate keeps appends in order.
    const seq = ++this.seq;
    const prev = this.zones[event.zone];
    if (prev === undefined || serialGt(event.serial, prev)) {
      this.zones = { ...this.zones, [event.zone]: event.serial };
    }
    const drop: string[] = [];
    while (seq - this.first >= this.maxLog) drop.push(evKey(this.first++));
    await this.state.storage.put({
      [evKey(seq)]: event,
      seq,
      first: this.first,
      zones: this.zones,
    });
    if (drop.length > 0) await this.state.storage.delete(drop);
    return Response.json({ seq });
  }

  private async since(after: number): Promise<SinceAnswer> {
    // Behind the log, or ahead of it (the object's storage was reset): resync by zone.
    if (after + 1 < this.first || after > this.seq) {
      return { seq: this.seq, gap: true, zones: this.zones };
    }
    const rows = await this.state.storage.list<PurgeEvent>({
      start: evKey(after + 1),
      end: evKey(this.seq + 1),
      limit: PAGE,
    });
    const events = [...rows].map(([k, event]) => ({ seq: Number(k.slice(3)), event }));
    const last = events.at(-1)?.seq ?? after;
    return { seq: this.seq, events, ...(last < this.seq && { more: true }) };
  }
}
