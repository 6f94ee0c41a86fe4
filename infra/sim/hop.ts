/**
 * A lighter hop between simulated nodes. Every answer an edge gives crosses
 * to a child edge (edge/cache.ts `exchange`, edge/entry.ts) or to a
 * resolver's DoH client (resolver/upstream.ts), which read of it only the
 * status, header fields by name (`get`, `has`), all of them in order
 * (`forEach`), and the body whole (`bytes`, core/http.ts `bodyBytes`, or
 * `arrayBuffer`; `body?.cancel()` for a
 * non-final status an edge never sends). A Web `Response` built for that
 * allocates a header list with a validation per field, a body stream with a
 * transferable controller, and reading it back takes a reader and several
 * promise turns; under load that garbage is much of the simulator's time
 * (bench/results/simulate.md).
 *
 * `SimEdge` is the engine itself (`Edge`): only the last step of its
 * `respond`, turning `Edge.reply` into a Response, is replaced by a
 * `HopResponse` over the same status, fields and bytes. What the readers
 * see is what a Response over those would show them: a field by its
 * lower-cased name, the fields in the order `Headers` iterates (sorted by
 * name, Fetch "sort and combine"), a copy of the body. Fields a `Headers`
 * would rewrite (a name with upper case, a value with leading or trailing
 * whitespace, which it strips) make it a real Response instead, so no
 * reader can tell. Its fills go to the parent as a `HopRequest` (the URL
 * as a Request serializes it, the fill's own fields as `HopFields`, its
 * abort signal): the
 * parent edge reads a GET's method, URL and fields, and so do the origin's
 * Hono routes (Hono's router reads `url` and `method`, its
 * `c.req.header`/`query` read `headers.get` and `url`).
 *
 * Both are tested against the Web objects in
 * test/infra/simulate-hop.test.ts; the slow path (`--slow-path`,
 * `lightHops: false`) keeps the Web objects, and the same report is tested
 * in test/infra/simulate-speed.test.ts.
 */
import { memoized } from "../../core/memo.ts";
import { Edge, type EdgeOptions, type Reply } from "../../edge/cache.ts";
import { fillRequestHeaders } from "../../edge/fields.ts";
import type { CacheStatus } from "../../edge/key.ts";
import type { CacheEntry } from "../../edge/policy.ts";

/** The header fields of a `HopResponse`: a read-only view of the reply's fields. */
export class HopHeaders {
  protected sorted: string[] | undefined;

  constructor(protected readonly fields: Record<string, string>) {}

  get(name: string): string | null {
    const key = name.toLowerCase();
    // Own fields only: the record is a plain object ("constructor" is no field).
    return Object.hasOwn(this.fields, key) ? this.fields[key]! : null;
  }

  has(name: string): boolean {
    return Object.hasOwn(this.fields, name.toLowerCase());
  }

  /** In `Headers` order: by name (the names are distinct and lower-case). */
  forEach(fn: (value: string, name: string, headers: HopHeaders) => void): void {
    for (const name of this.names()) fn(this.fields[name]!, name, this);
  }

  *entries(): IterableIterator<[string, string]> {
    for (const name of this.names()) yield [name, this.fields[name]!];
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }

  private names(): string[] {
    if (this.sorted === undefined) {
      // By insertion, in place: Array.prototype.sort copies the array into
      // a work array first, an allocation per stored answer (2 % of what
      // the 10,000-resolver hour allocates); a reply has about a dozen
      // fields. `>` compares code units, as the default sort does.
      const names = Object.keys(this.fields);
      for (let i = 1; i < names.length; i++) {
        const name = names[i]!;
        let j = i - 1;
        for (; j >= 0 && names[j]! > name; j--) names[j + 1] = names[j]!;
        names[j + 1] = name;
      }
      this.sorted = names;
    }
    return this.sorted;
  }
}

/** A field name as `Headers` takes it: an RFC 9110 §5.1 token. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Leading or trailing HTTP whitespace, which `Headers` strips from a value (Fetch "normalize"). */
const EDGE_WHITESPACE = /^[\t\n\r ]+|[\t\n\r ]+$/g;

/**
 * The fields of a fill's GET as a simulated edge sends them (`SimEdge`):
 * what edge/fields.ts `fillRequestHeaders` appends and the fill sets, read
 * by the parent edge and the origin by name and in order. A `Headers` would
 * validate each name and value on every append, set and read, and sort its
 * list anew on every pass over it; these are a record of lower-case names
 * and values, added as a `Headers` adds them (a name that is no token, or a
 * value with NUL, CR or LF, is a TypeError; a value loses its leading and
 * trailing whitespace; a second value for a name is joined to the first
 * with ", ", "; " for Cookie).
 */
export class HopFields extends HopHeaders {
  constructor() {
    super({});
  }

  append(name: string, value: string): void {
    const v = fieldValue(name, value);
    const key = name.toLowerCase();
    const fields = this.fields;
    if (Object.hasOwn(fields, key)) fields[key] += `${key === "cookie" ? "; " : ", "}${v}`;
    else {
      fields[key] = v;
      this.sorted = undefined;
    }
  }

  set(name: string, value: string): void {
    const v = fieldValue(name, value);
    const key = name.toLowerCase();
    if (!Object.hasOwn(this.fields, key)) this.sorted = undefined;
    this.fields[key] = v;
  }

  delete(name: string): void {
    const key = name.toLowerCase();
    if (!Object.hasOwn(this.fields, key)) return;
    delete this.fields[key];
    this.sorted = undefined;
  }
}

/** A field's value as `Headers` stores it (normalized); a TypeError where it refuses the name or the value. */
function fieldValue(name: string, value: string): string {
  if (!TOKEN.test(name)) throw new TypeError(`Invalid header name: "${name}"`);
  const v = value.replace(EDGE_WHITESPACE, "");
  if (v.includes("\0") || v.includes("\r") || v.includes("\n")) {
    throw new TypeError(`Invalid header value for "${name}"`);
  }
  return v;
}

/** The part of a Web Response the engines read of a parent's answer, over an `Edge.reply`. */
export class HopResponse {
  readonly headers: HopHeaders;
  readonly status: number;
  private readonly content: Uint8Array<ArrayBuffer> | null;
  private used = false;

  constructor(r: Reply) {
    this.status = r.status;
    this.headers = new HopHeaders(r.headers);
    this.content = r.body;
  }

  get ok(): boolean {
    return this.status >= 200 && this.status <= 299;
  }

  get bodyUsed(): boolean {
    return this.used;
  }

  /** The body as a stream, made only if a reader asks for one. */
  get body(): ReadableStream<Uint8Array> | null {
    return this.content === null ? null : new Response(this.copy()).body;
  }

  /**
   * A copy of the body, as a Response's is (the stored entry's bytes stay the
   * cache's own), resolved after as many promise turns as a Response's read
   * takes (`calibrateHops`), so every chain that awaits it resumes in the
   * same order among the others of its instant as on the slow path.
   */
  arrayBuffer(): Promise<ArrayBuffer> {
    const t = readTurns();
    return this.unread() ?? afterTurns(this.content === null ? t.empty : t.body, this.copy());
  }

  /**
   * The body as `bytes()` gives it: a copy, after as many turns as a
   * Response's `bytes` takes (`calibrateHops`). Copied into a
   * Buffer (Node's pool for small ones): no ArrayBuffer of its own, which
   * costs a backing store and external-memory bookkeeping per answer.
   */
  bytes(): Promise<Uint8Array<ArrayBuffer>> {
    const t = readTurns();
    const b = this.content;
    return (
      this.unread() ??
      afterTurns(
        b === null ? t.bytesEmpty : t.bytesBody,
        b === null ? new Uint8Array(0) : (Buffer.from(b) as Uint8Array<ArrayBuffer>),
      )
    );
  }

  /** Marks the body read; a rejection (as a Response's) if it was already. */
  private unread(): Promise<never> | undefined {
    if (this.used)
      return Promise.reject(new TypeError("Body is unusable: Body has already been read"));
    this.used = true;
    return undefined;
  }

  async text(): Promise<string> {
    return new TextDecoder().decode(await this.arrayBuffer());
  }

  private copy(): ArrayBuffer {
    const b = this.content;
    if (b === null) return new ArrayBuffer(0);
    // A typed array's copy: ArrayBuffer's slice takes its slower generic path.
    return new Uint8Array(b).buffer;
  }
}

/**
 * The part of a Web Request an edge reads of its child's fill (edge/cache.ts
 * `handle`, `fill`, `reply`; edge/fields.ts): a GET, its URL as the URL
 * parser serializes it, its header fields (the fill's own `Headers`), the
 * fill's abort signal. The origin's Hono routes read the same of a GET and
 * take it as it is; `toRequest` makes the Web Request it stands for (the
 * tests compare the two).
 */
export class HopRequest {
  readonly method = "GET";

  /** `signal`: the fill's abort signal, or how to get it when someone reads it (see `Edge.parentRequest`). */
  constructor(
    readonly url: string,
    readonly headers: Headers,
    private readonly abort: AbortSignal | (() => AbortSignal),
  ) {}

  get signal(): AbortSignal {
    return typeof this.abort === "function" ? this.abort() : this.abort;
  }

  toRequest(): Request {
    return new Request(this.url, { headers: this.headers, signal: this.signal });
  }
}

/** The signal of a Request made without one: never aborted (made once, when first read). */
let neverAborted: AbortSignal | undefined;
function noSignal(): AbortSignal {
  neverAborted ??= new AbortController().signal;
  return neverAborted;
}

/**
 * A bodiless GET from a resolver's DoH client to its edge, as a HopRequest:
 * `fields` as a Request made from them shows them (plain lower-case names
 * and trimmed values, else undefined: a Headers would rewrite them), no
 * signal of its own. An undici Request validates every field read and
 * serializes its URL on every `url` read, and the edge reads both on every
 * request. Undefined when the URL does not parse either.
 */
export function hopRequestOf(url: string, fields: Record<string, string>): Request | undefined {
  const href = hrefOf(url);
  if (href === undefined || !plainFields(fields)) return undefined;
  return new HopRequest(
    href,
    new HopHeaders({ ...fields }) as unknown as Headers,
    noSignal,
  ) as unknown as Request;
}

/**
 * Promise turns after which `await response.arrayBuffer()` (and `bytes()`)
 * resumes, for a Response without a body and with one (Node 20.20's undici:
 * 3 and 8 for both; a read goes through a body stream's reader). Within one virtual instant the
 * engines' chains interleave by these turns: two fills answered in the same
 * instant, one 304 and one 200, resume in the order their reads finish, and
 * the next request each sends draws its link delay in that order. Measured
 * on the running Node, not assumed.
 */
interface Turns {
  empty: number;
  body: number;
  bytesEmpty: number;
  bytesBody: number;
}
let turns: Turns | undefined;

/** Measures the turns once per process; call (and await) before the first HopResponse is read. */
export async function calibrateHops(): Promise<Turns> {
  turns ??= {
    empty: await turnsOf(() => new Response(null, { status: 304 }).arrayBuffer()),
    body: await turnsOf(() => new Response(new Uint8Array(1)).arrayBuffer()),
    bytesEmpty: await turnsOf(() => new Response(null, { status: 304 }).bytes()),
    bytesBody: await turnsOf(() => new Response(new Uint8Array(1)).bytes()),
  };
  return turns;
}

function readTurns(): Turns {
  if (!turns) throw new Error("calibrateHops() must run before a HopResponse is read");
  return turns;
}

/** How many promise turns pass before `await work()` resumes (1 for a resolved promise). */
async function turnsOf(work: () => Promise<unknown>): Promise<number> {
  let n = 0;
  let done = false;
  const spin = (): void => {
    if (done) return;
    n++;
    void Promise.resolve().then(spin);
  };
  void Promise.resolve().then(spin);
  await work();
  done = true;
  return n;
}

/** A promise of `value` that an `await` resumes from after `n` turns (n >= 1). */
function afterTurns<T>(n: number, value: T): Promise<T> {
  let p = Promise.resolve(value);
  for (let i = 1; i < n; i++) p = p.then(same);
  return p;
}

function same<T>(x: T): T {
  return x;
}

/**
 * `url` as a Request's `url` shows it (the URL parser's serialization),
 * parsed once per URL (up to 10,000: one name is simulated, far more than
 * used); undefined when the parser refuses it (not kept).
 */
const hrefOf = memoized(
  (url): string | undefined => (URL.canParse(url) ? new URL(url).href : undefined),
  10_000,
);

/**
 * The edge engine whose fills cross the simulated links as `HopRequest`s and
 * whose answers come back as `HopResponse`s.
 */
export class SimEdge extends Edge {
  /** The last fill's URL parts and its href (see parentRequest). */
  private lastBase = "";
  private lastKey = "";
  private lastHref: string | undefined;

  /** `carried.hops` counts the answers this edge sent as a HopResponse. */
  constructor(
    o: EdgeOptions,
    private readonly carried: { hops: number },
  ) {
    super(o);
  }

  /** A fill's fields as `HopFields`, which the parent reads as it would a `Headers`. */
  protected override fillHeaders(request: Headers): Headers {
    return fillRequestHeaders(request, new HopFields() as unknown as Headers);
  }

  protected override parentRequest(
    base: string,
    key: string,
    headers: Headers,
    signal: () => AbortSignal,
  ): Request {
    // An edge fills the same key from the same parent again and again: the
    // URL it made last is reused when both parts are the same, where
    // `base + key` is a new string each time that the memo would copy flat
    // and hash (hrefOf's lookup was 0.6 % of a worker at 100,000 resolvers).
    let href = this.lastHref;
    if (base !== this.lastBase || key !== this.lastKey) {
      href = hrefOf(base + key);
      this.lastBase = base;
      this.lastKey = key;
      this.lastHref = href;
    }
    // A URL the parser refuses fails as the Web Request would (a TypeError in the fill).
    if (href === undefined) return super.parentRequest(base, key, headers, signal);
    return new HopRequest(href, headers, signal) as unknown as Request;
  }

  protected override respond(
    req: Request,
    entry: CacheEntry,
    status: CacheStatus | undefined,
  ): Response {
    const r = this.reply(req, entry, status);
    // What a Headers would rewrite goes as a real Response (see the header).
    if (!plainFields(r.headers))
      return new Response(r.body, { status: r.status, headers: r.headers });
    this.carried.hops++;
    return new HopResponse(r) as unknown as Response;
  }
}

/** Lower-case names, values without leading or trailing whitespace (Fetch "normalize"). */
export function plainFields(fields: Record<string, string>): boolean {
  for (const name in fields) {
    const v = fields[name]!;
    if (name !== name.toLowerCase()) return false;
    if (v.length > 0 && (v.charCodeAt(0) <= 32 || v.charCodeAt(v.length - 1) <= 32)) return false;
  }
  return true;
}
